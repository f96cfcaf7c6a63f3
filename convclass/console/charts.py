"""Charts as inline SVG made on the server: no JavaScript, no build step, they scale to the page's width.

Each function returns SVG markup with ``role="img"`` and a ``<title>`` (what the chart shows, for screen
readers); every label is escaped.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence

from markupsafe import Markup

_ids = itertools.count(1)
TEXT = "#1f2328"
MUTED = "#57606a"
BAR = "#0b6bcb"
WARN = "#b35900"
SERIES = ("#0b6bcb", "#b35900", "#1a7f37", "#8250df")


def _svg(width: int, height: int, title: str, body: str) -> Markup:
    ident = f"chart-{next(_ids)}"
    return Markup(  # noqa: S704 - every interpolated text is escaped above or here
        f'<svg class="chart" viewBox="0 0 {width} {height}" style="max-width:{int(width * 1.6)}px" '
        f'role="img" aria-labelledby="{ident}" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}">{html.escape(title)}</title>{body}</svg>'
    )


def _clip(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


def hbars(
    title: str, rows: Sequence[tuple[str, float, bool]], *, maximum: float | None = None, fmt: str = "{:.0f}"
) -> Markup:
    """Horizontal bars, one row per (label, value, flagged); flagged rows are drawn in the warning colour."""
    width, row_h, label_w, value_w = 360, 18, 150, 48
    top = max((value for _, value, _ in rows), default=0.0)
    scale = maximum if maximum else (top or 1.0)
    parts = []
    for index, (label, value, flagged) in enumerate(rows):
        y = index * row_h
        bar = max(0.0, (width - label_w - value_w) * value / scale)
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 13}" text-anchor="end" font-size="11" fill="{TEXT}">'
            f"{html.escape(_clip(label, 24))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{bar:.1f}" height="{row_h - 6}" '
            f'fill="{WARN if flagged else BAR}"/>'
            f'<text x="{label_w + bar + 4:.1f}" y="{y + 13}" font-size="11" fill="{TEXT}">'
            f"{html.escape(fmt.format(value))}{' ⚠' if flagged else ''}</text>"
        )
    return _svg(width, max(row_h, row_h * len(rows)), title, "".join(parts))


def columns(title: str, bars: Sequence[tuple[str, float]], *, fmt: str = "{:.0f}") -> Markup:
    """Vertical bars with their labels under them (days, histogram bins)."""
    width, height, bottom, top_pad = 360, 150, 28, 14
    n = max(1, len(bars))
    slot = width / n
    top = max((value for _, value in bars), default=0.0) or 1.0
    parts = [f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="{MUTED}"/>']
    for index, (label, value) in enumerate(bars):
        h = (height - bottom - top_pad) * value / top
        x = index * slot
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{height - bottom - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"/>'
        )
        if value:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - bottom - h - 3:.1f}" text-anchor="middle" '
                f'font-size="9" fill="{TEXT}">{html.escape(fmt.format(value))}</text>'
            )
        if index % max(1, round(n / 7)) == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 12}" text-anchor="middle" '
                f'font-size="9" fill="{TEXT}">{html.escape(_clip(label, 6))}</text>'
            )
    return _svg(width, height, title, "".join(parts))


def lines(title: str, series: dict[str, Sequence[tuple[float, float]]]) -> Markup:
    """Line chart of named series of (x, y) points, with a legend."""
    width, height, left, bottom, top_pad = 360, 170, 34, 34, 10
    points = [point for values in series.values() for point in values]
    if not points:
        return _svg(width, 30, title, f'<text x="0" y="18" font-size="12" fill="{TEXT}">no data</text>')
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(ys) if max(ys) > 0 else 1.0
    plot_w, plot_h = width - left - 8, height - bottom - top_pad

    def at(x: float, y: float) -> tuple[float, float]:
        return left + plot_w * (x - x0) / (x1 - x0), top_pad + plot_h * (1 - (y - y0) / (y1 - y0))

    axis = f'stroke="{MUTED}"'
    tick = f'text-anchor="end" font-size="9" fill="{TEXT}"'
    bottom_y = top_pad + plot_h
    parts = [
        f'<line x1="{left}" y1="{bottom_y}" x2="{width - 8}" y2="{bottom_y}" {axis}/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{bottom_y}" {axis}/>',
        f'<text x="{left - 4}" y="{top_pad + 8}" {tick}>{y1:.2f}</text>',
        f'<text x="{left - 4}" y="{bottom_y}" {tick}>{y0:.2f}</text>',
    ]
    for index, (name, values) in enumerate(series.items()):
        colour = SERIES[index % len(SERIES)]
        dash = ' stroke-dasharray="4 3"' if name.startswith("val") else ""
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(*p) for p in values))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        lx = left + (index % 2) * 150
        ly = height - 14 + (index // 2) * 11
        parts.append(
            f'<line x1="{lx}" y1="{ly - 3}" x2="{lx + 16}" y2="{ly - 3}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{lx + 20}" y="{ly}" font-size="9" fill="{TEXT}">{html.escape(name)}</text>'
        )
    return _svg(width, height + 8, title, "".join(parts))


def heatmap(title: str, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> Markup:
    """Confusion matrix, row-normalised (rows: true label, columns: predicted label)."""
    n = len(labels)
    label_w = 130
    cell = max(3.0, min(18.0, 230 / max(n, 1)))
    size = label_w + cell * n
    parts = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            if share <= 0:
                continue
            shade = int(255 - 210 * share)
            parts.append(
                f'<rect x="{label_w + j * cell:.1f}" y="{i * cell:.1f}" '
                f'width="{cell:.1f}" height="{cell:.1f}" '
                f'fill="rgb({shade},{shade + (255 - shade) // 3},255)"/>'
            )
        if cell >= 8:
            parts.append(
                f'<text x="{label_w - 4}" y="{i * cell + cell * 0.75:.1f}" text-anchor="end" '
                f'font-size="{min(10.0, cell * 0.8):.0f}" fill="{TEXT}">'
                f"{html.escape(_clip(labels[i], 22))}</text>"
            )
    parts.append(
        f'<rect x="{label_w}" y="0" width="{cell * n:.1f}" height="{cell * n:.1f}" '
        f'fill="none" stroke="{MUTED}"/>'
    )
    return _svg(int(size) + 2, int(cell * n) + 2, title, "".join(parts))
