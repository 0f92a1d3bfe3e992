"""The report's statistics by hand: intervals inside the range, paired tests, Holm, ties, the
best set, inert factors, rounding noise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ffexp.report.aggregate import best_sets, compared_factors, inert, paired, summarize
from ffexp.report.stats import equivalence_test, holm, interval, metric_range, paired_test


def best_set(table, pairs):
    """The best set of a one-factor table's only block: (its rows, rows not comparable)."""
    ((_, same, apart),) = best_sets(table, pairs)
    return same, apart


def test_t_interval_by_hand_and_cut_to_the_metric_range():
    # x = 1, 2, 3: mean 2, s = 1, t_{0.975, 2} = 4.3026527297 (tables: 4.303), half = t·s/√3
    mean, std, lo, hi = interval([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, 1.0)
    assert hi - 2.0 == pytest.approx(4.3026527297 / math.sqrt(3), rel=1e-10)
    assert lo == pytest.approx(4.0 - hi)
    # the accuracy 0.9625, 0.9625, 0.6625: t gives [0.4322, 1.2928]; cut at 1
    acc = [0.9625, 0.9625, 0.6625]
    mean, _, lo, hi = interval(acc, metric_range("val/accuracy"))
    assert (round(lo, 4), hi) == (0.4322, 1.0)
    assert interval([0.01, 0.02, 0.9], metric_range("val/cost"))[2] == 0.0  # a cost: >= 0
    assert metric_range("val/r2") == (-math.inf, 1.0)
    assert metric_range("test/f1_macro") == (0.0, 1.0)
    two = interval([0.5, 0.7])  # n = 2: a std, no interval
    assert two[1] == pytest.approx(math.sqrt(0.02)) and math.isnan(two[2]) and math.isnan(two[3])
    assert all(math.isnan(v) for v in interval([0.5])[1:])
    assert interval([0.925, 0.925, 0.9250000000000002])[1] == 0.0  # rounding noise


def test_paired_tests_by_hand():
    # d = 1, 2, 3.5: mean 13/6, s² = Σ(d − mean)²/2 = 1.58333, t = mean / (s/√3) = 2.9823;
    # two-sided p on 2 degrees of freedom = 1 − |t|/√(t² + 2) = 0.0965 (closed form for df 2)
    test, p = paired_test([1.0, 2.0, 3.5])
    t = (13 / 6) / math.sqrt(1.58333333333 / 3)
    assert test == "paired t" and p == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-6)
    # the same difference on every seed: no spread, no t; exact sign test 2 · 2⁻³ = 0.25
    assert paired_test([0.4625, 0.4625, 0.4625]) == ("sign", 0.25)
    assert paired_test([0.0, 0.0, 0.0]) == ("tie", 1.0)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 (k = 3): 3·0.01 = 0.03, max(0.03, 2·0.02) = 0.04, max(0.04, 0.04)
    assert list(holm([0.04, 0.01, 0.02, np.nan])[:3]) == pytest.approx([0.04, 0.03, 0.04])
    assert math.isnan(holm([0.04, 0.01, 0.02, np.nan])[3])
    assert list(holm([0.5, 0.9])) == [1.0, 1.0]  # capped at 1


def _per_run(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"a": g, "seed": str(s), "outcome": "finished", "value": v}
                         for g, vs in values.items() for s, v in enumerate(vs)])


def test_ties_share_a_rank_and_the_best_set():
    per_run = _per_run({"w": [0.90, 0.92, 0.94], "x": [0.96, 0.9625, 0.9625],
                        "y": [0.9625, 0.96, 0.9625], "z": [0.5, 0.52, 0.51]})
    table = summarize(per_run, ["a"], "val/accuracy", "final")
    g = table.groups
    assert list(g["a"]) == ["x", "y", "w", "z"]          # x, y tie; keys order them
    assert list(g["rank"]) == [1, 1, 3, 4] and list(g["tie"]) == [True, True, False, False]
    pairs = paired(table).set_index("_row")
    assert list(pairs.index) == [1, 2, 3] and set(pairs["_ref"]) == {0}
    assert list(pairs["ref_a"]) == ["x"] * 3
    assert pairs.loc[1, "diff"] == 0.0                  # 0, not 1e-17
    assert pairs.loc[1, "verdict"] == "equivalent (±0.01)"  # TOST: inside ±0.01, p < 0.05
    assert pairs.loc[2, "verdict"] == "not shown to differ"
    assert pairs.loc[3, "verdict"] == "best is better"  # ~0.45 apart, p_holm < 0.05
    assert pairs.loc[3, "p_holm"] == pytest.approx(min(1, 3 * pairs.loc[3, "p"]))
    pairs = pairs.reset_index()
    same, apart = best_set(table, pairs)
    assert [g.at[i, "a"] for i in same] == ["x", "y", "w"] and apart == []


def test_identical_seeds_are_a_tie_and_a_zero_width_interval_no_verdict():
    table = summarize(_per_run({"x": [0.9625] * 3, "y": [0.9625] * 3, "z": [0.5] * 3}),
                      ["a"], "val/accuracy", "final")
    pairs = paired(table)
    assert list(pairs["verdict"]) == ["tie", "not shown to differ"]
    assert list(pairs["test"]) == ["tie", "sign"]       # 3 equal differences: p = 0.25


def test_groups_with_fewer_than_three_values_are_not_comparable():
    table = summarize(_per_run({"x": [0.99, 0.98], "y": [0.9, 0.91, 0.92], "z": [0.5, 0.6, 0.55]}),
                      ["a"], "val/accuracy", "final")
    pairs = paired(table)
    # x ranks first with n = 2: the comparisons are made against y, the best with n >= 3
    assert list(table.groups["a"]) == ["x", "y", "z"]
    assert pairs.set_index("_row").loc[0, "verdict"] == "not comparable (n < 3)"
    assert math.isnan(table.groups.at[0, "ci_low"])
    same, apart = best_set(table, pairs)
    assert same == [1] and apart == [0]


def test_a_nested_key_is_inert_where_its_parent_never_varies_it():
    groups = pd.DataFrame({"init": ["he", "random", "random", "zeros"],
                           "init.scale": ["0.01", "0.01", "1.0", "0.01"]})
    assert list(inert(groups, {"init.scale": "init"})["init.scale"]) == [True, False, False, True]


def _two_factor_runs() -> pd.DataFrame:
    """dataset × activation × 3 seeds: circles' groups are all far below moons' worst."""
    values = {("moons", "relu"): [0.96, 0.97, 0.95], ("moons", "tanh"): [0.90, 0.912, 0.889],
              ("moons", "linear"): [0.85, 0.861, 0.839],
              ("circles", "relu"): [0.70, 0.72, 0.71], ("circles", "tanh"): [0.50, 0.521, 0.509]}
    return pd.DataFrame([{"dataset": d, "activation": a, "seed": str(s), "outcome": "finished",
                          "value": v} for (d, a), vs in values.items() for s, v in enumerate(vs)])


def test_two_datasets_are_never_compared_with_each_other():
    table = summarize(_two_factor_runs(), ["dataset", "activation"], "val/accuracy", "final")
    assert compared_factors(table.keys) == [("activation",)]  # the dataset is a block
    pairs = paired(table)
    assert list(pairs["compared"]) == ["activation"] * 3
    assert (pairs["dataset"] == pairs["ref_dataset"]).all()
    refs = {d: set(g["ref_activation"]) for d, g in pairs.groupby("dataset")}
    assert refs == {"moons": {"relu"}, "circles": {"relu"}}  # each dataset's own best
    circles = pairs[pairs["dataset"] == "circles"].iloc[0]
    assert circles["activation"] == "tanh" and circles["diff"] == pytest.approx(0.2)
    assert set(pairs["verdict"]) == {"best is better"}
    sets = {b.level["dataset"]: [table.groups.at[r, "activation"] for r in same]
            for b, same, _ in best_sets(table, pairs)}
    assert sets == {"circles": ["relu"], "moons": ["relu"]}


def test_each_factor_is_compared_with_the_others_held_fixed():
    runs = pd.DataFrame([{"a": a, "b": b, "seed": str(s), "outcome": "finished",
                          "value": 0.5 + 0.1 * (a == "p") + 0.2 * (b == "u") + 0.001 * s}
                         for a in "pq" for b in "uv" for s in range(3)])
    pairs = paired(summarize(runs, ["a", "b"], "val/accuracy", "final"))
    # a within b = u and b = v; b within a = p and a = q: 4 comparisons, each in its block
    assert sorted(zip(pairs["compared"], pairs["a"], pairs["b"], pairs["ref_a"], pairs["ref_b"])
                  ) == [("a", "q", "u", "p", "u"), ("a", "q", "v", "p", "v"),
                        ("b", "p", "v", "p", "u"), ("b", "q", "v", "q", "u")]


def test_overflowed_and_non_finite_values_are_failed_and_never_in_a_best_set():
    """learning_rate's α = 10 groups: R² of −1e262 and −inf once gave p = 1 and a place in the
    best set; they are no values now."""
    runs = pd.DataFrame([{"lr": lr, "seed": str(s), "outcome": "finished", "value": v}
                         for lr, vs in {"0.1": [0.90, 0.91, 0.92], "1": [0.89, 0.93, 0.90],
                                        "10": [-1e262, -1e305, -math.inf]}.items()
                         for s, v in enumerate(vs)])
    from ffexp.report.aggregate import run_values  # the filter lives where values are read
    frame = pd.DataFrame({"run_id": [str(i) for i in range(9)], "status": "FINISHED",
                          "metrics.val/r2": runs["value"]})
    runs["value"] = run_values(frame, "val/r2", "final", None).to_numpy()
    table = summarize(runs, ["lr"], "val/r2", "final")
    g = table.groups.set_index("lr")
    assert g.loc["10", "n"] == 0 and g.loc["10", "overflowed"] == 3 and g.loc["10", "runs"] == 3
    assert list(table.groups["lr"])[-1] == "10"             # ranked last, no mean
    pairs = paired(table)
    ((_, same, _),) = best_sets(table, pairs)
    assert "10" not in {table.groups.at[r, "lr"] for r in same}
    assert pairs.set_index("lr").loc["10", "verdict"] == "not comparable (n < 3)"


def test_no_difference_needs_an_equivalence_test():
    # d = 0.001, 0.002, 0.0015: the mean is far inside ±0.01, the spread small: TOST rejects
    assert equivalence_test([0.001, 0.002, 0.0015], 0.01) < 0.05
    # d = −0.05 … +0.05: not shown to differ and not shown equivalent within ±0.01
    assert equivalence_test([-0.05, 0.0, 0.05], 0.01) > 0.05
    # no spread: exact sign tests, 2⁻³ inside the margin, 1 outside
    assert equivalence_test([0.002] * 3, 0.01) == 0.125
    assert equivalence_test([0.02] * 3, 0.01) == 1.0
    # by hand for d = 1, 2, 3 and δ = 10: t⁺ = (2 − 10)/(1/√3), one-sided p from t on 2 df
    from scipy.stats import t as student
    p = equivalence_test([1.0, 2.0, 3.0], 10.0)
    assert p == pytest.approx(student.cdf((2 - 10) * math.sqrt(3), 2), rel=1e-12)
    close = _per_run({"x": [0.950, 0.960, 0.955], "y": [0.949, 0.958, 0.954],
                      "z": [0.90, 0.99, 0.93]})
    pairs = paired(summarize(close, ["a"], "val/accuracy", "final")).set_index("a")
    assert pairs.loc["y", "verdict"] == "equivalent (±0.01)" and pairs.loc["y", "margin"] == 0.01
    assert pairs.loc["z", "verdict"] == "not shown to differ"
    cost = paired(summarize(close, ["a"], "val/cost", "final"))  # no default margin for a cost
    assert cost["p_equiv"].isna().all() and "equivalent" not in set(cost["verdict"])
