"""The project package: settings (from the environment only), URLs (includes only), the Celery
app, WSGI and ASGI. It sits above every app and is imported by none of them."""

from config.celery import app as celery_app

__all__ = ("celery_app",)
