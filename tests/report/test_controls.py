"""Outcomes, uncontrolled comparisons and the --at/--group-by/--experiment options, on a
hand-written sweep where one job failed, one diverged and one ran another commit for more epochs."""

from __future__ import annotations

import csv

import pytest
from mlflow import MlflowClient

from ffexp.report.cli import main


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def mixed_report(mixed_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed") / "r"
    assert main(["--tracking-uri", mixed_store["uri"], "--output", str(out),
                 "--no-log-artifact"]) == 0
    return {"out": out, **mixed_store}


def test_failed_and_diverged_runs_stay_in_the_denominators(mixed_report):
    groups = {(g["activation"], g["init"]): g for g in _rows(mixed_report["out"] / "groups.csv")}
    assert len(groups) == 4  # epochs varies but was not swept: not a factor
    failed = groups[("relu", "he")]
    assert (failed["runs"], failed["n"], failed["failed"], failed["finished"]) == ("2", "1", "1", "1")
    diverged = groups[("tanh", "xavier")]
    assert (diverged["runs"], diverged["n"], diverged["diverged"]) == ("2", "2", "1")
    running = groups[("relu", "xavier")]
    assert (running["runs"], running["n"], running["running"]) == ("2", "1", "1")
    md = (mixed_report["out"] / "report.md").read_text()
    ranking_header = md.split("## Ranking\n\n")[1].splitlines()[0]
    assert all(f"| {o} " in ranking_header for o in ("failed", "diverged", "running"))
    runs = _rows(mixed_report["out"] / "runs.csv")
    assert len(runs) == 8 and sorted(r["outcome"] for r in runs).count("failed") == 1


def test_uncontrolled_comparison_is_flagged(mixed_report):
    md = (mixed_report["out"] / "report.md").read_text()
    warning = md.split("\n\n")[1]
    assert warning.startswith("> **Warning:** uncontrolled comparison")
    assert "param `epochs` varies within groups (5, 7)" in warning
    assert "code commit differs (`ffexp.git_commit`: abc1234, def5678)" in warning


def test_paired_comparison_uses_only_shared_seeds(mixed_report):
    groups = _rows(mixed_report["out"] / "groups.csv")
    seeds: dict[tuple[str, str], set[str]] = {}
    for r in _rows(mixed_report["out"] / "runs.csv"):
        if r["value"]:
            seeds.setdefault((r["activation"], r["init"]), set()).add(r["seed"])
    best = seeds[(groups[0]["activation"], groups[0]["init"])]
    pairs = _rows(mixed_report["out"] / "paired.csv")
    assert [(p["activation"], p["init"]) for p in pairs] == [
        (g["activation"], g["init"]) for g in groups[1:]]
    for p in pairs:
        shared = len(best & seeds[(p["activation"], p["init"])])
        assert p["shared_seeds"] == str(shared)
        assert (p["verdict"] == "—") == (shared < 2)
    assert any(p["shared_seeds"] == "1" for p in pairs)  # the failed and the running job


@pytest.mark.parametrize("at", ["best", "epoch 3"])
def test_at_best_and_at_epoch(mixed_store, tmp_path, at):
    out = tmp_path / "r"
    assert main(["--tracking-uri", mixed_store["uri"], "--output", str(out), "--at", at,
                 "--no-log-artifact"]) == 0
    client = MlflowClient(tracking_uri=mixed_store["uri"])
    for row in _rows(out / "runs.csv"):
        hist = client.get_metric_history(row["run_id"], "val/accuracy")
        expected = (max(m.value for m in hist) if at == "best"
                    else next(m.value for m in hist if m.step == 3))
        if row["outcome"] in ("failed", "running"):
            assert row["value"] == ""
        else:
            assert float(row["value"]) == pytest.approx(expected, rel=1e-9)


def test_group_by_and_experiment_selection(mixed_store, tmp_path):
    out = tmp_path / "r"
    assert main(["--tracking-uri", mixed_store["uri"], "--experiment", "contract",
                 "--group-by", "activation", "--metric", "test/accuracy", "--output", str(out)]) == 0
    groups = _rows(out / "groups.csv")
    assert [g["activation"] for g in groups] and {g["runs"] for g in groups} == {"4"}
    md = (out / "report.md").read_text()
    assert "param `init` varies within groups (he, xavier)" in md
    assert "ranked by `test/accuracy`" in md and "heatmap.png" not in md
    assert "--experiment contract --metric test/accuracy --at final --group-by activation" in md
