"""A report as a list of blocks, written twice: report.md (figures beside it) and a
self-contained report.html (figures embedded as base64). No wall-clock time anywhere, fixed
float formats, so the same store gives the same bytes.

Blocks are tuples: ``("h", level, text)``, ``("p", text)``, ``("warn", text)``, ``("ul", items)``,
``("code", text)``, ``("table", header, rows)``, ``("img", alt, filename)``. Inline text may use
Markdown's ``code`` and **bold**; the HTML writer translates those two and escapes the rest.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

Block = tuple


def fmt(x) -> str:
    """Fixed formatting: 4 decimals in [1e-3, 1e4), else 3-digit scientific; '—' for missing."""
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return str(x)
    x = float(x)
    if not math.isfinite(x):
        return "—"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4f}"
    return f"{x:.3e}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table, columns padded to equal width."""
    cells = [[_cell(h) for h in header]] + [[_cell(c) for c in r] for r in rows]
    widths = [max(3, *(len(r[i]) for r in cells)) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |",
                      *(line(r) for r in cells[1:])])


def to_markdown(blocks: list[Block]) -> str:
    parts = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            parts.append("#" * b[1] + " " + b[2])
        elif kind == "p":
            parts.append(b[1])
        elif kind == "warn":
            parts.append("> **Warning:** " + b[1])
        elif kind == "ul":
            parts.append("\n".join(f"- {item}" for item in b[1]))
        elif kind == "code":
            parts.append("```\n" + b[1] + "\n```")
        elif kind == "table":
            parts.append(md_table(b[1], b[2]))
        elif kind == "img":
            parts.append(f"![{b[1]}]({b[2]})")
    return "\n\n".join(parts) + "\n"


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;
padding:.25em .6em;text-align:left}th{background:#f3f3f3}code,pre{background:#f6f6f6}
pre{padding:.6em;overflow-x:auto}.warn{border-left:4px solid #d98c00;background:#fff6e0;
padding:.5em 1em}img{max-width:100%}"""


def to_html(blocks: list[Block], folder: Path, title: str) -> str:
    """One HTML page; images are read from ``folder`` and embedded."""
    body = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
        elif kind == "p":
            body.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "warn":
            body.append(f'<p class="warn"><strong>Warning:</strong> {_inline(b[1])}</p>')
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(b[1])}</code></pre>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>"
                           for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((folder / b[2]).read_bytes()).decode("ascii")
            body.append(f'<p><img alt="{html.escape(b[1])}" src="data:image/png;base64,{data}"></p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
