"""Figures of a whole sweep, one line (or tile) per group, drawn on its parent run.

A group is one combination of the swept factors other than the seed (ffexp.report.design); its
runs are its seeds. Each run arrives as its history columns (``history.csv``: ``epoch`` and
every per-epoch metric, NaN where missing), each group as ``(label, [run columns, ...])``.

- ``gradient_flow``: ‖∂J/∂Z[l]‖ and ‖∂J/∂W[l]‖ against the layer l (log axis) at step 0 (before
  any update) and at each run's last epoch; per group the geometric mean over seeds,
  exp(mean_s log g_s[l]) (the mean on a log axis), with every seed as a thin line. Only the
  ``grad_norm/Z{l}`` and ``grad_norm/W{l}`` columns are read.
- ``learning_curves``: ``train/cost`` and ``val/cost`` (log axis, geometric mean over seeds per
  epoch) and the main validation metric (linear axis, arithmetic mean) of every group on shared
  axes, seeds as thin lines.
- ``decision_boundaries``: one tile per group, an image of the final decision boundary of one
  of its seeds.

Up to MAX_LINES groups share the axes, told apart by colour × line style × marker and named in
one legend; beyond that each figure becomes small multiples (one tile per group, shared axes).
matplotlib's object API on the Agg canvas, no pyplot.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ffexp.plots.figures import bounded

#: groups drawn as lines on shared axes; more become small multiples
MAX_LINES = 24
DPI = 90
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")
_STYLES = ("-", "--", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: a seed's thin line
_SEED = {"lw": 0.7, "alpha": 0.35}

Run = dict  # column name -> np.ndarray over the run's records (``epoch`` first)
Group = tuple  # (label, [Run, ...])


def style(i: int) -> dict:
    """Group i's line style: 10 colours × 3 line styles (30 distinct), a marker besides."""
    return {"color": _COLOURS[i % len(_COLOURS)], "ls": _STYLES[(i // len(_COLOURS)) % 3],
            "marker": _MARKERS[i % len(_MARKERS)]}


def _layers(run: Run, prefix: str) -> list[str]:
    names = [k for k in run if re.fullmatch(rf"{re.escape(prefix)}\d+", k)]
    return sorted(names, key=lambda k: int(k[len(prefix):]))


def profile(run: Run, prefix: str, row: int) -> np.ndarray:
    """The run's per-layer values ``<prefix>1..L`` at record ``row`` (0: step 0, -1: the last
    record), NaN where missing, non-finite or not positive (a gap on a log axis)."""
    names = _layers(run, prefix)
    if not names or not len(run[names[0]]):
        return np.empty(0)
    y = np.array([float(run[k][row]) for k in names])
    return np.where(np.isfinite(y) & (y > 0), y, np.nan)


def geometric_mean(rows: Sequence[np.ndarray]) -> np.ndarray:
    """exp(mean log y) per position over the rows (ragged rows padded with NaN); NaN where no
    row has a value."""
    if not rows:
        return np.empty(0)
    width = max(len(r) for r in rows)
    table = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        table[i, :len(r)] = r
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a column without values: NaN
        return np.exp(np.nanmean(np.log(table), axis=0))


def _figure(rows: int, cols: int, size=(4.6, 3.3)) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _legend(fig: Figure, labels: list[str], title: str) -> None:
    """One legend, right of the axes (``_margins`` leaves it the room), a group an entry."""
    handles = [Line2D([], [], lw=2, ms=5, **style(i)) for i in range(len(labels))]
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(fig.subplotpars.right + 0.01,
                                                                 fig.subplotpars.top),
               frameon=False, fontsize="small", title=title, title_fontsize="small")


def _margins(fig: Figure, top_in: float = 0.8, right_in: float = 0.0, **kw) -> None:
    """Fixed margins in inches: ``top_in`` for the title, ``right_in`` for a legend."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(top=1 - top_in / h, right=1 - (right_in + 0.2) / w, **kw)


def _legend_width(labels: list[str]) -> float:
    """Inches a legend of these labels takes (small font: ~0.075 in a character)."""
    return 0.6 + 0.075 * max((len(s) for s in labels), default=0)


def _seeds_note(groups: Sequence[Group], mean: str = "geometric mean") -> str:
    n = sorted({len(runs) for _, runs in groups})
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}–{n[-1]}"
    return f"{seeds} seed(s) per group: thick = {mean} over seeds, thin = each seed" \
        if n and n[-1] > 1 else "one seed per group"


def _flow_panel(ax, groups: Sequence[Group], prefix: str, row: int) -> None:
    for i, (_, runs) in enumerate(groups):
        st = style(i)
        ys = [profile(r, prefix, row) for r in runs]
        ys = [y for y in ys if y.size]
        if len(ys) > 1:
            for y in ys:
                ax.plot(np.arange(1, len(y) + 1), y, color=st["color"], ls=st["ls"], **_SEED)
        if ys:
            m = geometric_mean(ys)
            ax.plot(np.arange(1, len(m) + 1), m, lw=1.8, ms=4, **st)


def _log(ax) -> None:
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="major", lw=0.4, alpha=0.5)


_FLOW = (("grad_norm/Z", "‖∂J/∂Z[l]‖"), ("grad_norm/W", "‖∂J/∂W[l]‖"))
_WHEN = ((0, "at step 0 (before any update)"), (-1, "at the last epoch"))
_LAYER = "layer l (1 = first hidden, L = output)"


def gradient_flow(groups: Sequence[Group], title: str = "", legend_title: str = "") -> Figure:
    """‖∂J/∂Z[l]‖ (left) and ‖∂J/∂W[l]‖ (right) against l, log y, at step 0 (top row) and at
    the last epoch (bottom row), one line per group (module doc); a column shares its y axis,
    so step 0 and the last epoch compare directly. Past MAX_LINES groups: small multiples."""
    if len(groups) > MAX_LINES:
        return _flow_tiles(groups, title)
    fig, axes = _figure(2, 2, (5.4, 3.4))
    for r, (row, when) in enumerate(_WHEN):
        for c, (prefix, name) in enumerate(_FLOW):
            ax = axes[r, c]
            _flow_panel(ax, groups, prefix, row)
            _log(ax)
            ax.set(title=f"{name} {when}", xlabel=_LAYER, ylabel=name)
    for c in range(2):
        axes[1, c].sharey(axes[0, c])
        axes[1, c].autoscale()
    labels = [label for label, _ in groups]
    _margins(fig, 0.75, _legend_width(labels), hspace=0.45, wspace=0.28)
    _legend(fig, labels, legend_title)
    fig.suptitle(f"{title}\ngradient flow: {_seeds_note(groups)}" if title else
                 f"gradient flow: {_seeds_note(groups)}", fontsize="medium")
    return fig


def _tiles(n: int, size=(3.0, 2.4)) -> tuple[Figure, list]:
    cols = min(6, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    fig, axes = _figure(rows, cols, size)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    for ax in flat[1:n]:
        ax.sharex(flat[0])
        ax.sharey(flat[0])
    return fig, flat[:n]


def _flow_tiles(groups: Sequence[Group], title: str) -> Figure:
    """One tile per group: ‖∂J/∂Z[l]‖ (blue) and ‖∂J/∂W[l]‖ (orange), step 0 dashed, the last
    epoch solid, geometric means over seeds; every tile on the same log axes."""
    fig, axes = _tiles(len(groups))
    for ax, (label, runs) in zip(axes, groups):
        for (prefix, _), colour in zip(_FLOW, _COLOURS):
            for row, ls in ((0, "--"), (-1, "-")):
                ys = [y for y in (profile(r, prefix, row) for r in runs) if y.size]
                if ys:
                    m = geometric_mean(ys)
                    ax.plot(np.arange(1, len(m) + 1), m, color=colour, ls=ls, lw=1.2)
        _log(ax)
        ax.set_title(label, fontsize="x-small")
        ax.tick_params(labelsize="x-small")
    handles = [Line2D([], [], color=c, ls=ls) for (_, _), c in zip(_FLOW, _COLOURS)
               for ls in ("--", "-")]
    names = [f"{name} {when}" for _, name in _FLOW for _, when in _WHEN]
    fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.45 / fig.get_size_inches()[1]),
               ncols=4, fontsize="small", frameon=False)
    fig.suptitle(f"{title}\ngradient flow per group (x: {_LAYER}; geometric mean over seeds)",
                 fontsize="medium")
    _margins(fig, 1.0, hspace=0.5, wspace=0.25)
    return fig


def _curve(runs: Sequence[Run], name: str, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, mean over the runs that have a finite value at that epoch): geometric on a log
    axis, arithmetic on a linear one."""
    values: dict[float, list[float]] = {}
    for r in runs:
        for e, v in zip(r.get("epoch", ()), r.get(name, ())):
            if math.isfinite(v) and (v > 0 or not log):
                values.setdefault(float(e), []).append(float(v))
    x = np.array(sorted(values))
    y = np.array([math.exp(np.mean(np.log(values[e]))) if log else float(np.mean(values[e]))
                  for e in x])
    return x, y


def _finite(run: Run, name: str, log: bool) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(run.get("epoch", ()), float), np.asarray(run.get(name, ()), float)
    keep = np.isfinite(y) & ((y > 0) if log else True)
    return x[keep], y[keep]


def curve_metrics(groups: Sequence[Group], main: str | None) -> list[tuple[str, bool]]:
    """The learning curves' panels: (metric, log axis) for train/cost, val/cost and the main
    metric, those some run logged."""
    have = {k for _, runs in groups for r in runs for k in r}
    want = [("train/cost", True), ("val/cost", True)]
    if main and main not in ("train/cost", "val/cost"):
        want.append((main, False))
    return [(m, log) for m, log in want if m in have]


def learning_curves(groups: Sequence[Group], main: str | None = None, title: str = "",
                    legend_title: str = "") -> Figure:
    """One panel per metric of ``curve_metrics`` against the epoch, one line per group (module
    doc). Past MAX_LINES groups: small multiples of train/cost (solid) and val/cost (dashed)."""
    panels = curve_metrics(groups, main)
    if len(groups) > MAX_LINES:
        return _curve_tiles(groups, title)
    fig, axes = _figure(1, max(1, len(panels)))
    for ax, (name, log) in zip(axes[0], panels):
        for i, (_, runs) in enumerate(groups):
            st = style(i)
            if len(runs) > 1:
                for r in runs:
                    ax.plot(*_finite(r, name, log), color=st["color"], ls=st["ls"], **_SEED)
            x, y = _curve(runs, name, log)
            ax.plot(x, y, lw=1.6, color=st["color"], ls=st["ls"], marker=st["marker"],
                    markevery=max(1, len(x) // 8), ms=4)
        if log:
            ax.set_yscale("log")
        elif bounded(name):
            ax.set_ylim(0.0, 1.0)   # runs compared on the metric's whole range
        ax.grid(True, lw=0.4, alpha=0.5)
        ax.set(title=name, xlabel="epoch (0 = before any update)",
               ylabel=f"{name} at the epoch's end")
    labels = [label for label, _ in groups]
    _margins(fig, 0.75, _legend_width(labels), wspace=0.3, bottom=0.15)
    _legend(fig, labels, legend_title)
    note = _seeds_note(groups, "mean (geometric on the log axes)")
    fig.suptitle(f"{title}\nlearning curves: {note}" if title else f"learning curves: {note}",
                 fontsize="medium")
    return fig


def _curve_tiles(groups: Sequence[Group], title: str) -> Figure:
    fig, axes = _tiles(len(groups))
    for ax, (label, runs) in zip(axes, groups):
        for name, ls in (("train/cost", "-"), ("val/cost", "--")):
            x, y = _curve(runs, name, True)
            if x.size:
                ax.plot(x, y, color=_COLOURS[0], ls=ls, lw=1.2)
        ax.set_yscale("log")
        ax.set_title(label, fontsize="x-small")
        ax.tick_params(labelsize="x-small")
    fig.legend([Line2D([], [], color=_COLOURS[0], ls=ls) for ls in ("-", "--")],
               ["train/cost", "val/cost"], loc="upper center", ncols=2, fontsize="small",
               bbox_to_anchor=(0.5, 1 - 0.45 / fig.get_size_inches()[1]), frameon=False)
    fig.suptitle(f"{title}\ncost per group against the epoch (geometric mean over seeds)",
                 fontsize="medium")
    _margins(fig, 1.0, hspace=0.5, wspace=0.25)
    return fig


def decision_boundaries(tiles: Sequence[tuple[str, np.ndarray]], title: str = "") -> Figure:
    """One tile per group: ``(label, RGB image of the final decision boundary)``, each at its
    own pixel size up to 6 groups (the frame's text stays legible), smaller beyond."""
    n = len(tiles)
    scale = 1.0 if n <= 6 else 0.75 if n <= 12 else 0.55
    height, width = tiles[0][1].shape[:2] if tiles else (240, 220)
    fig, axes = _tiles(n, size=(max(2.0, width / DPI * scale),
                                max(2.0, height / DPI * scale) + 0.3))
    for ax, (label, rgb) in zip(axes, tiles):
        ax.imshow(rgb, interpolation="antialiased")
        ax.set_axis_off()
        ax.set_title(label, fontsize="x-small" if len(tiles) > 12 else "small")
    fig.suptitle(f"{title}\nfinal decision boundary per group (one seed)" if title else
                 "final decision boundary per group (one seed)", fontsize="medium")
    _margins(fig, 0.75, hspace=0.3, wspace=0.05)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """The figure as a PNG (legend outside the axes included), no timestamp in the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return path
