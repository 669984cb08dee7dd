"""The project package and the vault core: keys, envelope crypto, blind indexes, audit log."""

from vault.celery import app as celery_app

__all__ = ("celery_app",)
