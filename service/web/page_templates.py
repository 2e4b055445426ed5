"""Server-rendered HTML pages: autoescaped Jinja2, no third-party assets."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from federation.rendering.html_sanitizer import sanitize_html

TEMPLATES_DIR = Path(__file__).parent / "templates"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.autoescape = True
templates.env.filters["sanitize"] = sanitize_html
