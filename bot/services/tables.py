"""Report tables as text (terminal, staff chat) and as one self-contained HTML page.

``report`` and ``outcomes`` describe their figures as sections (title, header, rows of text
cells); how a section is laid out is the same for both, and lives here once.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping

from bot.i18n import t

Section = tuple[str, list[str], list[list[str]]]

_STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
    "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>"
)


def text_tables(title: str, sections: Iterable[Section], language: str) -> str:
    """Aligned plain-text tables: the first column to the left, the figures to the right."""
    lines = [title, ""]
    for section, header, rows in sections:
        lines.append(section)
        if not rows:
            lines.extend(["  " + t(language, "no data"), ""])
            continue
        widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
        for row in [header, *rows]:
            cells = [
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  " + "  ".join(cells).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def html_page(
    title: str,
    sections: Iterable[Section],
    language: str,
    *,
    pictures: Mapping[str, bytes],
    preface: str | None = None,
) -> str:
    """A self-contained HTML page (the PNG pictures inline, then the tables) to open or mail."""
    escaped = html.escape(title)
    parts = [
        "<!doctype html>",
        f'<html lang="{html.escape(language)}"><head><meta charset="utf-8">',
        f"<title>{escaped}</title>",
        _STYLE + "</head><body>",
        f"<h1>{escaped}</h1>",
    ]
    if preface:
        parts.append(f"<p>{html.escape(preface)}</p>")
    for name, png in pictures.items():
        parts.append(
            f'<img alt="{html.escape(name)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
    for section, header, rows in sections:
        parts.append(f"<h2>{html.escape(section)}</h2>")
        if not rows:
            parts.append(f"<p>{html.escape(t(language, 'no data'))}</p>")
            continue
        parts.append(
            "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
        )
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
