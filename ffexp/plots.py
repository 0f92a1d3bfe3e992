"""Figures of one run, as PNG files: learning curves, gradient norms per layer, and the decision
boundary of a 2-feature dataset.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas, never pyplot: no global
figure state, no display needed, and a few tens of milliseconds per PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, MaxNLocator

DPI = 100
GRID = 150  # decision-boundary grid points per axis


def _figure(ncols: int = 1) -> tuple[Figure, list]:
    # fixed margins: constrained layout would double the rendering time
    fig = Figure(figsize=(5.5 * ncols, 4), dpi=DPI)
    fig.subplots_adjust(left=0.12 / ncols ** 0.5, right=0.97, bottom=0.13, top=0.91, wspace=0.3)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _series(columns: dict, name: str):
    y = np.asarray(columns.get(name, []), dtype=float)
    return np.asarray(columns["epoch"], dtype=float)[: len(y)], y


def learning_curves(result, title: str = "") -> Figure:
    """Cost per epoch on the training and validation sets; validation metrics beside."""
    cols = result.columns()
    val_metrics = [k for k in cols if k.startswith("val/") and k != "val/cost"]
    fig, axes = _figure(2 if val_metrics else 1)
    ax = axes[0]
    for name, label in (("train/cost", "train"), ("val/cost", "validation")):
        if name in cols:
            ax.plot(*_series(cols, name), label=label)
    ax.set(xlabel="epoch", ylabel="cost J", title=title or "learning curves")
    ax.legend(loc="upper right")
    if val_metrics:
        for name in val_metrics:
            axes[1].plot(*_series(cols, name), label=name[4:])
        axes[1].set(xlabel="epoch", ylabel="validation metric", title="validation")
        axes[1].legend(loc="lower right")
    return fig


def gradient_norms(result, title: str = "") -> Figure:
    """‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ per layer over epochs, log scale, one line per layer."""
    cols = result.columns()
    fig, axes = _figure(2)
    for ax, prefix, label in ((axes[0], "grad_norm/W", "‖∂J/∂W[l]‖"),
                              (axes[1], "grad_norm/Z", "‖∂J/∂Z[l]‖")):
        layers = sorted((k for k in cols if k.startswith(prefix)), key=lambda k: int(k[len(prefix):]))
        for name in layers:
            x, y = _series(cols, name)
            keep = np.isfinite(y) & (y > 0)
            ax.plot(x[keep], y[keep], label=f"layer {name[len(prefix):]}")
        if any(np.any(np.asarray(cols[k]) > 0) for k in layers):
            ax.set_yscale("log")
            # plain-text tick labels: the default 10^k labels go through mathtext, ~0.1 s a plot
            ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=True))
            # within about a decade there is no major tick: label some minor ones instead
            ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=label, title=f"{title} {label}".strip())
        ax.legend(loc="upper right", fontsize="small")
    return fig


def decision_boundary(net, dataset, predict) -> Figure:
    """Predicted class over the (standardized) feature plane, with the training points.

    ``predict(Yhat) -> labels`` turns outputs (k, m) into class indices (TASKS[task].predict).
    """
    X, Y = dataset.X_train, dataset.Y_train
    lo, hi = X.min(axis=1) - 0.5, X.max(axis=1) + 0.5
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID))
    grid = np.vstack([g0.ravel(), g1.ravel()])                     # (2, GRID²)
    Z = np.asarray(predict(net.forward(grid)), dtype=float)
    labels = np.asarray(predict(Y), dtype=float)
    fig, (ax,) = _figure(1)
    if Z.ndim == 1:
        ax.contourf(g0, g1, Z.reshape(g0.shape), alpha=0.3, cmap="coolwarm")
    labels = labels if labels.ndim == 1 else labels[0]
    ax.scatter(X[0], X[1], c=labels, s=8, cmap="coolwarm", edgecolors="none")
    names = getattr(dataset, "feature_names", ("x1", "x2"))
    ax.set(xlabel=f"{names[0]} (standardized)", ylabel=f"{names[1]} (standardized)",
           title=f"decision boundary ({dataset.name})")
    return fig


def save(fig: Figure, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI)
    return path


def write_plots(result, directory, net=None, dataset=None, predict=None) -> list[Path]:
    """Write the run's PNGs into ``directory``; the decision boundary only for 2 features and a
    classification task."""
    directory = Path(directory)
    out = []
    if result.history:
        out.append(save(learning_curves(result), directory / "learning_curves.png"))
        out.append(save(gradient_norms(result), directory / "gradient_norms.png"))
    if net is not None and dataset is not None and predict is not None \
            and dataset.n_features == 2 and dataset.task != "regression" \
            and math.isfinite(float(np.sum(net.weights[0]))):
        out.append(save(decision_boundary(net, dataset, predict), directory / "decision_boundary.png"))
    return out
