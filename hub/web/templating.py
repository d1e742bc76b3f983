"""Jinja2 environment for pages (templates/pages, templates/partials)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from fastapi.templating import Jinja2Templates

from hub.config import get_settings

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a stored UTC time in GOVHUB_TIMEZONE."""
    if value is None:
        return ""
    return value.astimezone(get_settings().tz).strftime(fmt)


@lru_cache
def get_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.filters["local_time"] = local_time
    return templates
