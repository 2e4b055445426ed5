"""Small inline SVG charts for the dashboard: pure functions from numbers to markup.

No script and no style attributes (the dashboard's CSP forbids inline styles), only
presentation attributes and classes styled by the dashboard's stylesheet. Every text that
goes into the markup is escaped here, so the result can be marked safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 520
HEIGHT = 180
PAD_LEFT = 44
PAD_BOTTOM = 24
PAD_TOP = 10
PAD_RIGHT = 8


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float]
    css_class: str  # e.g. "ok", "bad", "line"


def _nice_ceiling(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def _tooltip(label: str, value: float, name: str) -> str:
    return f"<title>{escape(label)}: {escape(_number(value))} {escape(name)}</title>"


def _frame(title: str, top: float, labels: Sequence[str], inner: list[str]) -> Markup:
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = PAD_TOP + plot_height * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(top * fraction))}</text>"
        )
    parts.extend(inner)
    if labels:
        plot_width = WIDTH - PAD_LEFT - PAD_RIGHT
        for index in sorted({0, len(labels) // 2, len(labels) - 1}):
            x = PAD_LEFT + plot_width * (index + 0.5) / len(labels)
            anchor = "start" if index == 0 else ("end" if index == len(labels) - 1 else "middle")
            if len(labels) == 1:
                anchor = "middle"
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                f"{escape(labels[index])}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def empty_chart(title: str, message: str = "No data yet") -> Markup:
    return Markup(  # noqa: S704 - escaped
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
        f"{escape(message)}</text></svg>"
    )


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Bars per label, the series stacked bottom to top (e.g. delivered, then failed)."""
    if not labels or not series:
        return empty_chart(title)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _nice_ceiling(max(totals))
    plot_width = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_width / len(labels)
    bar = max(1.0, slot * 0.8)
    inner: list[str] = []
    for index, label in enumerate(labels):
        base = 0.0
        x = PAD_LEFT + slot * index + (slot - bar) / 2
        for item in series:
            value = item.values[index]
            if value <= 0:
                continue
            height = plot_height * value / top
            y = PAD_TOP + plot_height * (1 - (base + value) / top)
            inner.append(
                f'<rect class="{escape(item.css_class)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}">'
                f"{_tooltip(label, value, item.name)}</rect>"
            )
            base += value
    return _frame(title, top, labels, inner)


def line_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> Markup:
    """One line with a dot per point (e.g. followers per day)."""
    if not labels:
        return empty_chart(title)
    top = _nice_ceiling(max(values))
    plot_width = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    points = []
    for index, value in enumerate(values):
        x = PAD_LEFT + plot_width * (index + 0.5) / len(values)
        y = PAD_TOP + plot_height * (1 - value / top)
        points.append((x, y, labels[index], value))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
    inner = [f'<polyline class="line" points="{path}"/>']
    for x, y, label, value in points:
        inner.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3">'
            f"<title>{escape(label)}: {escape(_number(value))}</title></circle>"
        )
    return _frame(title, top, labels, inner)


def horizontal_bars(
    title: str, labels: Sequence[str], series: Sequence[Series], *, row_height: int = 22
) -> Markup:
    """One row per label (e.g. a post), segments per series (likes, boosts, replies)."""
    if not labels or not series:
        return empty_chart(title)
    label_width = 180
    height = PAD_TOP + row_height * len(labels) + 4
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = max(totals) or 1
    plot_width = WIDTH - label_width - 40
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for index, label in enumerate(labels):
        y = PAD_TOP + row_height * index
        short = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f'<text class="axis" x="{label_width - 6}" y="{y + row_height * 0.65:.1f}" '
            f'text-anchor="end">{escape(short)}</text>'
        )
        x = float(label_width)
        for item in series:
            value = item.values[index]
            if value <= 0:
                continue
            width = plot_width * value / top
            parts.append(
                f'<rect class="{escape(item.css_class)}" x="{x:.1f}" y="{y + 3}" '
                f'width="{width:.1f}" height="{row_height - 6}">'
                f"{_tooltip(label, value, item.name)}</rect>"
            )
            x += width
        parts.append(
            f'<text class="axis" x="{x + 4:.1f}" y="{y + row_height * 0.65:.1f}">'
            f"{escape(_number(totals[index]))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
