"""The run's figures, read back: what is drawn (the boundary's colours over the axes, lines,
legend entries, labels), not that a file exists."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from ffexp import plots
from ffexp.data import load_dataset
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
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0].startswith(f"epoch {first.epoch} (mean over")
        assert labels[1].startswith(f"epoch {last.epoch}")
    assert TITLE in fig._suptitle.get_text()


def test_gradient_flow_labels_step_0_as_before_any_update(moons):
    _, _, result = moons
    assert result.history[0].epoch == 0
    fig = plots.gradient_flow(result.history[0], result.history[-1])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "epoch 0: before any update (full training cost)"
    assert plots.learning_curves(result).axes[0].get_xlabel() == "epoch (0 = before any update)"


def test_learning_curves_and_gradient_norms_lines_and_legends(moons):
    _, net, result = moons
    fig = plots.learning_curves(result, TITLE)
    (ax,) = fig.axes       # no validation metrics in this history: one panel
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["training set"]
    assert len(ax.get_lines()[0].get_xdata()) == len(result.history)
    assert "cost J" in ax.get_ylabel() and TITLE in fig._suptitle.get_text()
    fig = plots.gradient_norms(result, TITLE)
    L = len(net.weights)
    for ax in fig.axes:
        assert len(ax.get_lines()) == L and ax.get_yscale() == "log"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == \
            [f"layer {l}" for l in range(1, L + 1)]
        assert "mean over the epoch's updates" in ax.get_ylabel()


def test_boundary_pixels_of_a_step_image(moons, blobs):
    """The numpy-drawn frame: both sides filled, a black boundary, the points drawn."""
    data, net, _ = moons
    img = plots.boundary_pixels(net, data, grid=60, scale=4).astype(float) / 255
    assert img.shape == (240, 240, 3)
    black = (img.max(axis=-1) == 0).mean()
    assert 0.005 < black < 0.1                                        # a line, not a fill
    cmap = plots.colormaps[plots.BINARY_CMAP]
    blue, red = _blend(cmap(0.0)[:3], 0.45), _blend(cmap(1.0)[:3], 0.45)
    assert _share_near(img, blue, 0.15) > 0.15 and _share_near(img, red, 0.15) > 0.15
    data, net = blobs
    img = plots.boundary_pixels(net, data).astype(float) / 255
    k = data.Y_train.shape[0]
    shares = [_share_near(img, _blend(c, 0.35), 0.06) for c in plots.CLASS_COLOURS[:k]]
    assert all(s > 0.1 for s in shares), shares


def test_gradient_flow_frames_draw_each_epoch_where_its_values_are(moons):
    """Blitted frames: the first epoch's profile (blue, dashed) in all, the frame's own (orange)
    over it at the pixels its values map to through the axes, none in the first frame."""
    _, net, result = moons
    records = [result.history[0], result.history[10], result.history[-1]]
    frames = plots.gradient_flow_frames(records, TITLE)
    assert len(frames) == 3 and all(f.shape == frames[0].shape for f in frames)
    # the frames' figure, left as the last frame
    fig = next(f for key, (f, _) in plots._FIGURES.items() if key[0] == "gradient_flow_frames")
    h = frames[0].shape[0]
    orange = np.asarray(to_rgb("C1"))
    for ax, attr in zip(fig.axes, ("grad_norm_W", "grad_norm_Z")):
        assert ax.get_yscale() == "log" and ax.get_xlabel().startswith("layer l")
        for i, stats in enumerate(records):
            img = frames[i].astype(float) / 255
            for l, y in enumerate(getattr(stats, attr), start=1):
                x_px, y_px = ax.transData.transform((l, y))
                patch = img[int(h - y_px) - 2:int(h - y_px) + 3, int(x_px) - 2:int(x_px) + 3]
                at_marker = _share_near(patch, orange, 0.1)
                assert (at_marker > 0.5) if i else (at_marker == 0), (attr, i, l)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "epoch 0: before any update (full training cost)",
        "the step's epoch (mean over the epoch's updates)"]
    assert fig.texts[0].get_text() == f"{TITLE} · gradient flow"
    assert fig.texts[1].get_text() == f"epoch {records[-1].epoch}"
    corner = (slice(0, 20), slice(-80, None))    # the epoch label, top right: one per frame
    assert not np.array_equal(frames[1][corner], frames[2][corner])


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
