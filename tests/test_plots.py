"""The run's figures, read back: what is drawn (the boundary's colours over the axes, lines,
legend entries, labels), not that a file exists."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.text import Text

from ffexp.plots import figures as plots
from ffexp._compat import mpl_text as text_tiles
from ffexp.job.data import load_dataset
from ffexp.nn import Network, train

TITLE = "moons · relu·he·s0"


@pytest.fixture(scope="module")
def moons():
    data = load_dataset("moons", params={"n_samples": 200})
    net = Network([2, 8, 8, 1], "relu", "sigmoid", seed=0)
    result = train(net, data.X_train, data.Y_train, "bce", lr=0.5, epochs=30, seed=0)
    return data, net, result


@pytest.fixture(scope="module")
def blobs():
    data = load_dataset("blobs", params={"n_samples": 200})
    k = data.Y_train.shape[0]
    net = Network([2, 8, k], "relu", "softmax", seed=0)
    train(net, data.X_train, data.Y_train, "cce", lr=0.5, epochs=30, seed=0)
    return data, net


def _axes_pixels(fig, ax) -> np.ndarray:
    """The RGB pixels inside ``ax`` as rendered, (h, w, 3) in [0, 1]."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba(), dtype=float)[..., :3] / 255
    x0, y0, x1, y1 = ax.get_window_extent().extents
    h = rgba.shape[0]
    return rgba[int(h - y1) + 2:int(h - y0) - 2, int(x0) + 2:int(x1) - 2]


def _share_near(pixels: np.ndarray, colour, tol: float = 0.12) -> float:
    return float((np.abs(pixels - np.asarray(colour)).max(axis=-1) < tol).mean())


def _blend(colour, alpha: float):
    return alpha * np.asarray(to_rgb(colour)) + (1 - alpha)   # over a white axes


def test_binary_boundary_fills_both_classes_with_the_half_contour(moons):
    """The moons bug: a (1, m) prediction drew no boundary at all."""
    data, net, _ = moons
    fig = plots.decision_boundary(net, data, TITLE)
    ax = fig.axes[0]
    (image,) = ax.images
    field = image.get_array()
    assert field.shape == (plots.GRID, plots.GRID) and field.min() < 0.2 and field.max() > 0.8
    (contour,) = [c for c in ax.collections if hasattr(c, "levels")]
    assert list(contour.levels) == [0.5]
    pixels = _axes_pixels(fig, ax)
    cmap = image.get_cmap()
    blue, red = _blend(cmap(0.0)[:3], 0.45), _blend(cmap(1.0)[:3], 0.45)
    # ŷ near 0 and near 1 each fill a good part of the plane; no white left
    assert _share_near(pixels, blue, 0.15) > 0.15 and _share_near(pixels, red, 0.15) > 0.15
    assert _share_near(pixels, (1, 1, 1), 0.02) < 0.05
    assert fig._suptitle.get_text() == TITLE and "0.5" in ax.get_title()
    assert "standardized" in ax.get_xlabel()


def test_multiclass_boundary_fills_a_region_per_class(blobs):
    data, net = blobs
    fig = plots.decision_boundary(net, data, TITLE)
    ax = fig.axes[0]
    k = data.Y_train.shape[0]
    assert set(np.unique(ax.images[0].get_array())) == set(range(k))
    pixels = _axes_pixels(fig, ax)
    shares = [_share_near(pixels, _blend(c, 0.35), 0.06) for c in plots.CLASS_COLOURS[:k]]
    assert all(s > 0.1 for s in shares) and sum(shares) > 0.8, shares
    assert "predicted class" in ax.get_title()


def test_no_boundary_file_for_regression_or_many_features(tmp_path, moons):
    data, net, result = moons
    written = {p.name for p in plots.write_plots(result, tmp_path, net, data, TITLE)}
    assert written == {"learning_curves.png", "gradient_norms.png", "gradient_flow.png",
                       "decision_boundary.png"}
    regression = load_dataset("regression", params={"n_samples": 50, "n_features": 2})
    assert regression.n_features == 2 and not plots.has_boundary(regression)
    assert not plots.has_boundary(load_dataset("iris"))       # 4 features: no plane


def _extent(artist, fig):
    fig.canvas.draw()
    return artist.get_window_extent(fig.canvas.get_renderer())


def _legends_outside_the_data(fig) -> None:
    """Every legend's box is clear of every axes' box."""
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    assert legends
    for legend in legends:
        box = _extent(legend, fig)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent()), (legend, ax)


def test_gradient_flow_first_and_last_epoch_against_the_layer(moons):
    _, net, result = moons
    first, last = result.history[1], result.history[-1]   # epoch 1 (history[0] is step 0)
    fig = plots.gradient_flow(first, last, TITLE)
    L = len(net.weights)
    for ax, attr in zip(fig.axes, ("grad_norm_W", "grad_norm_Z")):
        assert ax.get_yscale() == "log" and ax.get_xlabel().startswith("layer l")
        lines = ax.get_lines()
        assert len(lines) == 2
        assert [list(line.get_xdata()) for line in lines] == [list(range(1, L + 1))] * 2
        np.testing.assert_array_equal(lines[1].get_ydata(), getattr(last, attr))
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [f"epoch {first.epoch}: after its updates (full training cost)",
                      f"epoch {last.epoch}: after its updates (full training cost)"]
    _legends_outside_the_data(fig)
    assert TITLE in fig._suptitle.get_text()


def test_gradient_flow_labels_step_0_as_at_initialization(moons):
    _, _, result = moons
    assert result.history[0].epoch == 0
    fig = plots.gradient_flow(result.history[0], result.history[-1])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[0] == "epoch 0: at initialization (full training cost)"
    assert plots.learning_curves(result).axes[0].get_xlabel() == "epoch (0 = at initialization)"


@pytest.fixture(scope="module")
def mean_run(moons):
    data = moons[0]
    net = Network([2, 8, 8, 1], "relu", "sigmoid", seed=0)
    return train(net, data.X_train, data.Y_train, "bce", lr=0.5, epochs=12, seed=0,
                 epoch_gradients="mean")


def test_mean_gradient_norms_are_never_drawn_with_full_ones(mean_run):
    """train.epoch_gradients=mean: gradient_norms draws the means (epochs ≥ 1) and says so,
    without step 0's full-gradient value; gradient_flow draws step 0 alone and says why."""
    fig = plots.gradient_norms(mean_run, TITLE)
    cols = mean_run.columns()
    for ax, key in zip(fig.axes, ("grad_norm_mean/W", "grad_norm_mean/Z")):
        assert "mean over updates" in ax.get_ylabel()
        for l, line in enumerate(ax.get_lines(), 1):
            assert list(line.get_xdata()) == list(range(1, 13))
            np.testing.assert_array_equal(line.get_ydata(), cols[f"{key}{l}"][1:])
    assert "mean over each epoch's updates" in fig._suptitle.get_text()
    fig = plots.gradient_flow(mean_run.history[0], mean_run.history[-1], TITLE)
    for ax in fig.axes:
        assert len(ax.get_lines()) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "epoch 0: at initialization (full training cost)"]
    assert "epoch 12: mean over the epoch's updates, another measure" in fig._suptitle.get_text()


def test_learning_curves_and_gradient_norms_lines_and_legends(moons):
    _, net, result = moons
    fig = plots.learning_curves(result, TITLE)
    (ax,) = fig.axes       # no validation metrics in this history: one panel
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training set"]
    assert len(ax.get_lines()[0].get_xdata()) == len(result.history)
    assert "cost J" in ax.get_ylabel() and TITLE in fig._suptitle.get_text()
    _legends_outside_the_data(fig)
    fig = plots.gradient_norms(result, TITLE)
    L = len(net.weights)
    for ax in fig.axes:
        assert len(ax.get_lines()) == L and ax.get_yscale() == "log"
        assert ax.get_ylabel().endswith("full training cost")
        assert [line.get_color() for line in ax.get_lines()] == plots.layer_colours(L)
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "layer l"
    assert [t.get_text() for t in legend.get_texts()] == [str(l) for l in range(1, L + 1)]
    _legends_outside_the_data(fig)


@pytest.mark.parametrize("L", [2, 11, 25])
def test_layer_colours_are_distinct_and_ordered_by_depth(L):
    """A sequential colormap: no two layers share a colour, and lightness rises with depth."""
    colours = np.array([c[:3] for c in plots.layer_colours(L)])
    assert len({tuple(np.round(c, 3)) for c in colours}) == L
    lightness = colours @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(lightness) > 0)


def test_gradient_norms_of_11_layers_in_11_colours(moons):
    data = moons[0]
    net = Network([2] + [6] * 10 + [1], "tanh", "sigmoid", seed=0)
    result = train(net, data.X_train, data.Y_train, "bce", lr=0.1, epochs=3, seed=0)
    fig = plots.gradient_norms(result, TITLE)
    colours = [to_rgb(line.get_color()) for line in fig.axes[1].get_lines()]
    assert len(colours) == 11 and len(set(colours)) == 11
    assert len(fig.legends[0].get_texts()) == 11
    _legends_outside_the_data(fig)


class _Accuracy:
    """A callback adding val/accuracy and val/f1 (fixed values) to every record."""

    def __init__(self, level):
        self.level = level

    def on_train_begin(self, net, info):
        pass

    def on_epoch_end(self, net, stats):
        stats.metrics.update({"val/accuracy": self.level + 0.01 * stats.epoch,
                              "val/f1": self.level})

    def on_train_end(self, net, result):
        pass


def test_bounded_metrics_on_a_fixed_0_1_axis(moons):
    """Two runs whose accuracies lie in different ranges get the same [0, 1] axis."""
    data = moons[0]
    limits = []
    for level in (0.86, 0.2):
        net = Network([2, 4, 1], seed=0)
        result = train(net, data.X_train, data.Y_train, "bce", epochs=5,
                       callbacks=[_Accuracy(level)])
        fig = plots.learning_curves(result, TITLE)
        ax = fig.axes[1]
        limits.append(ax.get_ylim())
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["accuracy", "f1"]
        _legends_outside_the_data(fig)
    assert limits == [(0.0, 1.0), (0.0, 1.0)]
    assert plots.bounded("val/roc_auc") and plots.bounded("val/f1_macro")
    assert not plots.bounded("val/r2") and not plots.bounded("val/mse")


def test_a_network_that_predicts_one_side_everywhere_has_no_boundary(moons):
    data, net, _ = moons
    sure = Network([2, 8, 8, 1], "relu", "sigmoid", seed=0)
    sure.biases[-1][...] = 8.0          # ŷ > 0.99 at every point of the plane
    fig = plots.decision_boundary(sure, data, TITLE)
    ax = fig.axes[0]
    assert not [c for c in ax.collections if hasattr(c, "levels")]     # no contour
    assert ax.get_title().startswith("no boundary: ŷ > 0.5 everywhere (ŷ 0.9")
    zeros = Network([2, 8, 1], "relu", "sigmoid", init="zeros")       # ŷ = 0.5 exactly
    fig = plots.decision_boundary(zeros, data, TITLE)
    assert fig.axes[0].get_title() == "no boundary: ŷ = 0.5 everywhere (ŷ 0.5)"
    fig = plots.decision_boundary(net, data, TITLE)                   # the trained one has one
    assert fig.axes[0].get_title().startswith("decision boundary")


def _frame_figure(kind: str):
    return next(f for key, (f, _) in plots._FIGURES.items() if key[0].startswith(kind))


def _legible_in_the_thumbnail(fig, frame) -> None:
    """MLflow shows a step image as its thumbnail, reduced by a whole factor to fit 256 px:
    every text of the frame is at least 8 px high there."""
    factor = int(np.ceil(max(frame.shape[:2]) / 256))
    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert texts
    for t in texts:
        assert t.get_fontsize() * fig.dpi / 72 / factor >= 8, (t.get_text(), t.get_fontsize())


def test_boundary_frames_have_axes_the_epoch_and_a_smooth_boundary(moons, blobs):
    """Frames of at least 400 px; the boundary's black pixels lie where the network's ŷ,
    evaluated at their place through the axes, is 0.5; both sides filled; the epoch written."""
    data, net, result = moons
    params = [([W.copy() for W in net.weights], [b.copy() for b in net.biases])]
    zeros = Network([2, 8, 8, 1], "relu", "sigmoid", init="zeros")
    params.append((zeros.weights, zeros.biases))
    frames = plots.boundary_frames(net, data, params, [30, 0], TITLE)
    fig = _frame_figure("boundary_frames")
    ax = fig.axes[0]
    assert len(frames) == 2 and min(frames[0].shape[:2]) >= 400
    assert "standardized" in ax.get_xlabel() and ax.get_xticklabels()
    img = frames[0].astype(float) / 255
    H = img.shape[0]
    x0, y0, x1, y1 = ax.bbox.extents
    inside = img[int(H - y1) + 3:int(H - y0) - 3, int(x0) + 3:int(x1) - 3]
    cmap = plots.colormaps[plots.BINARY_CMAP]
    blue, red = _blend(cmap(0.0)[:3], 0.45), _blend(cmap(1.0)[:3], 0.45)
    assert _share_near(inside, blue, 0.15) > 0.15 and _share_near(inside, red, 0.15) > 0.15
    rows, cols = np.nonzero(img.max(axis=-1) == 0)
    keep = (cols > x0 + 3) & (cols < x1 - 3) & (rows > H - y1 + 3) & (rows < H - y0 - 3)
    assert 0.003 < keep.sum() / inside[..., 0].size < 0.03             # a line, not a fill
    points = ax.transData.inverted().transform(np.c_[cols[keep] + 0.5, H - rows[keep] - 0.5])
    yhat = net.forward(points.T)[0]
    assert np.median(np.abs(yhat - 0.5)) < 0.05 and np.abs(yhat - 0.5).max() < 0.25
    # the epoch at the top left, one label per frame; the second frame has no boundary
    label = (slice(15, 50), slice(0, 300))
    assert not np.array_equal(frames[0][label], frames[1][label])
    texts = [t.get_text() for t in fig.texts]
    assert "epoch 0 (at initialization)" in texts
    assert "no boundary: ŷ = 0.5 everywhere (ŷ 0.5)" in texts
    assert not (frames[1][int(H - y1) + 3:int(H - y0) - 3, int(x0) + 3:int(x1) - 3]
                .max(axis=-1) == 0).any()
    _legible_in_the_thumbnail(fig, frames[0])
    data, net = blobs
    frames = plots.boundary_frames(net, data, [(net.weights, net.biases)], [30])
    img = frames[0].astype(float) / 255
    k = data.Y_train.shape[0]
    shares = [_share_near(img, _blend(c, 0.35), 0.06) for c in plots.CLASS_COLOURS[:k]]
    assert all(s > 0.05 for s in shares), shares


def test_gradient_flow_frames_draw_each_epoch_where_its_values_are(moons):
    """Blitted frames: the frame's own profile (orange) at the pixels its values map to
    through the axes in every frame, the first epoch's (grey, dashed) under it in the later
    frames of a full-gradient history; the epoch written on each; text legible in MLflow's
    thumbnail."""
    _, net, result = moons
    records = [result.history[0], result.history[10], result.history[-1]]
    frames = plots.gradient_flow_frames(records, TITLE)
    assert len(frames) == 3 and all(f.shape == frames[0].shape for f in frames)
    assert min(frames[0].shape[:2]) >= 400
    fig = _frame_figure("gradient_flow_frames")      # left as the last frame
    h = frames[0].shape[0]
    orange, grey = np.asarray(to_rgb("C1")), np.full(3, 0.55)
    for ax, attr in zip(fig.axes, ("grad_norm_W", "grad_norm_Z")):
        assert ax.get_yscale() == "log"
        for i, stats in enumerate(records):
            img = frames[i].astype(float) / 255
            for l, y in enumerate(getattr(stats, attr), start=1):
                x_px, y_px = ax.transData.transform((l, y))
                patch = img[int(h - y_px) - 2:int(h - y_px) + 3, int(x_px) - 2:int(x_px) + 3]
                assert _share_near(patch, orange, 0.1) > 0.5, (attr, i, l)
            y0 = getattr(records[0], attr)[0]
            x_px, y_px = ax.transData.transform((1, y0))
            patch = img[int(h - y_px) - 2:int(h - y_px) + 3, int(x_px) - 2:int(x_px) + 3]
            if i:   # the reference marker, where the frame's own line does not cover it
                mine = ax.transData.transform((1, getattr(stats, attr)[0]))[1]
                if abs(mine - y_px) > 8:
                    assert _share_near(patch, grey, 0.1) > 0.3, (attr, i)
    assert fig.axes[1].get_xlabel().startswith("layer l")
    texts = [t.get_text() for t in fig.texts]
    assert f"{TITLE} · gradient flow" in texts and f"epoch {records[-1].epoch}" in texts
    assert "solid: this epoch (full training cost)\ndashed: epoch 0 (at initialization)" in texts
    label = (slice(15, 50), slice(0, 300))           # the epoch, second line: one per frame
    assert not np.array_equal(frames[1][label], frames[2][label])
    _legible_in_the_thumbnail(fig, frames[0])
    plots.gradient_flow_frames(records[:1], TITLE)
    assert "epoch 0 (at initialization)" in [t.get_text() for t in fig.texts]


def test_mean_gradient_flow_frames_draw_no_reference(mean_run):
    records = [mean_run.history[0], mean_run.history[-1]]
    frames = plots.gradient_flow_frames(records, TITLE)
    fig = _frame_figure("gradient_flow_frames")
    assert "solid: this epoch (mean over the epoch's updates)" in [t.get_text() for t in fig.texts]
    img, h = frames[1].astype(float) / 255, frames[1].shape[0]
    for ax, attr in zip(fig.axes, ("grad_norm_W", "grad_norm_Z")):   # no grey reference marker
        for l, y in enumerate(getattr(records[0], attr), start=1):
            x_px, y_px = ax.transData.transform((l, y))
            patch = img[int(h - y_px) - 2:int(h - y_px) + 3, int(x_px) - 2:int(x_px) + 3]
            assert _share_near(patch, np.full(3, 0.55), 0.1) < 0.2, (attr, l)


def _png_pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def test_a_reused_figure_draws_what_a_new_one_draws(moons, tmp_path):
    """Each kind of plot keeps its figure and axes across runs: drawing another run in between
    (deeper, longer, diverging to other scales, another kind of boundary) leaves no trace."""
    data, net, result = moons
    deep_data = load_dataset("moons", params={"n_samples": 300, "noise": 0.3}, seed=1)
    deep = Network([2, 16, 16, 16, 1], "tanh", "sigmoid", seed=3)
    deep_result = train(deep, deep_data.X_train, deep_data.Y_train, "bce", lr=2.0, epochs=60,
                        seed=1, batch_size=16)
    draws = {
        "learning_curves": (lambda: plots.learning_curves(result, TITLE),
                            lambda: plots.learning_curves(deep_result, "other")),
        "gradient_norms": (lambda: plots.gradient_norms(result, TITLE),
                           lambda: plots.gradient_norms(deep_result, "other", "full")),
        "gradient_flow": (lambda: plots.gradient_flow(result.history[0], result.history[-1], TITLE),
                          lambda: plots.gradient_flow(deep_result.history[5],
                                                      deep_result.history[-1], "other")),
        "decision_boundary": (lambda: plots.decision_boundary(net, data, TITLE),
                              lambda: plots.decision_boundary(deep, deep_data, "other")),
    }
    for kind, (ours, other) in draws.items():
        plots._FIGURES.clear()
        fresh = _png_pixels(ours())
        other()
        again = ours()
        if kind == "decision_boundary":
            assert len(again.axes) == 2  # the plot and one colour bar, not one per run
        assert np.array_equal(_png_pixels(again), fresh), kind


# --- the text cache: the cached drawing is the direct drawing ----------------------------------

#: the largest difference of any pixel (of 255): the tiles' glyphs are the ones Agg renders
#: directly, only their compositing rounds otherwise (measured: 1)
ROUNDING = 2
#: a pixel differs visibly when a channel moves by more than this
LEVELS = 16
#: of all the figure's pixels, at most this share may differ visibly (measured: none; a tile
#: flipped, a pixel off or dropped: 2.5-3.2 %; text snapped to whole pixels: 2.3-2.8 %)
FIGURE_SHARE = 0.001
#: of the pixels inside any one text's window extent, at most this share may differ visibly,
#: and its ink (pixels 64 levels darker than white) may change by at most this share (a broken
#: tile: 30-50 % of the worst window differ; text up to 1/16 px off: 2-5 %)
TEXT_SHARE = 0.01


@pytest.fixture
def fresh_cache():
    """An empty text cache, emptied again after the test (a broken tile must not outlive it)."""
    text_tiles.TEXT_CACHE.clear()
    yield text_tiles.TEXT_CACHE
    text_tiles.TEXT_CACHE.clear()


def _direct_and_cached(fig, draw=None):
    """The figure's RGBA drawn by a plain FigureCanvasAgg, then by the plots' canvas (``draw``:
    what to call instead of drawing the canvas, e.g. a plot function that draws its frames)."""
    draw = draw or (lambda: _png_pixels(fig))
    FigureCanvasAgg(fig)
    try:
        direct = draw()
    finally:
        text_tiles.TextCachingCanvas(fig)
    return direct, draw()


def _text_windows(fig):
    """(name, rows, cols) of every drawn text's window extent, clipped to the figure."""
    renderer = fig.canvas.get_renderer()
    h, w = renderer.height, renderer.width
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text():
            continue
        x0, y0, x1, y1 = text.get_window_extent(renderer).extents
        rows = slice(max(int(h - y1) - 1, 0), min(int(h - y0) + 2, int(h)))
        cols = slice(max(int(x0) - 1, 0), min(int(x1) + 2, int(w)))
        if rows.start < rows.stop and cols.start < cols.stop:
            yield text.get_text(), rows, cols


def _assert_same_picture(direct, cached, windows, what="") -> int:
    """The bounds above; the number of windows with ink (texts drawn, not ticks out of view)."""
    assert direct.shape == cached.shape, what
    diff = np.abs(direct.astype(int) - cached.astype(int)).max(axis=-1)
    assert diff.max() <= ROUNDING, (what, diff.max())
    differ = diff > LEVELS
    assert differ.mean() <= FIGURE_SHARE, (what, differ.mean())
    ink_d, ink_c = (img[..., :3].astype(int).mean(axis=-1) < 255 - 64 for img in (direct, cached))
    inked = 0
    for text, rows, cols in windows:
        assert differ[rows, cols].mean() <= TEXT_SHARE, (what, text, differ[rows, cols].mean())
        n_d, n_c = ink_d[rows, cols].sum(), ink_c[rows, cols].sum()
        assert abs(int(n_c) - int(n_d)) <= TEXT_SHARE * n_d, (what, text, n_d, n_c)
        inked += bool(n_d)
    return inked


def _plots(moons):
    data, net, result = moons
    return {
        "learning_curves": lambda: plots.learning_curves(result, TITLE),
        "gradient_norms": lambda: plots.gradient_norms(result, TITLE),
        "gradient_flow": lambda: plots.gradient_flow(result.history[0], result.history[-1], TITLE),
        "decision_boundary": lambda: plots.decision_boundary(net, data, TITLE),
    }


def _assert_plots_cached_as_drawn(moons):
    for kind, make in _plots(moons).items():
        fig = make()
        direct, cached = _direct_and_cached(fig)
        windows = list(_text_windows(fig))
        inked = _assert_same_picture(direct, cached, windows, kind)
        assert inked > 10, kind                           # labels, titles, ticks, legends
    _, _, result = moons
    records = [result.history[0], result.history[10], result.history[-1]]
    plots.gradient_flow_frames(records, TITLE)
    fig = next(f for key, (f, _) in plots._FIGURES.items() if key[0] == "gradient_flow_frames")
    direct, cached = _direct_and_cached(fig, lambda: plots.gradient_flow_frames(records, TITLE))
    windows = list(_text_windows(fig))
    for i, (d, c) in enumerate(zip(direct, cached, strict=True)):
        _assert_same_picture(d, c, windows, f"frame {i}")


def test_cached_text_draws_what_agg_draws(moons, fresh_cache):
    """Each plot and the gradient-flow frames, drawn by a plain Agg canvas and from the text
    cache: the same pixels (a level of rounding apart), the y labels (90°) included."""
    _assert_plots_cached_as_drawn(moons)
    assert len(fresh_cache) > 50 and fresh_cache.misses == len(fresh_cache)
    angles = {key[2] for key in fresh_cache._tiles}
    assert angles == {0, 90}


def _flipped(tile):
    return tile._replace(rgba=np.ascontiguousarray(tile.rgba[::-1]))


def _shifted(tile):
    return tile._replace(bottom=tile.bottom + 1)


def _dropped(tile):
    return tile._replace(rgba=None)


#: each bound alone, the others relaxed
BOUNDS = {"rounding": {"FIGURE_SHARE": 1, "TEXT_SHARE": 1},
          "figure share": {"ROUNDING": 255, "TEXT_SHARE": 1},
          "text windows": {"ROUNDING": 255, "FIGURE_SHARE": 1}}


def _a_sixteenth_off(tile):
    return tile   # the tile is right for its key; the key's grid is coarse (a 1/8 px step)


@pytest.mark.parametrize("break_tile,bound", [
    *((b, bound) for b in (_flipped, _shifted, _dropped) for bound in BOUNDS),
    (_a_sixteenth_off, "rounding"), (_a_sixteenth_off, "text windows")])
def test_a_broken_text_cache_is_seen(moons, fresh_cache, monkeypatch, break_tile, bound):
    """Each bound fails on a cache whose tiles are upside down, a pixel off or empty; the
    rounding and text-window bounds on text up to 1/16 px off (0.01-0.04 % of a figure's
    pixels, within the figure's bound)."""
    for name, value in BOUNDS[bound].items():
        monkeypatch.setattr(sys.modules[__name__], name, value)
    if break_tile is _a_sixteenth_off:
        monkeypatch.setattr(fresh_cache, "subpixel", 8)
    render = text_tiles._try_tile

    def broken(*args):
        tile = render(*args)
        return tile if tile is None or tile.rgba is None else break_tile(tile)

    monkeypatch.setattr(text_tiles, "_try_tile", broken)
    with pytest.raises(AssertionError):
        _assert_plots_cached_as_drawn(moons)


def test_a_redraw_draws_every_string_from_the_cache(moons, fresh_cache):
    fig = _plots(moons)["gradient_norms"]()
    first = _png_pixels(fig)
    tiles, misses, hits = len(fresh_cache), fresh_cache.misses, fresh_cache.hits
    assert tiles and misses == tiles and hits == 0
    again = _png_pixels(fig)
    assert len(fresh_cache) == tiles and fresh_cache.misses == misses
    assert fresh_cache.hits == tiles
    assert np.array_equal(first, again)
    # another run's figures of the same kind: its labels and legend come from the cache
    _plots(moons)["gradient_norms"]().canvas.draw()
    assert fresh_cache.misses == misses


def test_the_cache_keeps_the_most_recent_tiles_only(moons, fresh_cache, monkeypatch):
    monkeypatch.setattr(fresh_cache, "max_tiles", 5)
    fig = _plots(moons)["learning_curves"]()
    direct, cached = _direct_and_cached(fig)
    assert len(fresh_cache) == 5 and fresh_cache.misses > 5
    _assert_same_picture(direct, cached, list(_text_windows(fig)))
    cache = text_tiles.TextCache(max_tiles=2)
    for key in "abc":
        cache.put(key, None)
    assert list(cache._tiles) == ["b", "c"]
    cache.get("b")                                     # b is now the most recent: c goes
    cache.put("d", None)
    assert list(cache._tiles) == ["b", "d"]
    with pytest.raises(KeyError):
        cache.get("a")


def test_texts_the_cache_draws_or_leaves_to_agg(fresh_cache):
    """Multi-line text (a draw_text call per line), rotated, coloured, translucent, clipped to
    the axes, mathtext and 45° (drawn by Agg): the same pixels as a plain Agg canvas."""
    fig, (ax,) = plots.figure(kind="test-texts")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.text(0.1, 0.8, "two lines\nof text, ŷ", color="C3")
    ax.text(0.5, 0.2, "upwards\nin two lines", rotation=90, alpha=0.5)
    ax.text(0.9, 0.5, "clipped at the axes' edge", clip_on=True, fontsize="large")
    ax.text(0.4, 0.98, "clipped at the top", clip_on=True, fontsize="large")
    ax.text(0.01, 0.05, "clipped below, upwards", clip_on=True, rotation=90, va="center")
    ax.text(0.3, 0.5, r"$\partial J / \partial W$ mathtext")
    ax.text(0.6, 0.6, "at 45 degrees", rotation=45)
    ax.text(0.2, 0.3, "bold, 270", rotation=270, fontweight="bold")
    direct, cached = _direct_and_cached(fig)
    _assert_same_picture(direct, cached, list(_text_windows(fig)))
    angles = {key[2] for key in fresh_cache._tiles}
    assert angles == {0, 90} and not any("$" in key[0] for key in fresh_cache._tiles)
    assert any(key[0] == "of text, ŷ" for key in fresh_cache._tiles)   # one tile per line


def test_written_pngs_read_back_as_the_figures_pixels(moons, tmp_path):
    """plots.save writes the canvas's pixels with ffexp.plots.png: PIL and matplotlib read them back
    exactly, and they are the pixels savefig writes (savefig's alpha: opaque throughout)."""
    from matplotlib.image import imread
    from PIL import Image
    data, net, result = moons
    for path in plots.write_plots(result, tmp_path, net, data, TITLE):
        fig = next(f for key, (f, _) in plots._FIGURES.items()
                   if key[0] == path.stem or key[0].startswith(f"{path.stem}:"))
        plots.draw(fig)                             # what save drew: its layers
        drawn = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            assert np.array_equal(np.asarray(image), drawn), path.name
        assert np.array_equal(np.round(imread(path) * 255).astype(np.uint8), drawn), path.name
        fig.savefig(tmp_path / "savefig.png", dpi=fig.dpi)
        with Image.open(tmp_path / "savefig.png") as image:
            reference = np.asarray(image)
        assert reference.shape[-1] == 4 and (reference[..., 3] == 255).all()
        _assert_layers_draw_the_figure(drawn, reference[..., :3], path.stem)


def test_boundary_frames_reuse_drawn_axes_only_where_they_are_the_same(moons, blobs):
    """The axes a call draws are kept for the next call with the same axes (a sweep's next
    run): its frames equal, pixel for pixel, frames drawn with the axes drawn anew; a
    dataset with other limits between them draws its own axes, and its frames equal a cold
    draw's too."""
    data, net, _ = moons
    other = Network([2, 8, 1], "tanh", "sigmoid", init="xavier", seed=3)
    params = [(net.weights, net.biases), (other.weights, other.biases)]

    def cold(*args, **kw):
        plots._AXES_DRAWN.clear()
        return plots.boundary_frames(*args, **kw)

    first = cold(net, data, params, [30, 0], "run a")
    again = plots.boundary_frames(net, data, params, [30, 0], "run b")   # axes reused
    assert np.array_equal(again[0], cold(net, data, params, [30, 0], "run b")[0])
    assert not np.array_equal(first[0], again[0])                       # the titles differ
    shifted = load_dataset("moons", seed=1, params={"n_samples": 300, "noise": 0.3})
    warm = plots.boundary_frames(net, shifted, params, [30, 0], "run c")
    assert all(np.array_equal(a, b) for a, b in
               zip(warm, cold(net, shifted, params, [30, 0], "run c")))
    data, net = blobs
    warm = plots.boundary_frames(net, data, [(net.weights, net.biases)], [5], "blobs")
    assert np.array_equal(warm[0], cold(net, data, [(net.weights, net.biases)], [5], "blobs")[0])


def test_kept_font_metrics_lay_text_out_as_matplotlib_does(moons, monkeypatch):
    """The fonts' line metrics kept per font, size and dpi (mpl_text.font_height_metrics) are
    the numbers Text._get_layout reads from the font's tables itself: every plot and frame is
    the same pixels with them and without them, and each text's extent is the same."""
    from matplotlib.font_manager import FontProperties
    for size, weight in ((10, "normal"), (14, "bold"), (7.5, "normal")):
        prop = FontProperties(size=size, weight=weight)
        ascent, descent, gap = text_tiles.font_height_metrics(prop, 80)
        fig, (ax,) = plots.figure(kind="test-metrics")
        text = ax.text(0.5, 0.5, "two\nlines", fontproperties=prop)
        fig.canvas.draw()
        kept = text.get_window_extent(fig.canvas.get_renderer()).extents
        monkeypatch.setattr(text_tiles.TextCachingRenderer, "_get_font_height_metrics",
                            lambda self, prop: (None, None, None))
        fig.canvas.draw()
        assert np.array_equal(text.get_window_extent(fig.canvas.get_renderer()).extents, kept)
        monkeypatch.undo()
        assert ascent > descent > 0 and gap >= 0
    _, _, result = moons
    records = [result.history[0], result.history[10], result.history[-1]]

    def everything():
        figs = [make() for make in _plots(moons).values()]
        return [_png_pixels(f) for f in figs] + plots.gradient_flow_frames(records, TITLE)

    kept = everything()
    monkeypatch.setattr(text_tiles.TextCachingRenderer, "_get_font_height_metrics",
                        lambda self, prop: (None, None, None))
    for a, b in zip(kept, everything(), strict=True):
        assert np.array_equal(a, b)



# --- a plot drawn in layers (plots.draw): its static layer kept across a sweep's runs -------

#: the boundary's layered draw composites its fill over the y axis's tick marks where
#: matplotlib draws the marks over the fill: the pixels where a mark meets the left spine
#: (one per y tick) differ by a few levels of near-black (measured: 5 pixels, 4-6 levels)
TICK_PIXELS, TICK_LEVELS = 12, 8


def _assert_layers_draw_the_figure(layered, full, kind):
    """A plot drawn in layers is the figure matplotlib draws: the same pixels, but for the
    boundary's tick marks on its left spine (TICK_PIXELS, TICK_LEVELS, near-black both)."""
    diff = np.abs(layered.astype(int) - full.astype(int)).max(axis=-1)
    if not kind.startswith("decision_boundary"):
        assert diff.max() == 0, (kind, diff.max(), int((diff > 0).sum()))
        return
    assert diff.max() <= TICK_LEVELS and (diff > 0).sum() <= TICK_PIXELS, \
        (kind, diff.max(), int((diff > 0).sum()))
    rows, cols = np.nonzero(diff)
    assert (full[rows, cols] < 64).all() and len(set(cols)) <= 1    # on the dark spine


def _layered_pixels(fig):
    plots.draw(fig)
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def test_plots_drawn_in_layers_are_the_figures_matplotlib_draws(moons, blobs):
    """Each plot of three runs (another dataset, depth, length and a diverging one, a
    3-class boundary), drawn in layers after the others (the static layer of another run
    kept, or drawn anew where the x axis, legend or boundary axes differ), is the figure
    ``canvas.draw()`` draws, and the same pixels as drawn in layers from a cold start."""
    data, net, result = moons
    deep_data = load_dataset("moons", params={"n_samples": 300, "noise": 0.3}, seed=1)
    deep = Network([2, 16, 16, 16, 1], "tanh", "sigmoid", seed=3)
    deep_result = train(deep, deep_data.X_train, deep_data.Y_train, "bce", lr=2.0, epochs=60,
                        seed=1, batch_size=16)
    wild = Network([2, 8, 8, 1], "relu", "sigmoid", seed=1)
    wild_result = train(wild, data.X_train, data.Y_train, "bce", lr=40.0, epochs=30, seed=1)
    blob_data, blob_net = blobs
    runs = [(result, net, data), (deep_result, deep, deep_data), (wild_result, wild, data),
            (result, blob_net, blob_data), (result, net, data)]
    kept_layers = 0
    for i, (res, nw, ds) in enumerate(runs):
        title = f"run {i}"
        figs = {"learning_curves": plots.learning_curves(res, title),
                "gradient_norms": plots.gradient_norms(res, title),
                "gradient_flow": plots.gradient_flow(res.history[0], res.history[-1], title),
                "decision_boundary": plots.decision_boundary(nw, ds, title)}
        for kind, fig in figs.items():
            kept = plots._STATIC.get(fig)
            layered = _layered_pixels(fig)
            kept_layers += kept is not None and plots._STATIC[fig][1] is kept[1]
            _assert_layers_draw_the_figure(layered, _png_pixels(fig)[..., :3], f"{kind} {i}")
            plots._STATIC.pop(fig)                              # cold: drawn anew
            assert np.array_equal(_layered_pixels(fig), layered), (kind, i)
    assert kept_layers >= 4        # the sweep's case: the last run's static layers reused


def test_a_static_layer_is_kept_only_for_what_it_shows(moons):
    """The static layer is reused for a run of the same epochs and legend, drawn anew for a
    run of other epochs; a plain ``canvas.draw()`` still draws every artist."""
    data, net, result = moons
    fig = plots.learning_curves(result, "a")
    plots.draw(fig)
    layer = plots._STATIC[fig][1]
    plots.draw(plots.learning_curves(result, "b"))
    assert plots._STATIC[fig][1] is layer
    shorter = train(Network([2, 8, 8, 1], "relu", "sigmoid", seed=2), data.X_train,
                    data.Y_train, "bce", lr=0.5, epochs=12, seed=2)
    fig = plots.learning_curves(shorter, "c")
    plots.draw(fig)
    assert plots._STATIC[fig][1] is not layer
    assert not any(a.get_animated() for a in fig.findobj())


def test_flow_frames_over_a_kept_x_axis_are_the_frames_drawn_whole(moons, monkeypatch):
    """The gradient-flow frames of a run drawn after another run of the same depth (its x
    axes kept) and of another depth (drawn anew) equal, pixel for pixel, frames whose every
    artist is drawn (``LAYERED`` off)."""
    data, _, result = moons
    deep = train(Network([2, 16, 16, 16, 1], "tanh", "sigmoid", seed=3), data.X_train,
                 data.Y_train, "bce", lr=1.0, epochs=20, seed=1)
    other = train(Network([2, 8, 8, 1], "tanh", "sigmoid", seed=5), data.X_train,
                  data.Y_train, "bce", lr=0.1, epochs=20, seed=5)
    runs = {"a": result.history[::10], "deep": deep.history[::5], "other": other.history[::5]}
    layered = {}
    for name in ("a", "deep", "other", "a"):
        layered[name] = plots.gradient_flow_frames(runs[name], name)
    monkeypatch.setattr(plots, "LAYERED", False)
    for name, frames in layered.items():
        whole = plots.gradient_flow_frames(runs[name], name)
        assert len(whole) == len(frames)
        assert all(np.array_equal(a, b) for a, b in zip(frames, whole)), name


def test_pngs_deflated_by_isal_read_back_exactly(tmp_path):
    """ffexp.plots.png's files (ISA-L's deflate) decode to the image with zlib, Pillow and
    matplotlib, for odd sizes and noisy and flat content."""
    import zlib
    from matplotlib.image import imread
    from PIL import Image
    from ffexp.plots.png import png_bytes
    rng = np.random.default_rng(0)
    for h, w, flat in ((1, 1, False), (37, 53, False), (480, 440, True), (512, 400, False)):
        rgb = np.full((h, w, 3), 200, np.uint8) if flat else \
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        data = png_bytes(rgb)
        path = tmp_path / f"{h}x{w}.png"
        path.write_bytes(data)
        with Image.open(path) as image:
            assert np.array_equal(np.asarray(image), rgb)
        assert np.array_equal(np.round(imread(path) * 255).astype(np.uint8), rgb)
        idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
        assert len(zlib.decompress(idat)) == h * (1 + 3 * w)
