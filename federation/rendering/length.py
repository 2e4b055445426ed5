"""Post length: measured on the plain text readers see, and cut at a word with an ellipsis."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from federation.rendering.html_sanitizer import html_to_text

ELLIPSIS = "…"
_VOID_ELEMENTS = frozenset({"br", "hr", "img", "wbr"})
_MAX_ATTEMPTS = 8


def plain_length(fragment: str) -> int:
    return len(html_to_text(fragment))


class _TextBudgetCutter(HTMLParser):
    """Copies HTML until `budget` characters of text were emitted, then closes open elements."""

    def __init__(self, budget: int) -> None:
        super().__init__(convert_charrefs=True)
        self.budget = budget
        self.used = 0
        self.done = False
        self.output: list[str] = []
        self.open_elements: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        rendered = "".join(
            f' {name}="{html.escape(value or "", quote=True)}"' for name, value in attrs
        )
        self.output.append(f"<{tag}{rendered}>")
        if tag not in _VOID_ELEMENTS:
            self.open_elements.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.done:
            self.output.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if self.done or tag not in self.open_elements:
            return
        while self.open_elements:
            closing = self.open_elements.pop()
            self.output.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.done:
            return
        remaining = self.budget - self.used
        if len(data) <= remaining:
            self.output.append(html.escape(data, quote=False))
            self.used += len(data)
            return
        kept = data[: max(remaining - len(ELLIPSIS), 0)]
        if " " in kept.strip():
            kept = kept.rstrip().rsplit(" ", 1)[0]
        self.output.append(html.escape(kept.rstrip(), quote=False) + ELLIPSIS)
        self.used = self.budget
        self.done = True

    def result(self) -> str:
        self.close()
        closing = "".join(f"</{tag}>" for tag in reversed(self.open_elements))
        return "".join(self.output) + closing


def cut_html(fragment: str, budget: int) -> str:
    cutter = _TextBudgetCutter(max(budget, 0))
    cutter.feed(fragment)
    return cutter.result()


def fit_html(fragment: str, max_length: int) -> tuple[str, bool]:
    """`fragment` shortened so its plain text is at most `max_length`; (html, was_cut)."""
    if plain_length(fragment) <= max_length:
        return fragment, False
    budget = max_length
    for _ in range(_MAX_ATTEMPTS):
        candidate = cut_html(fragment, budget)
        excess = plain_length(candidate) - max_length
        if excess <= 0:
            return candidate, True
        budget -= excess
    text = html_to_text(fragment)[: max(max_length - len(ELLIPSIS), 0)]
    return f"<p>{html.escape(text, quote=False)}{ELLIPSIS}</p>", True
