"""How the figures tell groups apart: panels (small multiples) and a style per group.

A style is colour × line style × marker. With two factors or more, one factor with 2-4 levels
gets the line style and the others the colour, so a reader decodes a line by its factors (solid
relu, dashed tanh); a marker repeats the colour's index, which keeps lines apart in greyscale
and where colours repeat. Past MAX_PER_PANEL groups, one factor becomes the panels' columns
(the first factor, in the report's key order, that leaves at most MAX_PER_PANEL groups per
panel), and the styles describe the groups within a panel — the same style is the same
within-panel combination in every column.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

MAX_PER_PANEL = 8
MAX_PANELS = 6
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


@dataclass(frozen=True)
class Style:
    color: tuple
    ls: str
    marker: str


@dataclass
class Layout:
    """Groups in ranking order: ``labels`` and ``styles``; ``panels`` [(title, [group
    indices])]; ``legend`` [(name, style)], each distinct line once (without the facet factor,
    which the panel titles give); ``legend_title``."""

    labels: list[str]
    styles: list[Style]
    panels: list[tuple[str, list[int]]]
    legend: list[tuple[str, Style]]
    legend_title: str | None = None


def _palette(n: int) -> list[tuple]:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _describe(values: pd.DataFrame, keys: list[str]) -> list[str]:
    return [", ".join(f"{k}={v}" for k, v in zip(keys, row) if v != "") or "all runs"
            for row in values[keys].itertuples(index=False)]


def styles_for(values: pd.DataFrame, keys: list[str]) -> list[Style]:
    """One distinct style per row of ``values`` (the groups' key values, '' where inert)."""
    n = len(values)
    rows = [tuple(str(v) for v in r) for r in values[keys].itertuples(index=False)]
    levels = [sorted(set(r[j] for r in rows)) for j in range(len(keys))]
    dashed = [j for j in range(len(keys)) if 2 <= len(levels[j]) <= len(LINESTYLES)]
    ls_at = min(dashed, key=lambda j: (len(levels[j]), -j)) if len(keys) >= 2 and dashed else None
    combo = [tuple(v for j, v in enumerate(r) if j != ls_at) for r in rows]
    colour_of = {c: i for i, c in enumerate(sorted(set(combo)))}
    palette = _palette(len(colour_of))
    out = []
    for r, c in zip(rows, combo):
        ci = colour_of[c]
        li = levels[ls_at].index(r[ls_at]) if ls_at is not None else ci // len(palette)
        out.append(Style(palette[ci % len(palette)], LINESTYLES[li % len(LINESTYLES)],
                         MARKERS[ci % len(MARKERS)]))
    if len(set(out)) < n:  # more groups than styles by factors: number them instead
        palette = _palette(n)
        out = [Style(palette[i % len(palette)], LINESTYLES[(i // len(palette)) % 4],
                     MARKERS[i % len(MARKERS)]) for i in range(n)]
    return out


def _facet_key(values: pd.DataFrame, keys: list[str]) -> str | None:
    if len(values) <= MAX_PER_PANEL or len(keys) < 2:
        return None
    for k in keys:
        if (2 <= values[k].nunique() <= MAX_PANELS
                and values.groupby(k).size().max() <= MAX_PER_PANEL):
            return k
    return None


def layout(values: pd.DataFrame, keys: list[str], labels: list[str]) -> Layout:
    """The figures' layout for groups with key values ``values`` (rows in ranking order, ''
    for an inert key) and plain-text ``labels``."""
    values = values.reset_index(drop=True)
    facet = _facet_key(values, keys)
    if facet is None:
        st = styles_for(values, keys)
        return Layout(labels, st, [("", list(range(len(values))))], list(zip(labels, st)))
    inner = [k for k in keys if k != facet]
    names = _describe(values, inner)
    uniq = list(dict.fromkeys(names))
    first = [names.index(u) for u in uniq]
    style_of = dict(zip(uniq, styles_for(values.iloc[first].reset_index(drop=True), inner)))
    panels = [(f"{facet}={v}", [i for i in range(len(values)) if values[facet].iat[i] == v])
              for v in sorted(set(values[facet]))]
    return Layout(labels, [style_of[n] for n in names], panels,
                  [(u, style_of[u]) for u in uniq], f"{facet}: one column each")
