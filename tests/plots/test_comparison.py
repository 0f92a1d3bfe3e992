"""The sweep's comparison figures (ffexp.plots.comparison) read back from the Figure: log
axes, one legend entry per group, one thick line per group and a thin one per seed; small
multiples past MAX_LINES groups."""

from __future__ import annotations

import numpy as np
import pytest

from ffexp.plots import comparison as cmp

LAYERS = 4


def _run(seed: int, scale: float, epochs: int = 6) -> dict:
    """A history.csv as columns: grad norms that fall by ``scale`` per layer towards l = 1."""
    rng = np.random.default_rng(seed)
    cols = {"epoch": np.arange(epochs + 1, dtype=float),
            "train/cost": 0.7 * np.exp(-0.2 * np.arange(epochs + 1)) * (1 + 0.05 * rng.random(epochs + 1)),
            "val/cost": 0.8 * np.exp(-0.2 * np.arange(epochs + 1)),
            "val/accuracy": np.linspace(0.5, 0.9, epochs + 1)}
    for l in range(1, LAYERS + 1):
        for q in ("Z", "W"):
            cols[f"grad_norm/{q}{l}"] = np.full(epochs + 1, scale ** (LAYERS - l)) * (1 + rng.random())
    cols["grad_norm_mean/W1"] = np.full(epochs + 1, 123.0)   # never plotted
    return cols


def _groups(n_groups: int, seeds: int) -> list:
    return [(f"activation=g{i}", [_run(s, 10.0 ** -(i % 3), ) for s in range(seeds)])
            for i in range(n_groups)]


def test_gradient_flow_has_a_log_axis_a_legend_entry_and_lines_per_group():
    groups = _groups(3, seeds=2)
    fig = cmp.gradient_flow(groups, "sweep", "activation")
    axes = fig.axes
    assert len(axes) == 4
    assert all(ax.get_yscale() == "log" for ax in axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [g for g, _ in groups]
    for ax in axes:   # per group: the geometric mean (thick) and each seed (thin)
        assert len(ax.lines) == 3 * (1 + 2)
        thick = [ln for ln in ax.lines if ln.get_linewidth() > 1]
        assert len(thick) == 3
        assert all(len(ln.get_xdata()) == LAYERS for ln in ax.lines)
    # the geometric mean of the seeds, not the arithmetic
    first = groups[0][1]
    expected = np.sqrt(cmp.profile(first[0], "grad_norm/Z", 0) * cmp.profile(first[1], "grad_norm/Z", 0))
    thick = [ln for ln in axes[0].lines if ln.get_linewidth() > 1][0]
    np.testing.assert_allclose(thick.get_ydata(), expected)


def test_one_seed_draws_one_line_per_group():
    fig = cmp.gradient_flow(_groups(2, seeds=1))
    assert all(len(ax.lines) == 2 for ax in fig.axes)


def test_learning_curves_share_axes_per_metric():
    groups = _groups(4, seeds=3)
    fig = cmp.learning_curves(groups, "val/accuracy", "sweep", "activation")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["train/cost", "val/cost", "val/accuracy"]
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log", "linear"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [g for g, _ in groups]
    assert all(len(ax.lines) == 4 * (1 + 3) for ax in fig.axes)


def test_24_groups_share_axes_and_25_become_small_multiples():
    fig = cmp.gradient_flow(_groups(cmp.MAX_LINES, seeds=1))
    assert len(fig.legends[0].get_texts()) == cmp.MAX_LINES
    styles = {(cmp.style(i)["color"], cmp.style(i)["ls"]) for i in range(cmp.MAX_LINES)}
    assert len(styles) == cmp.MAX_LINES   # every group has its own colour × line style
    groups = _groups(cmp.MAX_LINES + 1, seeds=2)
    fig = cmp.gradient_flow(groups)
    tiles = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in tiles] == [g for g, _ in groups]
    assert all(ax.get_yscale() == "log" and len(ax.lines) == 4 for ax in tiles)
    curves = cmp.learning_curves(groups, "val/accuracy")
    assert [ax.get_title() for ax in curves.axes if ax.get_visible()] == [g for g, _ in groups]


def test_decision_boundaries_one_tile_per_group(tmp_path):
    tiles = [(f"g{i}", np.full((8, 8, 3), i / 5)) for i in range(5)]
    fig = cmp.decision_boundaries(tiles, "sweep")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == [t for t, _ in tiles]
    assert all(len(ax.images) == 1 for ax in shown)
    path = cmp.save(fig, tmp_path / "b.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unplotted_keys_are_not_read():
    run = _run(0, 10.0)
    assert cmp.profile(run, "grad_norm/W", 0).shape == (LAYERS,)
