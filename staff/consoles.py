"""The staff consoles that are pages of their own rather than a model's list: (route, view, url
name). Each view checks its own permission (403 without it); site.py serves them under /admin/."""

from collections.abc import Callable
from typing import Any

CONSOLES: list[tuple[str, Callable[..., Any], str]] = []
