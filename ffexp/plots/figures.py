"""Figures of one run: learning curves, gradient norms per layer over epochs, the gradient-flow
profile across layers, and the decision boundary of a 2-feature classification dataset.

Every figure is titled with the run's identity (``title``) and its axes say what the number is
measured on: ``train/cost`` and ``val/cost`` are the cost J over the whole split at the epoch's
end; the per-epoch gradient norms are, by default, the mean over the epoch's updates of the
mini-batch norms (``train.epoch_gradients=full``: those of the full training cost at the
epoch's end); an epoch 0, when the history has one, is the network before any update.

Cheap by construction (a run draws them on its critical path): ``matplotlib.figure.Figure`` on
the Agg canvas, never pyplot (no global state, no display); one figure per kind of plot and
process, kept with its axes and cleared of the last run's data only (the axes' ticks, a few
lines and texts each, are built on the first draw and reused: a quarter of a plot's time);
fixed margins (constrained/tight layout would double the rendering time); a modest dpi; the
decision boundary as an image of the prediction grid plus one contour, not filled contours.

Text is drawn from a process-wide cache of rendered strings (ffexp/text_tiles.py: half of a
figure's drawing time was matplotlib laying out and rendering every glyph on every draw). The
PNGs are the canvas's pixels through ffexp/png.py (no row filter, zlib level 1), not
``savefig`` and Pillow.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from ffexp.plots.png import png_bytes
from ffexp._compat import mpl_text

DPI = 80
GRID = 120  # decision-boundary grid points per axis
PANEL = (5.5, 4.0)  # inches per panel
#: class colours of a multiclass boundary (filled regions light, points dark)
CLASS_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                 "#8c8c8c", "#ccb974", "#64b5cd")
BINARY_CMAP = "RdBu_r"   # ŷ from 0 (blue) to 1 (red)
GRADIENTS = {"mean": "mean over the epoch's updates", "full": "full training cost"}

#: the process's figures, by (kind, ncols, size, dpi): each with its axes
_FIGURES: dict[tuple, tuple[Figure, list]] = {}


def figure(ncols: int = 1, size=PANEL, dpi: int = DPI, kind: str = "") -> tuple[Figure, list]:
    """The process's figure for this kind of plot, with ``ncols`` axes side by side and no data:
    made on first use, then cleared of what the last call drew (``_clear``)."""
    key = (kind, ncols, tuple(size), dpi)
    if key in _FIGURES:
        fig, axes = _FIGURES[key]
        _clear(fig, axes)
        return fig, axes
    fig = Figure(dpi=dpi, figsize=(size[0] * ncols, size[1]))
    mpl_text.canvas(fig)
    fig.subplots_adjust(left=0.12 / ncols ** 0.5, right=0.97, bottom=0.13, top=0.88, wspace=0.3)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    _FIGURES[key] = fig, axes
    return fig, axes


def _clear(fig: Figure, axes: list) -> None:
    """Remove every artist a plot adds (lines, collections, images, texts, legends, titles) and
    reset the colour cycle, the scales and the limits: the axes are as new, ticks kept."""
    for ax in axes:
        for artist in (*ax.lines, *ax.collections, *ax.images, *ax.patches, *ax.texts):
            artist.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_prop_cycle(None)
        ax.set_xscale("linear")
        ax.set_yscale("linear")
        ax.relim()
        ax.autoscale()
    for artist in (*fig.texts, *fig.legends):
        artist.remove()


def _series(columns: dict, name: str):
    y = np.asarray(columns.get(name, []), dtype=float)
    return np.asarray(columns["epoch"], dtype=float)[: len(y)], y


def _epoch_label(columns) -> str:
    epochs = columns.get("epoch") or [1]
    return "epoch (0 = before any update)" if epochs[0] == 0 else "epoch"


def learning_curves(result, title: str = "") -> Figure:
    """Cost J per epoch on the training and validation sets; validation metrics beside."""
    cols = result.columns()
    val_metrics = [k for k in cols if k.startswith("val/") and k != "val/cost"]
    fig, axes = figure(2 if val_metrics else 1, kind="learning_curves")
    ax = axes[0]
    for name, label in (("train/cost", "training set"), ("val/cost", "validation set")):
        if name in cols:
            ax.plot(*_series(cols, name), label=label)
    ax.set(xlabel=_epoch_label(cols), ylabel="cost J over the split, at the epoch's end",
           title="cost")
    ax.legend(loc="upper right")
    if val_metrics:
        for name in val_metrics:
            x, y = _series(cols, name)
            keep = np.isfinite(y)  # with train.eval_every > 1 the metrics skip epochs
            axes[1].plot(x[keep], y[keep], label=name[4:])
        axes[1].set(xlabel=_epoch_label(cols), ylabel="metric on the validation set",
                    title="validation metrics")
        axes[1].legend(loc="lower right")
    _title(fig, title, "learning curves")
    return fig


def _title(fig: Figure, title: str, what: str) -> None:
    fig.suptitle(f"{title} — {what}" if title else what, fontsize="medium")


def _log_y(ax, values) -> None:
    """Log scale with few ticks (every tick is an object matplotlib builds and draws: the
    default minor ticks made the log plots 3x slower): decades over a wide range; 1, 2, 5 per
    decade, labelled, within about two decades."""
    v = np.concatenate([np.ravel(x) for x in values]) if len(values) else np.empty(0)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return
    ax.set_yscale("log")
    wide = np.log10(v.max() / v.min()) > 2
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0),
                                          numticks=8))
    ax.yaxis.set_minor_locator(NullLocator())
    # plain-text labels (0.05, 1e-05): the default 10^k labels go through mathtext, ~0.1 s a plot
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))


def gradient_norms(result, title: str = "", gradients: str = "mean") -> Figure:
    """‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ per layer over epochs, log scale, one line per layer."""
    cols = result.columns()
    fig, axes = figure(2, kind="gradient_norms")
    for ax, prefix, label in ((axes[0], "grad_norm/W", "‖∂J/∂W[l]‖"),
                              (axes[1], "grad_norm/Z", "‖∂J/∂Z[l]‖")):
        layers = sorted((k for k in cols if k.startswith(prefix)), key=lambda k: int(k[len(prefix):]))
        for name in layers:
            x, y = _series(cols, name)
            keep = np.isfinite(y) & (y > 0)
            ax.plot(x[keep], y[keep], label=f"layer {name[len(prefix):]}")
        _log_y(ax, [cols[k] for k in layers])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel=_epoch_label(cols), ylabel=f"{label}, {GRADIENTS.get(gradients, gradients)}",
               title=label)
        ax.legend(loc="upper right", fontsize="small")
    _title(fig, title, "gradient norms per layer")
    return fig


def _profile_label(stats, gradients: str) -> str:
    if stats.epoch == 0:
        return "epoch 0: before any update (full training cost)"
    return f"epoch {stats.epoch} ({GRADIENTS.get(gradients, gradients)})"


def gradient_flow(first, last, title: str = "", gradients: str = "mean", size=PANEL,
                  dpi: int = DPI) -> Figure:
    """The gradient-flow profile: ‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ against the layer l (log axis),
    at the first and at the last epoch (EpochStats). Where the lines fall towards l = 1 the
    gradients vanish on their way back from the output."""
    fig, axes = figure(2, size, dpi, kind="gradient_flow")
    for ax, attr, label in ((axes[0], "grad_norm_W", "‖∂J/∂W[l]‖"),
                            (axes[1], "grad_norm_Z", "‖∂J/∂Z[l]‖")):
        drawn = []
        for stats, style in ((first, "o--"), (None if last is first else last, "s-")):
            if stats is None:
                continue
            y = np.asarray(getattr(stats, attr), dtype=float)
            l = np.arange(1, len(y) + 1)
            keep = np.isfinite(y) & (y > 0)
            drawn.append(y)
            ax.plot(l[keep], y[keep], style, label=_profile_label(stats, gradients))
        _log_y(ax, drawn)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="layer l (1 = first hidden, L = output)", ylabel=label)
        ax.legend(loc="best", fontsize="small" if size[0] >= PANEL[0] else "x-small")
    _title(fig, title, "gradient flow across layers")
    return fig


#: a gradient-flow step image: 2 panels of (3.5, 3.4) in at 72 dpi = 504 x 244 px (its
#: thumbnail, halved, fits MLflow's 256 px square)
FRAME, FRAME_DPI = (3.5, 3.4), 72


def _profile(stats, attr: str) -> np.ndarray:
    y = np.asarray(getattr(stats, attr), dtype=float)
    return np.where(np.isfinite(y) & (y > 0), y, np.nan)   # a log axis: gaps, not zeros


def gradient_flow_frames(records, title: str = "", gradients: str = "mean", size=FRAME,
                         dpi: int = FRAME_DPI) -> list[np.ndarray]:
    """The gradient-flow profile at each record (EpochStats) as an (h, w, 3) uint8 image:
    ‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ against l (log axes, limits common to all frames), the first
    record's profile dashed in every frame, the frame's own solid (none in the first frame), its
    epoch at the top right. Drawn once and blitted: each frame restores the saved background
    and draws only its two lines and its epoch (measured at load 5 on 2 cores: 2 ms a frame,
    where redrawing the figure took 70 ms)."""
    first = records[0]
    fig, axes = figure(2, size, dpi, kind="gradient_flow_frames")
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.16, top=0.8, wspace=0.28)
    moving = []
    for ax, attr, label in ((axes[0], "grad_norm_W", "‖∂J/∂W[l]‖"),
                            (axes[1], "grad_norm_Z", "‖∂J/∂Z[l]‖")):
        y = _profile(first, attr)
        l = np.arange(1, len(y) + 1)
        ax.plot(l, y, "o--", label=_profile_label(first, gradients))
        moving.append(ax.plot(l, y, "s-", animated=True,
                              label=f"the step's epoch ({GRADIENTS.get(gradients, gradients)})")[0])
        every = np.concatenate([_profile(s, attr) for s in records])
        _log_y(ax, [every])
        every = every[np.isfinite(every)]
        if every.size:
            ax.set_ylim(every.min() / 1.5, every.max() * 1.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="layer l (1 = first hidden, L = output)", ylabel=label)
    fig.legend(handles=axes[0].get_lines(), loc="upper center", bbox_to_anchor=(0.5, 0.92),
               ncols=2, fontsize="x-small", frameon=False)
    fig.text(0.01, 0.985, f"{title} · gradient flow" if title else "gradient flow",
             ha="left", va="top", fontsize="medium")
    epoch = fig.text(0.99, 0.985, "", ha="right", va="top", fontsize="medium",
                     fontweight="bold", animated=True)
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    frames = []
    for stats in records:
        fig.canvas.restore_region(background)
        for line, attr in zip(moving, ("grad_norm_W", "grad_norm_Z")):
            if stats is not first:
                line.set_ydata(_profile(stats, attr))
                fig.draw_artist(line)
        epoch.set_text(f"epoch {stats.epoch}")
        fig.draw_artist(epoch)
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    return frames


def _grid(X: np.ndarray, n: int = GRID):
    lo, hi = X.min(axis=1) - 0.5, X.max(axis=1) + 0.5
    x0, x1 = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    g0, g1 = np.meshgrid(x0, x1)
    return (lo, hi), g0, g1, np.vstack([g0.ravel(), g1.ravel()])   # (2, n²)


def boundary_field(net, dataset, grid: np.ndarray) -> tuple[np.ndarray, list[float], str]:
    """(field over the grid, the field's contour levels, what it is): ŷ for binary (and the
    first label of multilabel), contour at 0.5; the predicted class for multiclass, contours
    between consecutive classes."""
    Yhat = net.forward(grid)                                       # (k, n²)
    if dataset.task == "multiclass":
        k = Yhat.shape[0]
        return np.argmax(Yhat, axis=0).astype(float), [c + 0.5 for c in range(k - 1)], "class"
    what = "ŷ" if Yhat.shape[0] == 1 else "ŷ of label 1"
    return Yhat[0], [0.5], what


def has_boundary(dataset) -> bool:
    """A decision boundary is drawn for classification on 2 features only: a regression's
    prediction has no boundary, and more features have no plane to draw it in."""
    return dataset is not None and dataset.n_features == 2 and dataset.task != "regression"


def decision_boundary(net, dataset, title: str = "", size=PANEL, dpi: int = DPI,
                      grid: int = GRID) -> Figure:
    """Filled regions of the predicted class (multiclass) or of ŷ (binary) over the
    standardized feature plane, the boundary as a contour (ŷ = 0.5 for binary), and the
    training points coloured by their label."""
    X, Y = dataset.X_train, dataset.Y_train
    (lo, hi), g0, g1, points = _grid(X, grid)
    field, levels, what = boundary_field(net, dataset, points)
    field = field.reshape(g0.shape)
    fig, (ax,) = figure(1, size, dpi, kind=f"decision_boundary:{what}")
    extent = (lo[0], hi[0], lo[1], hi[1])
    if what == "class":
        k = net.layer_sizes[-1]
        cmap = ListedColormap(CLASS_COLOURS[:k]) if k <= len(CLASS_COLOURS) else \
            colormaps["tab20"].resampled(k)
        ax.imshow(field, origin="lower", extent=extent, aspect="auto", cmap=cmap, alpha=0.35,
                  vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
        labels = np.argmax(Y, axis=0)
        ax.scatter(X[0], X[1], c=labels, s=9, cmap=cmap, vmin=-0.5, vmax=k - 0.5,
                   edgecolors="k", linewidths=0.2)
    else:
        image = ax.imshow(np.clip(field, 0, 1), origin="lower", extent=extent, aspect="auto",
                          cmap=BINARY_CMAP, alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
        if len(fig.axes) == 1:  # the colour bar: its scale (0..1) and label are the kind's
            fig.subplots_adjust(right=0.88)
            fig.colorbar(image, ax=ax, label=what, fraction=0.05, pad=0.02)
        ax.scatter(X[0], X[1], c=Y[0], s=9, cmap=BINARY_CMAP, vmin=-0.3, vmax=1.3,
                   edgecolors="k", linewidths=0.2)
    if np.nanmin(field) < max(levels) and np.nanmax(field) > min(levels):
        ax.contour(g0, g1, field, levels=levels, colors="k", linewidths=1.2)
    names = getattr(dataset, "feature_names", ("x1", "x2"))
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel=f"{names[0]} (standardized)",
           ylabel=f"{names[1]} (standardized)")
    kind = "predicted class" if what == "class" else f"{what}, boundary ŷ = 0.5"
    ax.set_title(f"decision boundary ({kind}), training points",
                 fontsize="medium" if size[0] >= PANEL[0] else "small")
    fig.suptitle(title or "decision boundary", fontsize="medium")
    return fig


def boundary_pixels(net, dataset, grid: int = 60, scale: int = 4) -> np.ndarray:
    """The decision boundary as an RGB uint8 image drawn with numpy alone (a step image costs
    a few milliseconds instead of a figure's ~0.1 s): the filled regions as in
    ``decision_boundary``, the boundary in black, the training points in their label's colour;
    x0 to the right, x1 up, no axes (plots/decision_boundary.png has them)."""
    X, Y = dataset.X_train, dataset.Y_train
    (lo, hi), _, _, points = _grid(X, grid)
    field, _, what = boundary_field(net, dataset, points)
    F = field.reshape(grid, grid)[::-1]                            # row 0: the largest x1
    if what == "class":
        k = net.layer_sizes[-1]
        palette = np.array([to_rgb(c) for c in (CLASS_COLOURS * (k // len(CLASS_COLOURS) + 1))[:k]])
        side, labels = F.astype(int), np.argmax(Y, axis=0)
        fill, dots = 0.35 * palette[side] + 0.65, 0.8 * palette[labels]
    else:
        cmap = _colormap(BINARY_CMAP)
        side, labels = (F > 0.5).astype(int), Y[0]
        fill = 0.45 * cmap(np.clip(F, 0, 1))[..., :3] + 0.55
        dots = 0.8 * cmap(np.where(labels > 0.5, 0.9, 0.1))[..., :3]
    # colours to bytes on the grid, then each cell a scale x scale block: (grid, s, grid, s, 3)
    fill, dots = (fill * 255).astype(np.uint8), (dots * 255).astype(np.uint8)
    blocks = np.broadcast_to(fill[:, None, :, None], (grid, scale, grid, scale, 3)).copy()
    blocks[1:, 0][side[1:] != side[:-1]] = 0                      # boundary: black, where the
    blocks.transpose(0, 2, 1, 3, 4)[:, 1:, :, 0][side[:, 1:] != side[:, :-1]] = 0  # side flips
    img = blocks.reshape(grid * scale, grid * scale, 3)
    h, w = img.shape[:2]
    col = np.round((X[0] - lo[0]) / (hi[0] - lo[0]) * (w - 1)).astype(int)
    row = np.round((hi[1] - X[1]) / (hi[1] - lo[1]) * (h - 1)).astype(int)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            img[np.clip(row + dr, 0, h - 1), np.clip(col + dc, 0, w - 1)] = dots
    return img


@cache
def _colormap(name: str):
    return colormaps[name]   # the registry copies the colormap on every lookup


def save(fig: Figure, path) -> Path:
    """Draw the figure and write its pixels as an RGB PNG (ffexp.plots.png: no row filter, zlib
    level 1; 24 ms a figure where ``savefig`` at zlib level 1 took 28). The figures are opaque
    (a white face), so the alpha channel, 255 throughout, is left out."""
    path = Path(path)
    fig.canvas.draw()
    path.write_bytes(png_bytes(np.asarray(fig.canvas.buffer_rgba())[..., :3]))
    return path


def write_plots(result, directory, net=None, dataset=None, title: str = "",
                gradients: str = "mean") -> list[Path]:
    """Write the run's PNGs into ``directory``: learning_curves, gradient_norms, gradient_flow,
    and decision_boundary when ``has_boundary(dataset)`` and the weights are finite."""
    directory = Path(directory)
    out = []
    if result.history:
        out.append(save(learning_curves(result, title), directory / "learning_curves.png"))
        out.append(save(gradient_norms(result, title, gradients), directory / "gradient_norms.png"))
        out.append(save(gradient_flow(result.history[0], result.history[-1], title, gradients),
                        directory / "gradient_flow.png"))
    if net is not None and has_boundary(dataset) \
            and math.isfinite(float(np.sum(net.weights[0]))):
        out.append(save(decision_boundary(net, dataset, title), directory / "decision_boundary.png"))
    return out
