"""Jinja2 templates shared by every package's pages, with 和暦 and yen filters."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from kiban.core.wareki import to_wareki

ROOT = Path(__file__).resolve().parent.parent
_env = Environment(
    loader=ChoiceLoader([FileSystemLoader(str(ROOT / "web" / "templates")),
                         FileSystemLoader(str(ROOT / "registry" / "templates")),
                         FileSystemLoader(str(ROOT / "talent" / "templates")),
                         FileSystemLoader(str(ROOT / "standard" / "templates")),
                         FileSystemLoader(str(ROOT / "opendata" / "templates")),
                         FileSystemLoader(str(ROOT / "identity" / "templates")),
                         FileSystemLoader(str(ROOT / "linkage" / "templates")),
                         FileSystemLoader(str(ROOT / "privacy" / "templates")),
                         FileSystemLoader(str(ROOT / "tax" / "templates")),
                         FileSystemLoader(str(ROOT / "assist" / "templates"))]),
    autoescape=select_autoescape(["html"]),
)


def _wareki(value: object) -> str:
    if isinstance(value, str) and value:
        value = date.fromisoformat(value)
    return to_wareki(value) if isinstance(value, date) else ""


_env.filters["wareki"] = _wareki
templates = Jinja2Templates(env=_env)
