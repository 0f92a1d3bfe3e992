"""The figures read back: legend entries = groups, lines per panel, styles, bands, heatmap."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ffexp.report import figures, style


def _groups(**levels) -> pd.DataFrame:
    return pd.DataFrame(list(itertools.product(*levels.values())), columns=list(levels))


def _labels(values: pd.DataFrame) -> list[str]:
    return [", ".join(f"{k}={v}" for k, v in r.items() if v != "") for _, r in values.iterrows()]


def _history(labels: list[str], keys=("train/cost", "val/accuracy"), steps=5, layers=3):
    """Two seeds per group; run ids g<i>s<seed>; values that differ by group."""
    rows = []
    for i, _ in enumerate(labels):
        for seed in (0, 1):
            run = f"g{i}s{seed}"
            for step in range(1, steps + 1):
                rows += [(run, "train/cost", step, (i + 1) * 0.1 / step * (1 + seed)),
                         (run, "val/accuracy", step, 0.5 + 0.01 * i + 0.02 * seed)]
                rows += [(run, f"grad_norm/{k}{l}", step, 10.0 ** (l - i))
                         for k in "WZ" for l in range(1, layers + 1)]
    h = pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])
    by_run = pd.Series({f"g{i}s{s}": lab for i, lab in enumerate(labels) for s in (0, 1)})
    return h, by_run


def _legend(fig) -> list[str]:
    assert len(fig.legends) == 1  # one legend for the whole figure
    return [t.get_text() for t in fig.legends[0].get_texts()]


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.get_lines()]


def test_24_groups_in_small_multiples_each_identifiable():
    values = _groups(activation=["leaky_relu", "relu", "sigmoid", "tanh"], init=["he", "xavier"],
                     hidden_sizes=["[32,32]", "[32]*5", "[32]*10"])
    labels = _labels(values)
    lay = style.layout(values, list(values.columns), labels)
    assert [t for t, _ in lay.panels] == [f"activation={a}" for a in
                                          ("leaky_relu", "relu", "sigmoid", "tanh")]
    h, by_run = _history(labels)
    fig = figures.draw_learning_curves(h, by_run, lay, ["train/cost", "val/accuracy"])
    names = _legend(fig)
    assert len(names) == 6 and set(names) == {f"init={i}, hidden_sizes={d}" for i in
                                             ("he", "xavier") for d in ("[32,32]", "[32]*5", "[32]*10")}
    axes = _data_axes(fig)
    assert len(axes) == 2 * 4 and all(len(ax.get_lines()) == 6 for ax in axes)
    for ax in axes:  # within a panel, every line has its own colour × line style × marker
        seen = {(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in ax.get_lines()}
        assert len(seen) == 6
    assert "activation=relu" in axes[1].get_title()
    plt.close(fig)


def test_every_group_in_the_legend_even_one_missing_from_a_panel():
    values = _groups(activation=["relu", "tanh"], init=["he", "random", "xavier", "zeros"])
    labels = _labels(values)
    lay = style.layout(values, list(values.columns), labels)
    assert len(lay.panels) == 1  # 8 groups fit one panel
    h, by_run = _history(labels)
    # the exploding group has no positive gradient at its last epoch (it diverged)
    last = (h["run_id"].str.startswith("g0s")) & (h["step"] == 5) & h["key"].str.startswith("grad")
    h.loc[last, "value"] = np.inf
    fig = figures.draw_grad_profiles(h, by_run, lay)
    assert _legend(fig) == labels
    counts = [len(ax.get_lines()) for ax in _data_axes(fig)]
    assert counts == [8, 7, 8, 7]  # W first, W last, Z first, Z last
    styles = {(ln.get_color(), ln.get_linestyle()) for ln in fig.axes[0].get_lines()}
    assert len(styles) == 8  # colour by init, line style by activation
    plt.close(fig)


def test_bands_in_the_axis_scale():
    values = _groups(a=["x"])
    lay = style.layout(values, ["a"], ["a=x"])
    h = pd.DataFrame([("r0", "train/cost", 1, 1e-3), ("r1", "train/cost", 1, 10.0),
                      ("r0", "train/cost", 2, 1e-3), ("r1", "train/cost", 2, 10.0),
                      ("r0", "val/accuracy", 1, 0.99), ("r1", "val/accuracy", 1, 0.7),
                      ("r0", "val/accuracy", 2, 0.99), ("r1", "val/accuracy", 2, 0.7)],
                     columns=["run_id", "key", "step", "value"])
    by_run = pd.Series({"r0": "a=x", "r1": "a=x"})
    fig = figures.draw_learning_curves(h, by_run, lay, ["train/cost", "val/accuracy"])
    cost, acc = fig.axes[0], fig.axes[1]
    assert cost.get_yscale() == "log"
    assert cost.get_lines()[0].get_ydata() == pytest.approx([0.1, 0.1])  # √(1e-3 · 10)
    low = cost.collections[0].get_paths()[0].vertices[:, 1].min()
    assert low == pytest.approx(np.exp(np.log(0.1) - np.std(np.log([1e-3, 10]), ddof=1)))
    top = acc.collections[0].get_paths()[0].vertices[:, 1].max()
    assert top == 1.0  # 0.845 + 0.205 cut at the range of an accuracy
    plt.close(fig)


def test_heatmap_cells_show_value_and_n_and_the_scale_spans_the_noise():
    per_run = pd.DataFrame({"r": ["a", "a", "a", "b", "b", "b"], "c": ["u"] * 6,
                            "value": [0.95, 0.9625, 0.95, 0.9625, 0.9625, 0.9625]})
    per_run = pd.concat([per_run, per_run.assign(c="v", value=per_run["value"] - 0.0125)])
    fig = figures.draw_heatmap(per_run, "r", "c", "val/accuracy", noise=0.03)
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0.9417\nn=3", "0.9500\nn=3", "0.9542\nn=3", "0.9625\nn=3"]
    vmin, vmax = ax.images[0].get_clim()
    assert vmax - vmin == pytest.approx(4 * 0.03) and vmax <= 1.0
    plt.close(fig)
    assert figures.colour_limits(np.array([0.99, 1.0]), 0.05, "val/accuracy") == (0.8, 1.0)
    assert figures.colour_limits(np.array([0.4, 0.6]), 0.0, "val/accuracy") == (0.0, 1.0)
