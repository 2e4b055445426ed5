"""Post templates: sandboxed Jinja2 with autoescaping, and safe defaults for every event kind.

A template renders the body of a post as HTML. Every value it receives is escaped unless it is
already sanitized HTML (`content_html`). The relay appends the canonical link and hashtags
itself, so the length limit can shorten the body and still keep them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from federation.rendering.html_sanitizer import html_to_text
from federation.rendering.source_content import content_html, excerpt
from federation.sources.events import (
    POST,
    RELEASE,
    STAR,
    STAR_MILESTONE,
    TAG,
    SourceEvent,
)

MAX_TEMPLATE_LENGTH = 10_000

DEFAULT_TEMPLATES: Mapping[str, str] = {
    POST: "<p><strong>{{ title }}</strong></p>{% if excerpt %}<p>{{ excerpt }}</p>{% endif %}",
    RELEASE: (
        "<p>{{ repository }} {{ tag }} {{ 'pre-release' if prerelease else 'released' }}"
        "{% if title and title != tag %}: {{ title }}{% endif %}</p>{{ content_html }}"
    ),
    TAG: "<p>New tag {{ tag }} in {{ repository }}</p>",
    STAR: "<p>{{ actor }} starred {{ repository }}</p>",
    STAR_MILESTONE: "<p>{{ repository }} reached {{ stars }} stars!</p>",
}


class TemplateProblem(ValueError):
    """A template that does not compile or fails while rendering."""


_ENVIRONMENT = ImmutableSandboxedEnvironment(autoescape=True)


@lru_cache(maxsize=512)
def _compiled(source: str) -> Any:
    return _ENVIRONMENT.from_string(source)


def compile_template(source: str) -> Any:
    if len(source) > MAX_TEMPLATE_LENGTH:
        raise TemplateProblem(f"template longer than {MAX_TEMPLATE_LENGTH} characters")
    try:
        return _compiled(source)
    except TemplateError as exc:
        raise TemplateProblem(f"template does not compile: {exc}") from exc


def template_source(kind: str, overrides: Mapping[str, Any]) -> str:
    custom = overrides.get(kind)
    if isinstance(custom, str) and custom.strip():
        return custom
    return DEFAULT_TEMPLATES.get(kind, DEFAULT_TEMPLATES[POST])


def template_context(event: SourceEvent, handle: str) -> dict[str, Any]:
    body_html = content_html(event.content, event.content_format)
    summary = event.summary.strip()
    return {
        "source": event.source,
        "kind": event.kind,
        "action": event.action,
        "title": event.title,
        "url": event.url or "",
        "summary": summary,
        "excerpt": excerpt(summary or html_to_text(body_html)),
        # Already sanitized, so the template may include it as HTML.
        "content_html": Markup(body_html),  # noqa: S704
        "tags": list(event.tags),
        "repository": event.repository or "",
        "tag": event.tag_name or "",
        "prerelease": event.prerelease,
        "stars": event.stars,
        "actor": event.actor_name or "",
        "account": {"handle": handle},
    }


def render_template(source: str, context: Mapping[str, Any]) -> str:
    template = compile_template(source)
    try:
        return str(template.render(**context))
    except TemplateError as exc:
        raise TemplateProblem(f"template failed to render: {exc}") from exc


def check_template(source: str) -> None:
    """Raise TemplateProblem unless `source` compiles and renders a sample event."""
    sample = SourceEvent(
        source="cms",
        kind=POST,
        action="published",
        source_id="sample",
        title="Sample",
        url="https://example.com/sample",
        summary="Sample summary",
        repository="owner/repo",
        tag_name="v1.0.0",
        stars=100,
        actor_name="someone",
    )
    render_template(source, template_context(sample, "sample"))
