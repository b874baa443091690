"""The chart of ``bench/peers.py``: an SVG written by hand (no plotting library).

One panel per framework, one horizontal bar per measured cell (library, operation,
algorithm), its length the ratio of req/s to the bare framework; sessionward's bars in one
colour, the peers' in another, invalid cells hatched grey. A dashed line marks 1.0x.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

WIDTH = 960
LABEL_WIDTH = 380
BAR_AREA = WIDTH - LABEL_WIDTH - 70
BAR_HEIGHT = 16
GAP = 6
SESSIONWARD = "#1f77b4"
PEER = "#f28e2b"
INVALID = "#bbbbbb"
FRAMEWORK_TITLES = {
    "fastapi": "FastAPI (uvicorn)",
    "flask": "Flask (gunicorn sync)",
    "django": "Django (gunicorn sync)",
}


def write_chart(path: Path, rows: Sequence[tuple[str, str, str, float, bool]], note: str) -> None:
    """Write the SVG of ``rows`` = (framework, operation, label, ratio to bare, valid) to
    ``path``; a gap separates the operations."""
    scale_max = max([1.0, *(ratio for _, _, _, ratio, _ in rows)])
    scale = BAR_AREA / scale_max
    parts: list[str] = []
    y = 56
    frameworks = list(dict.fromkeys(row[0] for row in rows))
    for framework in frameworks:
        mine = [row for row in rows if row[0] == framework]
        parts.append(
            f'<text x="10" y="{y + 14}" font-size="15" font-weight="bold">'
            f"{escape(FRAMEWORK_TITLES.get(framework, framework))}</text>"
        )
        y += 24
        top = y
        previous = mine[0][1] if mine else ""
        for _, operation, label, ratio, valid in mine:
            if operation != previous:
                y += 8
                previous = operation
            colour = INVALID if not valid else SESSIONWARD if label.startswith("sessionward") else PEER
            width = max(1.0, ratio * scale)
            text = f"{ratio:.2f}x" + ("" if valid else " (invalid)")
            parts.append(
                f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT - 4}" text-anchor="end" '
                f'font-size="12">{escape(label)}</text>'
            )
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + width + 5:.1f}" y="{y + BAR_HEIGHT - 4}" '
                f'font-size="12">{text}</text>'
            )
            y += BAR_HEIGHT + GAP
        one = LABEL_WIDTH + scale
        parts.append(
            f'<line x1="{one:.1f}" y1="{top - 3}" x2="{one:.1f}" y2="{y - GAP + 3}" '
            f'stroke="#444" stroke-dasharray="4 3"/>'
        )
        y += 16
    legend = (
        f'<rect x="10" y="34" width="12" height="12" fill="{SESSIONWARD}"/>'
        f'<text x="27" y="44" font-size="12">sessionward</text>'
        f'<rect x="120" y="34" width="12" height="12" fill="{PEER}"/>'
        f'<text x="137" y="44" font-size="12">peers</text>'
        f'<text x="200" y="44" font-size="12">'
        "dashed line: the bare framework (1.00x); longer is faster</text>"
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y + 10}" '
        f'viewBox="0 0 {WIDTH} {y + 10}" font-family="sans-serif">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n'
        f'<text x="10" y="20" font-size="13">{escape(note)}</text>\n'
        f"{legend}\n" + "\n".join(parts) + "\n</svg>\n"
    )
    path.write_text(svg)
