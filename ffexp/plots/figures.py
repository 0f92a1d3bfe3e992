"""Figures of one run: learning curves, gradient norms per layer over epochs, the gradient-flow
profile across layers, and the decision boundary of a 2-feature classification dataset.

Every figure is titled with the run's identity (``title``) and its axes say what the number is
measured on, true at every step: ``train/cost`` and ``val/cost`` are the cost J over the whole
split at the epoch's end, epoch 0 the network at initialization (before any update); the
gradient norms are the full training cost's (``grad_norm/*``), or, with
``train.epoch_gradients=mean``, the mean over each epoch's updates (``grad_norm_mean/*``), which
a figure says and never draws on the same axes as a full-gradient value. Legends sit outside
the data; layers are coloured by depth with a sequential colormap (``layer_colours``), distinct
for any number of layers; bounded metrics (accuracy, F1, ROC AUC...) have a fixed [0, 1] axis,
so that two runs' figures compare side by side; a decision boundary that does not exist (the
network predicts one side everywhere) is said in the title.

Cheap by construction (a run draws them on its critical path): ``matplotlib.figure.Figure`` on
the Agg canvas, never pyplot (no global state, no display); one figure per kind of plot and
process, kept with its axes and cleared of the last run's data only (the axes' ticks, a few
lines and texts each, are built on the first draw and reused: a quarter of a plot's time);
fixed margins (constrained/tight layout would double the rendering time); a modest dpi; the
decision boundary as an image of the prediction grid plus one contour, not filled contours.

Text is drawn from a process-wide cache of rendered strings and font metrics
(ffexp/_compat/mpl_text.py: half of a figure's drawing time was matplotlib laying out and
rendering every glyph on every draw). ``save`` draws a plot in layers (``draw``): what a
sweep's runs share (the x axis, axis labels, legends, the boundary's axes and colour bar) is
drawn once and kept while the next run shows the same, the run's own artists (y axes, lines,
fill, points, titles) over it in matplotlib's order. The PNGs are the canvas's pixels through
ffexp/plots/png.py (no row filter, ISA-L's deflate), not ``savefig`` and Pillow.
"""

from __future__ import annotations

import math
import os
from functools import cache
from operator import attrgetter
from pathlib import Path
from weakref import WeakKeyDictionary

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
#: the sequential colormap of layers by depth (layer 1 darkest), and the part of it used
LAYER_CMAP, LAYER_RANGE = "viridis", (0.0, 0.88)
#: metrics with values in [0, 1] (ffexp.metrics), drawn on a fixed [0, 1] axis
BOUNDED_METRICS = ("accuracy", "f1", "roc_auc", "hamming_loss", "subset_accuracy")
#: class colours of a multiclass boundary (filled regions light, points dark)
CLASS_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                 "#8c8c8c", "#ccb974", "#64b5cd")
BINARY_CMAP = "RdBu_r"   # ŷ from 0 (blue) to 1 (red)
GRADIENTS = {"mean": "mean over the epoch's updates", "full": "full training cost"}
#: the metric-name prefix of each measure's gradient norms (ffexp.nn.history.GRAD_PREFIX)
GRAD_KEYS = {"full": "grad_norm", "mean": "grad_norm_mean"}

#: the process's figures, by (kind, ncols, size, dpi): each with its axes
_FIGURES: dict[tuple, tuple[Figure, list]] = {}


def figure(ncols: int = 1, size=PANEL, dpi: int = DPI, kind: str = "",
           margins: dict | None = None, nrows: int = 1) -> tuple[Figure, list]:
    """The process's figure for this kind of plot, with ``nrows`` x ``ncols`` axes and no data:
    made on first use (``margins``: its ``subplots_adjust``, e.g. room for a legend outside the
    axes), then cleared of what the last call drew (``_clear``)."""
    key = (kind, ncols, tuple(size), dpi, nrows)
    if key in _FIGURES:
        fig, axes = _FIGURES[key]
        _clear(fig, axes)
        return fig, axes
    fig = Figure(dpi=dpi, figsize=(size[0] * ncols, size[1] * nrows))
    mpl_text.canvas(fig)
    fig.subplots_adjust(**{"left": 0.12 / ncols ** 0.5, "right": 0.97, "bottom": 0.13,
                           "top": 0.88, "wspace": 0.3, **(margins or {})})
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(nrows * ncols)]
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
        ax.set_title("")
    for artist in (*fig.texts, *fig.legends):
        artist.remove()


#: ``FFEXP_PLOTS_LAYERED=0``: ``save`` draws every artist of every plot on every call (the
#: reference benchmarks/plots.py compares against)
LAYERED = os.environ.get("FFEXP_PLOTS_LAYERED", "1") != "0"
#: each plot's split for ``save``, by figure: (what its static artists show, its dynamic artists)
_LAYERS: "WeakKeyDictionary[Figure, tuple]" = WeakKeyDictionary()
#: each plot's drawn static layer, by figure: (what it shows, the canvas's pixels)
_STATIC: "WeakKeyDictionary[Figure, tuple]" = WeakKeyDictionary()


def _layers(fig: Figure, static: tuple, dynamic: list) -> None:
    """Split the figure for ``save``: ``static`` says everything its other artists show (a
    sweep's runs share it: the x axis of the same epochs or layers, the axis labels, legends
    of the same entries, the boundary's axes and colour bar); ``dynamic``, the run's own
    artists (the y axes, lines, images, points, titles) and whatever matplotlib draws over
    them (the spines)."""
    _LAYERS[fig] = static, dynamic


def _draw_order(fig: Figure) -> list:
    """The figure's artists in the order ``Figure.draw`` draws them: its children by zorder
    (stable), each Axes's children by zorder after its patch."""
    def by_z(parent):
        return sorted((a for a in parent.get_children() if a is not parent.patch),
                      key=attrgetter("zorder"))
    order = []
    for artist in by_z(fig):
        order.extend(by_z(artist) if artist in fig.axes else [artist])
    return order


def draw(fig: Figure) -> None:
    """Draw the figure on its canvas: every artist, or, for a plot split by ``_layers``, its
    static layer restored from the last call whose static artists showed the same (drawn
    anew otherwise) and its dynamic artists drawn over it in matplotlib's order. The same
    pixels as ``fig.canvas.draw()`` (tests/test_plots.py): the static artists a dynamic one
    draws over come before it in that order, and those that come after one (the spines over
    the lines) are dynamic."""
    split = _LAYERS.get(fig) if LAYERED else None
    if split is None:
        fig.canvas.draw()
        return
    static, dynamic = split
    static = (static, mpl_text.TEXT_CACHE.enabled, fig.canvas)
    kept = _STATIC.get(fig)
    if kept is not None and kept[0] == static:
        fig.canvas.restore_region(kept[1])
    else:
        for artist in dynamic:
            artist.set_animated(True)
        try:
            fig.canvas.draw()
        finally:
            for artist in dynamic:
                artist.set_animated(False)
        _STATIC[fig] = static, fig.canvas.copy_from_bbox(fig.bbox)
    for ax in fig.axes:
        ax.viewLim              # autoscaled, as Axes.draw does first
    drawn = {id(a) for a in dynamic}
    for artist in _draw_order(fig):
        if id(artist) in drawn:
            fig.draw_artist(artist)


def _line_keys(lines) -> tuple:
    """What a legend of these lines shows: their labels and styles."""
    return tuple((l.get_label(), l.get_color(), l.get_linestyle(), l.get_marker(),
                  l.get_linewidth()) for l in lines)


def _axes_key(ax) -> tuple:
    """What an Axes's x axis and labels show (its y axis is dynamic)."""
    return (ax.get_xlim(), ax.get_xscale(), ax.get_xlabel(), ax.get_position().bounds)


def _plot_layers(fig: Figure, axes: list, legend_lines: list, *extra) -> None:
    """The split of a plot of lines: dynamic the y axes, lines, spines and the title."""
    dynamic = list(fig.texts)
    for ax in axes:
        dynamic += [ax.yaxis, *ax.lines, *ax.spines.values()]
    _layers(fig, (tuple(_axes_key(ax) for ax in axes), _line_keys(legend_lines), *extra),
            dynamic)


def _series(columns: dict, name: str):
    y = np.asarray(columns.get(name, []), dtype=float)
    return np.asarray(columns["epoch"], dtype=float)[: len(y)], y


def _epoch_label(columns) -> str:
    epochs = columns.get("epoch") or [1]
    return "epoch (0 = at initialization)" if epochs[0] == 0 else "epoch"


def bounded(metric: str) -> bool:
    """Whether a task metric's values lie in [0, 1] (``BOUNDED_METRICS``)."""
    return metric.split("/")[-1].startswith(BOUNDED_METRICS)


def _legend_right(ax, **kw):
    """The axes' legend outside it, to its right (the figure leaves room: ``RIGHT_LEGEND``)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize="small", **kw)


#: margins of the figures whose legends sit to the right of each panel
RIGHT_LEGEND = {1: dict(left=0.12, right=0.74), 2: dict(left=0.07, right=0.86, wspace=0.5)}


def learning_curves(result, title: str = "") -> Figure:
    """Cost J per epoch on the training and validation sets; validation metrics beside (bounded
    ones on a fixed [0, 1] axis)."""
    cols = result.columns()
    val_metrics = [k for k in cols if k.startswith("val/") and k != "val/cost"]
    n = 2 if val_metrics else 1
    fig, axes = figure(n, kind="learning_curves", margins=RIGHT_LEGEND[n])
    ax = axes[0]
    for name, label in (("train/cost", "training set"), ("val/cost", "validation set")):
        if name in cols:
            ax.plot(*_series(cols, name), label=label)
    ax.set(xlabel=_epoch_label(cols), ylabel="cost J over the whole split")
    _legend_right(ax)
    if val_metrics:
        for name in val_metrics:
            x, y = _series(cols, name)
            keep = np.isfinite(y)  # with train.eval_every > 1 the metrics skip epochs
            # not clipped at the fixed axis' edge: a value of 1 stays a whole line
            axes[1].plot(x[keep], y[keep], label=name[4:], clip_on=False)
        axes[1].set(xlabel=_epoch_label(cols), ylabel="metric on the validation set")
        if all(bounded(name) for name in val_metrics):
            axes[1].set_ylim(0.0, 1.0)
        _legend_right(axes[1])
    _title(fig, title, "learning curves")
    _plot_layers(fig, axes, [l for a in axes for l in a.lines])
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


def layer_colours(L: int) -> list:
    """L colours of layers 1..L from the sequential ``LAYER_CMAP``, darkest first: distinct for
    any L, and the order of the colours is the order of depth."""
    lo, hi = LAYER_RANGE
    return [tuple(c) for c in _colormap(LAYER_CMAP)(np.linspace(lo, hi, L) if L > 1 else [lo])]


def _measure(cols) -> str:
    """``full`` if the columns hold full-gradient norms after step 0, else ``mean``."""
    later = [v for v in cols.get("grad_norm/W1", [])[1:] if math.isfinite(v)]
    return "mean" if not later and "grad_norm_mean/W1" in cols else "full"


def gradient_norms(result, title: str = "", gradients: str = "") -> Figure:
    """‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ per layer over epochs, log scale, one line per layer coloured
    by depth, one legend to the right. The full training cost's norms (``grad_norm/*``) at
    every epoch; a history of ``mean`` norms draws those (``grad_norm_mean/*``, from epoch 1)
    and says so, without step 0's full-gradient value."""
    cols = result.columns()
    measure = _measure(cols)
    fig, axes = figure(2, kind="gradient_norms", margins=dict(left=0.07, right=0.87, wspace=0.3))
    key = GRAD_KEYS[measure]
    for ax, prefix, label in ((axes[0], f"{key}/W", "‖∂J/∂W[l]‖"),
                              (axes[1], f"{key}/Z", "‖∂J/∂Z[l]‖")):
        layers = sorted((k for k in cols if k.startswith(prefix) and k[len(prefix):].isdigit()),
                        key=lambda k: int(k[len(prefix):]))
        for name, colour in zip(layers, layer_colours(len(layers))):
            x, y = _series(cols, name)
            keep = np.isfinite(y) & (y > 0)
            ax.plot(x[keep], y[keep], color=colour, label=name[len(prefix):])
        _log_y(ax, [cols[k] for k in layers])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        what = "full training cost" if measure == "full" else "mean over updates"
        ax.set(xlabel=_epoch_label(cols), ylabel=f"{label}, {what}")
    lines = axes[0].get_lines()
    if lines:   # one legend for both panels (the same layers, the same colours), outside them
        fig.legend(handles=lines, loc="upper left", bbox_to_anchor=(0.885, 0.88),
                   borderaxespad=0.0, fontsize="small", title="layer l",
                   title_fontsize="small", ncols=math.ceil(len(lines) / 18))
    _title(fig, title, "gradient norms per layer" + (
        "" if measure == "full" else ", epochs ≥ 1: the mean over each epoch's updates of the "
        "mini-batch gradients' norms (train.epoch_gradients=mean)"))
    _plot_layers(fig, axes, lines, len(fig.legends))
    return fig


def _profile_label(stats) -> str:
    when = "at initialization" if stats.epoch == 0 else "after its updates"
    return f"epoch {stats.epoch}: {when} ({GRADIENTS.get(stats.gradients, stats.gradients)})"


def gradient_flow(first, last, title: str = "", gradients: str = "", size=PANEL,
                  dpi: int = DPI) -> Figure:
    """The gradient-flow profile: ‖∂J/∂W[l]‖ and ‖∂J/∂Z[l]‖ against the layer l (log axis),
    at the first and at the last epoch (EpochStats), each labelled with what it measures; the
    legend above the panels. Where the lines fall towards l = 1 the gradients vanish on their
    way back from the output. Records of different measures (``full`` at step 0, ``mean``
    after it) are not drawn on the same axes: the last is left out and the title says so."""
    fig, axes = figure(2, size, dpi, kind="gradient_flow", margins=dict(top=0.76))
    same = last is first or last.gradients == first.gradients
    records = [(first, "o--")] + ([(last, "s-")] if same and last is not first else [])
    for ax, attr, label in ((axes[0], "grad_norm_W", "‖∂J/∂W[l]‖"),
                            (axes[1], "grad_norm_Z", "‖∂J/∂Z[l]‖")):
        drawn = []
        for stats, style in records:
            y = np.asarray(getattr(stats, attr), dtype=float)
            l = np.arange(1, len(y) + 1)
            keep = np.isfinite(y) & (y > 0)
            drawn.append(y)
            ax.plot(l[keep], y[keep], style, label=_profile_label(stats))
        _log_y(ax, drawn)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="layer l (1 = first hidden, L = output)", ylabel=label)
    fig.legend(handles=axes[0].get_lines(), loc="upper center", bbox_to_anchor=(0.5, 0.9),
               ncols=2, fontsize="small", frameon=False)
    what = "gradient flow across layers"
    if not same:
        what += f" (epoch {last.epoch}: {GRADIENTS.get(last.gradients, last.gradients)}, " \
                "another measure: in gradient_norms.png)"
    _title(fig, title, what)
    _plot_layers(fig, axes, axes[0].get_lines())
    return fig


#: step images (frames): MLflow shows a step image as its thumbnail, the image reduced by a
#: whole factor to fit 256 px (tracking/images.py): frames of 257-512 px are halved. Their text
#: is drawn at FRAME_FONT points (FRAME_FONT - 2 the smaller texts), FRAME_DPI dots an inch:
#: 8.3 to 9.7 px high in the halved thumbnail
FRAME_DPI, FRAME_FONT = 100, 14
#: a gradient-flow frame: the two profiles stacked, 4.0 x 5.12 in = 400 x 512 px
FLOW_FRAME = (4.0, 2.56)
#: a decision-boundary frame: 4.4 x 4.8 in = 440 x 480 px
BOUNDARY_FRAME = (4.4, 4.8)


def _profile(stats, attr: str) -> np.ndarray:
    y = np.asarray(getattr(stats, attr), dtype=float)
    return np.where(np.isfinite(y) & (y > 0), y, np.nan)   # a log axis: gaps, not zeros


def _frame_text(fig: Figure, title: str, what: str, animated_title: bool = False):
    """The frame's title on its first line, its (animated) step label in bold on the second,
    at the left; returns (the step label, the height of the figure fraction a line takes).
    ``animated_title``: the title too is left out of ``canvas.draw()`` (drawn with
    ``draw_artist``: ``fig.texts[-2]``)."""
    line = (FRAME_FONT + 5) / 72 * fig.dpi / fig.bbox.height
    fig.text(0.02, 1 - 0.2 * line, f"{title} · {what}" if title else what, ha="left",
             va="top", fontsize=FRAME_FONT - 2, animated=animated_title)
    epoch = fig.text(0.02, 1 - 1.15 * line, "", ha="left", va="top", fontsize=FRAME_FONT,
                     fontweight="bold", animated=True)
    return epoch, line


def step_label(stats_or_epoch) -> str:
    """The epoch written on a step image: ``epoch 0 (at initialization)`` or ``epoch e``."""
    epoch = getattr(stats_or_epoch, "epoch", stats_or_epoch)
    return "epoch 0 (at initialization)" if epoch == 0 else f"epoch {epoch}"


def gradient_flow_frames(records, title: str = "", gradients: str = "", size=FLOW_FRAME,
                         dpi: int = FRAME_DPI) -> list[np.ndarray]:
    """The gradient-flow profile at each record (EpochStats) as an (h, w, 3) uint8 image:
    ‖∂J/∂W[l]‖ above ‖∂J/∂Z[l]‖, against l (log axes, limits common to all frames), the
    frame's own profile solid, the first record's dashed when it is the same measure (every
    frame of a ``full`` history; with ``mean`` the records after step 0 are another measure
    and are drawn alone), the frame's epoch and measure at the top. Drawn once and blitted:
    the axes drawn once, the reference lines and the measure's text over them once per kind
    of frame; each frame restores its kind's background and draws only its lines and epoch."""
    first = records[0]
    plt_rc = {"fontsize": FRAME_FONT}
    fig, axes = figure(1, size, dpi, kind="gradient_flow_frames", nrows=2,
                       margins=dict(left=0.2, right=0.96, bottom=0.1, top=0.79, hspace=0.12))
    reference, moving = [], []
    for ax, attr, label in ((axes[0], "grad_norm_W", "‖∂J/∂W[l]‖"),
                            (axes[1], "grad_norm_Z", "‖∂J/∂Z[l]‖")):
        y = _profile(first, attr)
        l = np.arange(1, len(y) + 1)
        reference.append(ax.plot(l, y, "o--", color="0.55", animated=True,
                                 label="epoch 0 (at initialization)")[0])
        moving.append(ax.plot(l, y, "s-", color="C1", animated=True, label="this epoch")[0])
        every = np.concatenate([_profile(s, attr) for s in records])
        _log_y(ax, [every])
        every = every[np.isfinite(every)]
        if every.size:
            ax.set_ylim(every.min() / 1.5, every.max() * 1.5)
        ax.set_xlim(0.7, len(y) + 0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label, **plt_rc)
        ax.tick_params(labelsize=FRAME_FONT - 2)
    axes[0].tick_params(labelbottom=False)
    axes[1].set_xlabel("layer l (L = the output layer)", **plt_rc)
    epoch, line = _frame_text(fig, title, "gradient flow")
    measure = fig.text(0.02, 1 - 2.2 * line, "", ha="left", va="top", fontsize=FRAME_FONT - 2,
                       animated=True)
    # the x axes (the layers) kept across runs of the same depth; the run's title and y axes
    # (its limits) drawn over them
    heading = fig.texts[-3]
    _layers(fig, tuple(_axes_key(ax) for ax in axes),
            [heading, *(a for ax in axes for a in (ax.yaxis, *ax.spines.values()))])
    draw(fig)
    axes_drawn = fig.canvas.copy_from_bbox(fig.bbox)
    # what a frame draws besides its own line and epoch, by (measure, with the reference):
    # the background with the measure's text and the reference lines, blitted once each
    backgrounds = {}
    frames = []
    for stats in records:
        with_reference = stats is not first and stats.gradients == first.gradients
        what = GRADIENTS.get(stats.gradients, stats.gradients)
        text = f"solid: this epoch ({what})" + \
            ("\ndashed: epoch 0 (at initialization)" if with_reference else "")
        measure.set_text(text)
        if (text, with_reference) not in backgrounds:
            fig.canvas.restore_region(axes_drawn)
            for ref in reference if with_reference else ():
                fig.draw_artist(ref)
            fig.draw_artist(measure)
            backgrounds[text, with_reference] = fig.canvas.copy_from_bbox(fig.bbox)
        fig.canvas.restore_region(backgrounds[text, with_reference])
        for line, attr in zip(moving, ("grad_norm_W", "grad_norm_Z")):
            line.set_ydata(_profile(stats, attr))
            fig.draw_artist(line)
        epoch.set_text(step_label(stats))
        fig.draw_artist(epoch)
        frames.append(rgb(fig))
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


def one_side(field: np.ndarray, levels: list, what: str) -> str:
    """'' if the field crosses its boundary somewhere, else what the network predicts
    everywhere, said plainly (e.g. ``no boundary: ŷ < 0.5 everywhere (ŷ 0.49-0.5)``)."""
    lo, hi = float(np.nanmin(field)), float(np.nanmax(field))
    if lo < max(levels) and hi > min(levels):
        return ""
    if what == "class":
        return f"no boundary: class {int(lo)} predicted everywhere"
    side = "<" if hi < 0.5 else "≤" if hi == 0.5 and lo < 0.5 else "=" if lo == hi else \
        ">" if lo > 0.5 else "≥"
    low, high = f"{lo:.3g}", f"{hi:.3g}"
    spread = low if low == high else f"{low} to {high}"
    return f"no boundary: {what} {side} 0.5 everywhere ({what} {spread})"


def decision_boundary(net, dataset, title: str = "", size=PANEL, dpi: int = DPI,
                      grid: int = GRID) -> Figure:
    """Filled regions of the predicted class (multiclass) or of ŷ (binary) over the
    standardized feature plane, the boundary as a contour (ŷ = 0.5 for binary), and the
    training points coloured by their label; where the network predicts one side everywhere,
    the title says so (``one_side``) instead of naming a boundary that is not drawn."""
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
    nothing = one_side(field, levels, what)
    if not nothing:
        ax.contour(g0, g1, field, levels=levels, colors="k", linewidths=1.2)
    names = getattr(dataset, "feature_names", ("x1", "x2"))
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel=f"{names[0]} (standardized)",
           ylabel=f"{names[1]} (standardized)")
    kind = "predicted class" if what == "class" else f"{what}, boundary ŷ = 0.5"
    ax.set_title(nothing or f"decision boundary ({kind}), training points",
                 fontsize="medium" if size[0] >= PANEL[0] else "small",
                 color="#b00000" if nothing else "black")
    fig.suptitle(title or "decision boundary", fontsize="medium")
    _layers(fig, (what, ax.get_xlim(), ax.get_ylim(), ax.get_xlabel(), ax.get_ylabel(),
                  len(fig.axes)),
            [*ax.images, *ax.collections, *ax.spines.values(), ax.title, *fig.texts])
    return fig


def _fill_lut(what: str, k: int) -> np.ndarray:
    """Colours of the filled regions as uint8 RGB: 256 levels of ŷ (binary) or k classes."""
    if what == "class":
        palette = np.array([to_rgb(c) for c in (CLASS_COLOURS * (k // len(CLASS_COLOURS) + 1))[:k]])
        return (255 * (0.35 * palette + 0.65)).astype(np.uint8)
    return (255 * (0.45 * _colormap(BINARY_CMAP)(np.linspace(0, 1, 256))[:, :3] + 0.55)
            ).astype(np.uint8)


def _disc(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of a disc's pixels."""
    r = np.arange(-radius, radius + 1)
    dr, dc = np.meshgrid(r, r, indexing="ij")
    inside = dr ** 2 + dc ** 2 <= radius ** 2 + radius
    return dr[inside], dc[inside]


#: the boundary frames evaluate the network at every FRAME_STEP-th pixel
FRAME_STEP = 4


def _interpolation(centres: np.ndarray, step: int = FRAME_STEP) -> tuple[np.ndarray, tuple]:
    """(every step-th of the evenly spaced ``centres``, and the last; (j, t, 1 - t) of linear
    interpolation from those to all n: value i = (1 - t[i]) v[j[i]] + t[i] v[j[i] + 1])."""
    n = len(centres)
    at = np.unique(np.r_[np.arange(0, n, step), n - 1])
    j = np.clip(np.searchsorted(at, np.arange(n), side="right") - 1, 0, len(at) - 2)
    t = (np.arange(n) - at[j]) / (at[j + 1] - at[j])
    return centres[at], (j, t, 1 - t)


#: the boundary frames' drawn axes, by figure: (what they show, the canvas's pixels)
_AXES_DRAWN: "WeakKeyDictionary[Figure, tuple]" = WeakKeyDictionary()


def _packed(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours as the canvas's opaque RGBA pixels, one uint32 each."""
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:-1], 1), 255, np.uint8)], axis=-1)
    return np.ascontiguousarray(rgba).view(np.uint32)[..., 0]


def _lerp(values: np.ndarray, at: tuple[np.ndarray, np.ndarray, np.ndarray], axis: int
          ) -> np.ndarray:
    """Linear interpolation of ``values`` along ``axis`` (``at``: ``_interpolation``'s)."""
    j, t, u = at
    lo, hi = np.take(values, j, axis=axis), np.take(values, j + 1, axis=axis)
    shape = [1] * values.ndim
    shape[axis] = -1
    return lo * u.reshape(shape) + hi * t.reshape(shape)


def boundary_frames(net, dataset, params, epochs, title: str = "", size=BOUNDARY_FRAME,
                    dpi: int = FRAME_DPI) -> list[np.ndarray]:
    """The decision boundary at each of ``params`` ((weights, biases) per step, a copy of
    ``net`` evaluated with each) as (h, w, 3) uint8 images of at least 400 px: axes with the
    standardized features' ticks and labels, the step's epoch written at the top right
    (``step_label``), the filled regions and the training points as in ``decision_boundary``,
    and the boundary in black where the prediction changes side between neighbouring pixels
    (ŷ = 0.5, or between classes): the network's outputs at every ``FRAME_STEP``-th pixel,
    linearly interpolated to every pixel, so the contour is smooth at the image's resolution
    and follows the network's to within a few pixels; where it predicts one side everywhere the
    frame says so (``one_side``).

    Drawn in layers, each once: the axes (ticks, labels) by ``canvas.draw()``, kept for the
    next call whose axes are the same (a sweep's runs on one dataset: ``_AXES_DRAWN``); the
    run's title and the fill's legend blitted over them once per call; each frame the plot's
    pixels, computed in numpy (one uint32 per RGBA pixel), and its epoch (and the notice that
    there is no boundary) blitted over that."""
    import copy
    X, Y = dataset.X_train, dataset.Y_train
    lo, hi = X.min(axis=1) - 0.5, X.max(axis=1) + 0.5
    what = "class" if dataset.task == "multiclass" else \
        ("ŷ" if net.layer_sizes[-1] == 1 else "ŷ of label 1")
    fig, (ax,) = figure(1, size, dpi, kind=f"boundary_frames:{what}",
                        margins=dict(left=0.17, right=0.96, bottom=0.12, top=0.82))
    names = getattr(dataset, "feature_names", ("x1", "x2"))
    epoch, line = _frame_text(fig, title, "decision boundary", animated_title=True)
    heading = fig.texts[-2]
    legend = "fill: predicted class" if what == "class" else \
        f"fill: {what} from 0 (blue) to 1 (red)"
    legend += "; black: the boundary"
    # the third line: the legend, or in its place, in red, that there is no boundary
    notice = fig.text(0.02, 1 - 2.2 * line, "", ha="left", va="top", fontsize=FRAME_FONT - 2,
                      animated=True)
    axes_key = (tuple(lo), tuple(hi), tuple(names))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel(f"{names[0]} (standardized)", fontsize=FRAME_FONT)
    ax.set_ylabel(f"{names[1]} (standardized)", fontsize=FRAME_FONT)
    drawn = _AXES_DRAWN.get(fig)
    if drawn is not None and drawn[0] == axes_key:
        fig.canvas.restore_region(drawn[1])
    else:
        ax.tick_params(labelsize=FRAME_FONT - 2)
        fig.canvas.draw()
        _AXES_DRAWN[fig] = axes_key, fig.canvas.copy_from_bbox(fig.bbox)
    fig.draw_artist(heading)
    plain = fig.canvas.copy_from_bbox(fig.bbox)      # axes and title: a frame with a notice
    notice.set_text(legend)
    notice.set_color("black")
    fig.draw_artist(notice)
    with_legend = fig.canvas.copy_from_bbox(fig.bbox)
    H = int(fig.bbox.height)
    x0, y0, x1, y1 = ax.bbox.extents
    top, left = int(np.ceil(H - y1)) + 1, int(np.ceil(x0)) + 1     # inside the spines
    h, w = int(H - y0) - top, int(x1) - left
    # pixel centres in data coordinates: columns along x0, rows down from the largest x1
    cx = lo[0] + (np.arange(w) + left + 0.5 - x0) / (x1 - x0) * (hi[0] - lo[0])
    cy = lo[1] + (H - (np.arange(h) + top + 0.5) - y0) / (y1 - y0) * (hi[1] - lo[1])
    # the network on a grid of every FRAME_STEP-th pixel, linearly interpolated to every pixel
    # (along x, then along y): ŷ, and so its 0.5 level, varies smoothly at that scale,
    # and the forward pass is FRAME_STEP² times smaller
    (gx, along_x), (gy, along_y) = _interpolation(cx), _interpolation(cy)
    g0, g1 = np.meshgrid(gx, gy)
    points = np.vstack([g0.ravel(), g1.ravel()]).astype(net.dtype)
    k = net.layer_sizes[-1]
    lut = _packed(_fill_lut(what, k))
    col = np.round((X[0] - lo[0]) / (hi[0] - lo[0]) * (x1 - x0) + x0 - left - 0.5).astype(int)
    row = np.round((H - y0 - (X[1] - lo[1]) / (hi[1] - lo[1]) * (y1 - y0)) - top - 0.5
                   ).astype(int)
    if what == "class":
        labels = np.argmax(Y, axis=0)
        dots = (0.8 * 255 * np.array([to_rgb(c) for c in
                                      (CLASS_COLOURS * (k // len(CLASS_COLOURS) + 1))[:k]])
                ).astype(np.uint8)[labels]
    else:
        dots = (0.8 * 255 * _colormap(BINARY_CMAP)(np.where(Y[0] > 0.5, 0.9, 0.1))[:, :3]
                ).astype(np.uint8)
    dots, black, rim = _packed(dots), _packed(np.zeros(3, np.uint8)), \
        _packed(np.full(3, 40, np.uint8))
    # the training points' discs: a dark rim (radius 3), then the fill (radius 2)
    discs = []
    for (dr, dc), colour in ((_disc(3), rim), (_disc(2), dots[:, None])):
        rr = np.clip(row[:, None] + dr, 0, h - 1)
        cc = np.clip(col[:, None] + dc, 0, w - 1)
        discs.append((rr, cc, colour))
    frame_net = copy.copy(net)
    frames = []
    for (weights, biases), e in zip(params, epochs):
        frame_net.weights, frame_net.biases = weights, biases
        Yhat = frame_net.forward(points).reshape(k, len(gy), len(gx))
        F = _lerp(_lerp(Yhat, along_x, 2), along_y, 1)                 # (k, h, w)
        if what == "class":
            F = np.argmax(F, axis=0)
            levels = [c + 0.5 for c in range(k - 1)]
            side = index = F
        else:
            F, levels = F[0], [0.5]
            side = F > 0.5
            index = np.nan_to_num(F, nan=0.5) if np.isnan(Yhat).any() else F.copy()
            index *= 255
            index += 0.5
            index = np.clip(index, 0, 255, out=index).astype(np.uint8)
        message = one_side(F, levels, what)
        fig.canvas.restore_region(plain if message else with_legend)
        if message:
            notice.set_text(message)
            notice.set_color("#b00000")
            fig.draw_artist(notice)
        epoch.set_text(step_label(e))
        fig.draw_artist(epoch)
        buffer = np.asarray(fig.canvas.buffer_rgba())
        plot = buffer.view(np.uint32)[top:top + h, left:left + w, 0]
        plot[...] = lut[index]
        edge = np.zeros((h, w), dtype=bool)    # both pixels of a pair that changes side
        flip = side[1:] != side[:-1]
        edge[1:] |= flip
        edge[:-1] |= flip
        flip = side[:, 1:] != side[:, :-1]
        edge[:, 1:] |= flip
        edge[:, :-1] |= flip
        plot[edge] = black
        for rr, cc, colour in discs:
            plot[rr, cc] = colour
        frames.append(rgb(fig))
    notice.set_text(message or legend)
    notice.set_color("#b00000" if message else "black")
    return frames


@cache
def _colormap(name: str):
    return colormaps[name]   # the registry copies the colormap on every lookup


def rgb(fig: Figure) -> np.ndarray:
    """The canvas's pixels as a new (h, w, 3) uint8 array, the alpha channel (255 throughout:
    the figures are opaque) left out by Pillow's conversion (a third of the time numpy's
    strided copy of ``[..., :3]`` takes)."""
    from PIL import Image
    rgba = fig.canvas.buffer_rgba()
    h, w = rgba.shape[:2]
    return np.array(Image.frombuffer("RGBA", (w, h), rgba, "raw", "RGBA", 0, 1).convert("RGB"))


def save(fig: Figure, path) -> Path:
    """Draw the figure (``draw``: in layers) and write its pixels as an RGB PNG
    (ffexp.plots.png: no row filter, ISA-L's deflate at level 1). The figures are opaque
    (a white face), so the alpha channel, 255 throughout, is left out."""
    path = Path(path)
    draw(fig)
    path.write_bytes(png_bytes(rgb(fig)))
    return path


def write_plots(result, directory, net=None, dataset=None, title: str = "",
                gradients: str = "") -> list[Path]:
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
