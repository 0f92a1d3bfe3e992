"""A report as a list of blocks, written twice: report.md (figures beside it) and a
self-contained report.html (figures embedded as base64). No wall-clock time anywhere, fixed
float formats, so the same store gives the same bytes.

Blocks are tuples: ``("h", level, text)``, ``("p", text)``, ``("warn", text)``, ``("ul", items)``,
``("code", text)``, ``("table", header, rows)``, ``("img", alt, filename)``. Inline text is
Markdown with three constructs only: ``code`` spans, **bold** and backslash escapes. Text that
comes from the store (run names, params, tags, experiment names) enters a block through
``esc`` (plain text) or ``code`` (a code span), so it can neither open HTML nor Markdown
markup in report.md; the HTML writer reads the same three constructs and escapes the rest.
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


_SPECIAL = re.compile(r"([\\`*<>&!#~]|\](?=[(\[:])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def esc(text) -> str:
    """Plain text safe in Markdown and in our HTML: markup characters backslash-escaped
    (``_`` only where it could start or end emphasis, ``]`` only where it could close a link:
    before ``(``, ``[`` or ``:``), newlines as spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def code(text) -> str:
    """A code span holding ``text`` literally, whatever backquotes it contains."""
    text = " ".join(str(text).splitlines())
    ticks = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _fence(text: str) -> str:
    return "`" * max(3, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)


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
            parts.append(f"{_fence(b[1])}\n{b[1]}\n{_fence(b[1])}")
        elif kind == "table":
            parts.append(md_table(b[1], b[2]))
        elif kind == "img":
            parts.append(f"![{b[1]}]({b[2]})")
    return "\n\n".join(parts) + "\n"


_TOKEN = re.compile(r"\\([!-/:-@\[-`{-~])|(`+)(.*?[^`])\2(?!`)|\*\*")


def _inline(text: str) -> str:
    """Our Markdown subset (code spans, **bold**, backslash escapes) as HTML, the rest escaped."""
    out, bold, pos = [], False, 0
    for m in _TOKEN.finditer(text):
        out.append(html.escape(text[pos:m.start()], quote=False))
        if m.group(1) is not None:
            out.append(html.escape(m.group(1), quote=False))
        elif m.group(2):
            inner = m.group(3)
            if len(inner) > 2 and inner.startswith(" ") and inner.endswith(" "):
                inner = inner[1:-1]
            out.append(f"<code>{html.escape(inner, quote=False)}</code>")
        else:
            out.append("</strong>" if bold else "<strong>")
            bold = not bold
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False) + ("</strong>" if bold else ""))
    return "".join(out)


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
