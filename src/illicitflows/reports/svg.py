"""Small inline SVG charts for the reports (no external assets): a SHAP waterfall, horizontal
bars, a precision-recall curve and a network of accounts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

UP, DOWN, NEUTRAL, FLAG = "#c0392b", "#2471a3", "#7f8c8d", "#c0392b"


def _text(x: float, y: float, body: str, anchor: str = "start", size: int = 11,
          fill: str = "#222", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{extra}>{escape(body)}</text>')


def waterfall_svg(base: float, contributions: Mapping[str, float], labels: Mapping[str, str],
                  top_k: int = 10, width: int = 640) -> str:
    """A SHAP waterfall on the model's raw margin: the base value, the ``top_k`` largest
    contributions by size (the rest summed in one bar), ending at the record's margin."""
    ranked = sorted(contributions.items(), key=lambda item: -abs(item[1]))
    shown = ranked[:top_k]
    rest = sum(value for _, value in ranked[top_k:])
    steps = [(labels.get(name, name), value) for name, value in shown]
    if len(ranked) > top_k:
        steps.append((f"{len(ranked) - top_k} other features", rest))
    end = base + sum(value for _, value in steps)
    running, spans = base, []
    for label, value in steps:
        spans.append((label, value, running, running + value))
        running += value
    points = [base, end, *[s[2] for s in spans], *[s[3] for s in spans]]
    low, high = min(points), max(points)
    pad = (high - low) * 0.05 or 1.0
    low, high = low - pad, high + pad
    left, right, row = 250, width - 70, 22
    height = 40 + row * (len(spans) + 2)

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" role="img" '
             f'aria-label="SHAP waterfall" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">']
    y = 20
    parts.append(_text(left - 8, y + 14, f"base value {base:+.3f}", "end"))
    parts.append(f'<line x1="{x(base):.1f}" y1="{y}" x2="{x(base):.1f}" y2="{height - 20}" '
                 f'stroke="{NEUTRAL}" stroke-dasharray="3,3"/>')
    for label, value, start, stop in spans:
        y += row
        color = UP if value > 0 else DOWN
        x0, x1 = sorted((x(start), x(stop)))
        parts.append(_text(left - 8, y + 14, label[:40], "end"))
        parts.append(f'<rect class="step" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{row - 6}" fill="{color}"><title>{escape(label)}: '
                     f'{value:+.4f}</title></rect>')
        parts.append(_text(x1 + 4, y + 14, f"{value:+.3f}", size=10, fill=color))
    y += row
    parts.append(_text(left - 8, y + 14, f"model margin {end:+.3f}", "end",
                       extra=' font-weight="bold"'))
    parts.append(f'<line x1="{x(end):.1f}" y1="{y}" x2="{x(end):.1f}" y2="{y + row}" '
                 f'stroke="#222" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(values: Sequence[tuple[str, float]], title: str, width: int = 640) -> str:
    """Horizontal bars (e.g. mean |SHAP| per feature), largest first as given."""
    row, left, right = 20, 260, width - 60
    height = 30 + row * len(values)
    top = max((v for _, v in values), default=1.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             _text(4, 14, title, extra=' font-weight="bold"')]
    for i, (label, value) in enumerate(values):
        y = 24 + i * row
        parts.append(_text(left - 6, y + 13, label[:42], "end"))
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{(right - left) * value / top:.1f}" '
                     f'height="{row - 6}" fill="{DOWN}"/>')
        parts.append(_text(left + (right - left) * value / top + 4, y + 13, f"{value:.3g}",
                           size=10))
    parts.append("</svg>")
    return "".join(parts)


def pr_curve_svg(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                 marks: Mapping[str, tuple[float, float]] | None = None,
                 width: int = 420, height: int = 320) -> str:
    """Precision (y) against recall (x), one polyline per named curve; ``marks``: a point per
    curve (e.g. the operating threshold)."""
    colors = [UP, DOWN, "#27ae60", "#8e44ad"]
    left, bottom, right, top = 45, height - 35, width - 15, 15

    def point(recall: float, precision: float) -> str:
        return (f"{left + recall * (right - left):.1f},"
                f"{bottom - precision * (bottom - top):.1f}")

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="precision-recall '
             f'curve" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
             'fill="none" stroke="#999"/>',
             _text((left + right) / 2, height - 8, "recall", "middle"),
             _text(12, (top + bottom) / 2, "precision", "middle",
                   extra=f' transform="rotate(-90 12 {(top + bottom) / 2:.1f})"')]
    for tick in (0.0, 0.5, 1.0):
        parts.append(_text(left + tick * (right - left), bottom + 14, f"{tick:g}", "middle",
                           size=9))
        parts.append(_text(left - 4, bottom - tick * (bottom - top) + 3, f"{tick:g}", "end",
                           size=9))
    for i, (name, (recall, precision)) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        step = max(1, len(recall) // 400)  # at most ~400 points
        pts = " ".join(point(r, p) for r, p in list(zip(recall, precision, strict=True))[::step])
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                     f'points="{pts}"/>')
        parts.append(_text(right - 4, top + 14 + 14 * i, name, "end", fill=color))
        if marks and name in marks:
            cx, cy = point(*marks[name]).split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="4" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Edge:
    """A transfer between two accounts, ``flagged`` when its decision was."""

    source: str
    target: str
    amount: float
    currency: str
    time: str
    flagged: bool
    current: bool = False
    decision_id: str = ""
    record: Mapping[str, Any] | None = None


def network_svg(edges: Sequence[Edge], focus: Sequence[str] = (), size: int = 560) -> str:
    """Accounts on a circle, transfers as arrows labelled with amount and time; flagged
    transfers red, the decision's own transfer thick, the decision's accounts outlined."""
    nodes = list(dict.fromkeys([n for e in edges for n in (e.source, e.target)]))
    if not nodes:
        return ""
    centre, radius = size / 2, size / 2 - 90
    place = {node: (centre + radius * math.cos(2 * math.pi * i / len(nodes) - math.pi / 2),
                    centre + radius * math.sin(2 * math.pi * i / len(nodes) - math.pi / 2))
             for i, node in enumerate(nodes)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="network" role="img" '
             f'aria-label="suspected network" width="{size}" height="{size}" '
             f'viewBox="0 0 {size} {size}"><defs><marker id="arrow" viewBox="0 0 10 10" '
             'refX="18" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
             '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    for i, edge in enumerate(edges):
        (x0, y0), (x1, y1) = place[edge.source], place[edge.target]
        color = FLAG if edge.flagged else NEUTRAL
        width = 3.5 if edge.current else 1.5
        kind = "flagged" if edge.flagged else "unflagged"
        parts.append(f'<line class="edge {kind}" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" '
                     f'y2="{y1:.1f}" stroke="{color}" stroke-width="{width}" '
                     f'marker-end="url(#arrow)"><title>{escape(edge.source)} -&gt; '
                     f'{escape(edge.target)}: {edge.amount:,.2f} {escape(edge.currency)} at '
                     f'{escape(edge.time)}</title></line>')
        shift = 10 * ((i % 3) - 1)
        parts.append(_text((x0 + x1) / 2, (y0 + y1) / 2 + shift,
                           f"{edge.amount:,.0f} {edge.currency[:3]} {edge.time[5:16]}",
                           "middle", size=9, fill=color))
    for node, (x, y) in place.items():
        stroke = "#111" if node in focus else "#fff"
        parts.append(f'<circle class="node" cx="{x:.1f}" cy="{y:.1f}" r="9" fill="#34495e" '
                     f'stroke="{stroke}" stroke-width="2"><title>{escape(node)}</title>'
                     '</circle>')
        parts.append(_text(x, y - 13, node[-18:], "middle", size=10))
    parts.append("</svg>")
    return "".join(parts)
