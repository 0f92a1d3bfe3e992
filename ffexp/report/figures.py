"""The report's figures (matplotlib Agg, PNG, no timestamp in the file so reruns are identical).

- learning curves: per group, the mean over seeds per epoch with a ±1 std band;
- gradient-norm profiles: ‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ against the layer l (log scale), the
  geometric mean over seeds, one line per group, at the first and at the last epoch — vanishing
  gradients fall towards l = 1, exploding ones rise;
- heatmap of the ranking value over the two most important factors (mean over everything else).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

_PNG_META = {"Software": None}
_DPI = 100


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=_DPI, metadata=_PNG_META, bbox_inches="tight")
    plt.close(fig)
    return path


def _colors(n: int):
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def learning_curves(history: pd.DataFrame, labels: pd.Series, order: list[str],
                    metrics: list[str], path: Path) -> Path:
    """One panel per metric; ``labels`` maps run_id -> group label, ``order`` is the ranking."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    h = history.assign(group=history["run_id"].map(labels))
    for ax, metric in zip(axes[0], metrics):
        m = h[h["key"] == metric]
        for color, group in zip(_colors(len(order)), order):
            s = m[m["group"] == group].groupby("step")["value"]
            mean, std = s.mean(), s.std(ddof=1).fillna(0.0)
            if mean.empty:
                continue
            ax.plot(mean.index, mean.to_numpy(), color=color, label=group, lw=1.5)
            ax.fill_between(mean.index, (mean - std).to_numpy(), (mean + std).to_numpy(),
                            color=color, alpha=0.2, lw=0)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if metric.endswith("cost") and (m["value"] > 0).all() and len(m):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Learning curves: mean over seeds ± 1 std")
    fig.tight_layout()
    return _save(fig, path)


def _layer(key: str) -> int:
    return int(re.search(r"(\d+)$", key).group(1))


def grad_profiles(history: pd.DataFrame, labels: pd.Series, order: list[str],
                  path: Path) -> Path | None:
    """‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ vs l at each run's first and last epoch, one line per group."""
    g = history[history["key"].str.match(r"grad_norm/[WZ]\d+$")]
    if g.empty:
        return None
    g = g.assign(kind=g["key"].str[10], layer=g["key"].map(_layer),
                 group=g["run_id"].map(labels))
    first = g["step"] == g.groupby("run_id")["step"].transform("min")
    last = g["step"] == g.groupby("run_id")["step"].transform("max")
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), squeeze=False)
    for row, kind in enumerate("WZ"):
        for col, (when, mask) in enumerate((("first epoch", first), ("last epoch", last))):
            ax = axes[row][col]
            sel = g[mask & (g["kind"] == kind) & (g["value"] > 0)]
            for color, group in zip(_colors(len(order)), order):
                s = sel[sel["group"] == group].groupby("layer")["value"]
                geo = np.exp(s.apply(lambda v: np.log(v).mean()))
                if not geo.empty:
                    ax.plot(geo.index, geo.to_numpy(), "o-", color=color, label=group, lw=1.5)
            ax.set_yscale("log")
            ax.set_xlabel("layer l")
            name = "‖∂J/∂W[l]‖" if kind == "W" else "‖∂J/∂Z[l]‖"
            ax.set_title(f"{name}, {when}")
            layers = sorted(sel["layer"].unique())
            if layers:
                ax.set_xticks(layers)
            ax.grid(alpha=0.3, which="both")
    axes[0][1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Gradient norms across layers (geometric mean over seeds)")
    fig.tight_layout()
    return _save(fig, path)


def heatmap(per_run: pd.DataFrame, rows: str, cols: str, metric: str, path: Path) -> Path:
    """Mean of ``value`` for each (rows, cols) level pair, annotated."""
    grid = (per_run.dropna(subset=["value"]).groupby([rows, cols])["value"].mean()
            .unstack(cols).sort_index(axis=0).sort_index(axis=1))
    fig, ax = plt.subplots(figsize=(1.6 * grid.shape[1] + 3, 0.8 * grid.shape[0] + 2))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(v):  # dark text on the bright end of viridis
            color = "k" if im.norm(v) > 0.6 else "w"
            ax.text(j, i, f"{v:.4g}", ha="center", va="center", color=color, fontsize=9)
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"{metric}: mean over seeds and other factors")
    fig.tight_layout()
    return _save(fig, path)
