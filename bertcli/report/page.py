"""report.html: one self-contained page (inline CSS, PNGs as data URIs, no script, nothing
fetched) from a title, score cards, pictures and tables."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CSS = """
:root { --ink:#1f2430; --muted:#6b7280; --line:#e5e7eb; --bg:#f7f7f9; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--ink); background:var(--bg); }
header { padding:16px 28px; background:#111827; color:#f9fafb; }
header h1 { font-size:18px; margin:0 0 2px; font-weight:600; }
header p { margin:0; color:#9ca3af; font-size:13px; }
main { padding:20px 28px; display:flex; flex-direction:column; gap:18px; max-width:1100px; }
.cards { display:flex; gap:12px; flex-wrap:wrap; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 18px; }
.stat { min-width:140px; }
.stat b { display:block; font-size:22px; font-weight:600; font-variant-numeric:tabular-nums; }
.stat span { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.05em; }
h2 { font-size:13px; margin:0 0 10px; text-transform:uppercase; letter-spacing:.06em;
  color:var(--muted); font-weight:600; }
img { max-width:100%; height:auto; display:block; }
table { border-collapse:collapse; font-size:13px; width:100%; }
th, td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:left;
  vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
mark { background:#fde68a; padding:0 2px; border-radius:3px; }
.missed { color:#b91c1c; font-weight:600; } .spurious { color:#b45309; font-weight:600; }
.note { color:var(--muted); font-size:12px; margin:8px 0 0; }
"""


@dataclass
class Section:
    title: str
    images: list[Path] = field(default_factory=list)
    table: dict[str, Any] | None = None  # {"columns": [...], "rows": [[...]]}
    note: str = ""


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _cell(value: Any) -> str:
    if isinstance(value, dict) and "mark" in value:
        return (
            html.escape(value.get("before", ""))
            + f"<mark>{html.escape(value['mark'])}</mark>"
            + html.escape(value.get("after", ""))
        )
    if isinstance(value, float):
        from bertcli.report.plots import number

        return number(value)
    text = html.escape(str(value))
    return f'<span class="{text}">{text}</span>' if text in ("missed", "spurious") else text


def _table(table: dict[str, Any]) -> str:
    first = table["rows"][0] if table["rows"] else []
    numeric = [isinstance(v, int | float) for v in first] + [False] * len(table["columns"])
    head = "".join(
        f"<th class='num'>{html.escape(str(c))}</th>"
        if numeric[i]
        else f"<th>{html.escape(str(c))}</th>"
        for i, c in enumerate(table["columns"])
    )
    rows = []
    for row in table["rows"]:
        cells = "".join(
            f'<td class="num">{_cell(v)}</td>'
            if isinstance(v, int | float)
            else f"<td>{_cell(v)}</td>"
            for v in row
        )
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def render(
    title: str, subtitle: str, cards: Sequence[tuple[str, str]], sections: Sequence[Section]
) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header><main>",
    ]
    if cards:
        stats = "".join(
            f"<div class='card stat'><span>{html.escape(k)}</span><b>{html.escape(v)}</b></div>"
            for k, v in cards
        )
        parts.append(f"<div class='cards'>{stats}</div>")
    for section in sections:
        parts.append(f"<section class='card'><h2>{html.escape(section.title)}</h2>")
        for image in section.images:
            parts.append(f"<img src='{data_uri(image)}' alt='{html.escape(Path(image).stem)}'>")
        if section.table is not None:
            parts.append(_table(section.table))
        if section.note:
            parts.append(f"<p class='note'>{html.escape(section.note)}</p>")
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts)
