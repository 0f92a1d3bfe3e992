"""The report's figures (matplotlib Agg, PNG, no timestamp in the file so reruns are identical).

Every group is identifiable in every panel: one legend for the whole figure lists every group
(style.py gives each a colour × line style × marker), and past ``style.MAX_PER_PANEL`` groups
the figure is split into small multiples, one column per level of a factor, with shared y axes.

- learning curves (a chaotic group, probe.py, ends its curve with †): per group, the mean over seeds per epoch with a band of ±1 std — on a log
  axis the geometric mean exp(mean log v) with the band exp(mean log v ± std log v); on a
  linear axis the band is cut to the metric's range (an accuracy band never passes 1, a cost
  band never passes 0);
- gradient-norm profiles: ‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ against the layer l (log scale), the
  geometric mean over seeds, at the first and at the last epoch — vanishing gradients fall
  towards l = 1, exploding ones rise;
- heatmap of the ranking value over the two most important factors, each cell annotated with
  its mean and n (and † when it holds a group the chaos probe marked chaotic), the colour
  scale at least 4× the typical paired-interval half-width wide, so
  a difference inside the noise takes at most a quarter of the colours.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .stats import CHAOS_MARK, metric_range  # noqa: E402
from .style import Layout  # noqa: E402

_PNG_META = {"Software": None}
_DPI = 90
#: how many noise widths the heatmap's colour scale spans at least
NOISE_SPAN = 4.0


def save(fig, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=_DPI, metadata=_PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(layout: Layout, rows: int, width: float, height: float):
    """rows × panels axes, y shared along a row (one quantity across the panels); with one
    panel, the rows are laid out side by side instead."""
    cols = len(layout.panels)
    if cols == 1:
        fig, axes = plt.subplots(1, rows, figsize=(width * rows, height), squeeze=False)
        return fig, axes.T
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                             sharey="row")
    return fig, axes


def _legend(fig, layout: Layout) -> None:
    """One legend for the figure: every group (within-panel part of its label) once."""
    handles = [Line2D([], [], color=s.color, ls=s.ls, marker=s.marker, lw=1.5, ms=5)
               for _, s in layout.legend]
    fig.legend(handles, [name for name, _ in layout.legend], fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.95),
               title=layout.legend_title, title_fontsize=8, frameon=False)


def _band(values: pd.Series, log: bool, bounds: tuple[float, float]):
    """(centre, lower, upper) per step: arithmetic ± std cut to bounds, or geometric on log."""
    g = values.groupby(level=0)
    if log:
        lv = np.log(values)
        m, s = lv.groupby(level=0).mean(), lv.groupby(level=0).std(ddof=1).fillna(0.0)
        return np.exp(m), np.exp(m - s), np.exp(m + s)
    m, s = g.mean(), g.std(ddof=1).fillna(0.0)
    return m, (m - s).clip(lower=bounds[0]), (m + s).clip(upper=bounds[1])


def draw_learning_curves(history: pd.DataFrame, labels: pd.Series, layout: Layout,
                         metrics: list[str]):
    """Rows: metrics; columns: the layout's panels. ``labels`` maps run_id -> group label."""
    fig, axes = _grid(layout, len(metrics), 3.8, 2.9)
    h = history[np.isfinite(history["value"])]
    h = h.assign(group=h["run_id"].map(labels))
    steps = max(1, int(h["step"].max() if len(h) else 1))
    every = max(1, steps // 8)
    for r, metric in enumerate(metrics):
        m = h[h["key"] == metric]
        log = metric.endswith("cost") and len(m) > 0 and bool((m["value"] > 0).all())
        bounds = metric_range(metric)
        for c, (title, members) in enumerate(layout.panels):
            ax = axes[r][c]
            for i in members:
                s = m[m["group"] == layout.labels[i]].set_index("step")["value"]
                if s.empty:
                    continue
                centre, lo, hi = _band(s, log, bounds)
                st = layout.styles[i]
                ax.plot(centre.index, centre.to_numpy(), color=st.color, ls=st.ls,
                        marker=st.marker, ms=4, markevery=(i % every, every), lw=1.4,
                        label=layout.labels[i])
                ax.fill_between(centre.index, lo.to_numpy(), hi.to_numpy(), color=st.color,
                                alpha=0.15, lw=0)
                if layout.labels[i].endswith(CHAOS_MARK):  # a chaotic group (probe.py)
                    ax.annotate(CHAOS_MARK, (centre.index[-1], centre.iat[-1]), color=st.color,
                                fontsize=11, xytext=(3, 0), textcoords="offset points",
                                va="center")
            if log:
                ax.set_yscale("log")
            ax.set_title(f"{metric}" + (f"\n{title}" if title else ""), fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
    _legend(fig, layout)
    fig.suptitle("Learning curves: mean over seeds ± 1 std (geometric on log axes)")
    fig.tight_layout()
    return fig


def learning_curves(history, labels, layout, metrics, path: Path) -> Path:
    return save(draw_learning_curves(history, labels, layout, metrics), path)


def _layer(key: str) -> int:
    return int(re.search(r"(\d+)$", key).group(1))


def draw_grad_profiles(history: pd.DataFrame, labels: pd.Series, layout: Layout):
    """Rows: ‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ at the first and the last epoch; columns: panels.
    None when no run logged per-layer gradient norms."""
    g = history[history["key"].str.match(r"grad_norm/[WZ]\d+$")]
    if g.empty:
        return None
    g = g.assign(kind=g["key"].str[10], layer=g["key"].map(_layer),
                 group=g["run_id"].map(labels))
    first = g["step"] == g.groupby("run_id")["step"].transform("min")
    last = g["step"] == g.groupby("run_id")["step"].transform("max")
    g = g[np.isfinite(g["value"]) & (g["value"] > 0)]
    rows = [(k, w, mask) for k in "WZ" for w, mask in (("first epoch", first), ("last epoch", last))]
    fig, axes = _grid(layout, len(rows), 3.8, 2.7)
    layers = sorted(g["layer"].unique())
    for r, (kind, when, mask) in enumerate(rows):
        sel = g[mask.reindex(g.index) & (g["kind"] == kind)]
        for c, (title, members) in enumerate(layout.panels):
            ax = axes[r][c]
            for i in members:
                s = sel[sel["group"] == layout.labels[i]].groupby("layer")["value"]
                geo = np.exp(s.apply(lambda v: np.log(v).mean()))
                if not geo.empty:
                    st = layout.styles[i]
                    ax.plot(geo.index, geo.to_numpy(), color=st.color, ls=st.ls,
                            marker=st.marker, ms=4, lw=1.4, label=layout.labels[i])
            ax.set_yscale("log")
            ax.set_xlabel("layer l")
            name = "‖∂J/∂W[l]‖" if kind == "W" else "‖∂J/∂Z[l]‖"
            ax.set_title(f"{name}, {when}" + (f"\n{title}" if title else ""), fontsize=9)
            if layers:
                ax.set_xticks(layers)
            ax.grid(alpha=0.3, which="both")
    _legend(fig, layout)
    fig.suptitle("Gradient norms across layers (geometric mean over seeds)")
    fig.tight_layout()
    return fig


def grad_profiles(history, labels, layout, path: Path) -> Path | None:
    fig = draw_grad_profiles(history, labels, layout)
    return save(fig, path) if fig is not None else None


def colour_limits(values: np.ndarray, noise: float, metric: str) -> tuple[float, float]:
    """(vmin, vmax): the values' range widened to NOISE_SPAN × noise around its middle, moved
    inside the metric's range; without a noise estimate, the metric's range when it is finite."""
    lo, hi = metric_range(metric)
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    span = NOISE_SPAN * noise if noise > 0 else (hi - lo if np.isfinite(hi - lo) else 0.0)
    if vmax - vmin >= span:
        return vmin, vmax
    span = min(span, hi - lo)
    mid = (vmin + vmax) / 2
    a, b = mid - span / 2, mid + span / 2
    shift = max(0.0, lo - a) - max(0.0, b - hi)
    return a + shift, b + shift


def draw_heatmap(per_run: pd.DataFrame, rows: str, cols: str, metric: str, noise: float):
    """Mean of ``value`` and its n for each (rows, cols) level pair."""
    v = per_run.dropna(subset=["value"]).groupby([rows, cols])["value"]
    grid = v.mean().unstack(cols).sort_index(axis=0).sort_index(axis=1)
    count = v.count().unstack(cols).reindex_like(grid)
    chaos = (per_run.groupby([rows, cols])["chaotic"].any().unstack(cols).reindex_like(grid)
             .fillna(False) if "chaotic" in per_run else None)
    values = grid.to_numpy(dtype=float)
    vmin, vmax = colour_limits(values, noise, metric)
    fig, ax = plt.subplots(figsize=(1.6 * grid.shape[1] + 3, 0.8 * grid.shape[0] + 2))
    im = ax.imshow(values, cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
    long = max((len(str(c)) for c in grid.columns), default=0) > 12
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns],
                  rotation=25 if long else 0, ha="right" if long else "center")
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    for (i, j), x in np.ndenumerate(values):
        if np.isfinite(x):  # dark text on the bright end of viridis
            color = "k" if im.norm(x) > 0.6 else "w"
            mark = f" {CHAOS_MARK}" if chaos is not None and bool(chaos.iat[i, j]) else ""
            ax.text(j, i, f"{x:.4f}{mark}\nn={int(count.iat[i, j])}", ha="center",
                    va="center", color=color, fontsize=9)
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"{metric}: mean over seeds and other factors")
    fig.tight_layout()
    return fig


def heatmap(per_run, rows, cols, metric, noise: float, path: Path) -> Path:
    return save(draw_heatmap(per_run, rows, cols, metric, noise), path)
