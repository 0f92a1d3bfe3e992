"""Outcomes, uncontrolled comparisons and the --at/--group-by/--experiment options, on a
hand-written sweep where one job failed, one diverged and one ran another commit for more epochs."""

from __future__ import annotations

import csv
import re

import pytest
from mlflow import MlflowClient

from ffexp.report.cli import main

from .contract_store import write_sweep


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
    assert (failed["runs"], failed["n"], failed["failed"], failed["finished"]) == ("3", "2", "1", "2")
    diverged = groups[("tanh", "xavier")]
    assert (diverged["runs"], diverged["n"], diverged["diverged"]) == ("3", "3", "1")
    running = groups[("relu", "xavier")]
    assert (running["runs"], running["n"], running["running"]) == ("3", "2", "1")
    md = (mixed_report["out"] / "report.md").read_text()
    ranking_header = md.split("## Ranking\n\n")[1].splitlines()[0]
    assert all(f"| {o} " in ranking_header for o in ("failed", "diverged", "running"))
    runs = _rows(mixed_report["out"] / "runs.csv")
    assert len(runs) == 12 and sorted(r["outcome"] for r in runs).count("failed") == 1


def test_uncontrolled_comparison_is_flagged(mixed_report):
    md = (mixed_report["out"] / "report.md").read_text()
    warning = md.split("\n\n")[1]
    assert warning.startswith("> **Warning:** uncontrolled comparison")
    assert "param `epochs` varies within groups (5, 7)" in warning
    assert ("code commit differs (`mlflow.source.git.commit`: 2 values, in 11 and 1 runs; "
            "which run ran which in provenance.md)") in warning
    assert "abc1234" not in md  # a commit is provenance, named in provenance.md only
    prov = (mixed_report["out"] / "provenance.md").read_text()
    assert "| git commit |" in prov and "`abc1234` (11 runs), `def5678` (1 runs)" in prov


def test_paired_comparison_uses_only_shared_seeds(mixed_report):
    groups = _rows(mixed_report["out"] / "groups.csv")
    seeds: dict[tuple[str, str], set[str]] = {}
    for r in _rows(mixed_report["out"] / "runs.csv"):
        if r["value"]:
            seeds.setdefault((r["activation"], r["init"]), set()).add(r["seed"])
    pairs = _rows(mixed_report["out"] / "paired.csv")
    means = {(g["activation"], g["init"]): (float(g["mean"]), int(g["n"])) for g in groups}
    for p in pairs:
        ref = (p["ref_activation"], p["ref_init"])
        # the reference is its block's best group with 3 values or more (else with a value)
        fixed = "init" if p["compared"] == "activation" else "activation"
        block = [k for k in means if k[fixed == "init"] == p[fixed]]
        enough = [k for k in block if means[k][1] >= 3] or [k for k in block if means[k][1]]
        assert ref == max(enough, key=lambda k: means[k][0])
        shared = len(seeds[ref] & seeds[(p["activation"], p["init"])])
        assert p["shared_seeds"] == str(shared)
        assert (p["verdict"] == "not comparable (n < 3)") == (shared < 3)
        assert (p["p"] == "") == (shared < 3)
    assert any(p["shared_seeds"] == "2" for p in pairs)  # the failed and the running job
    assert any(p["p_holm"] for p in pairs)


@pytest.mark.parametrize("at", ["best", "epoch 3"])
def test_at_best_and_at_epoch(mixed_store, tmp_path, at):
    out = tmp_path / "r"
    assert main(["--tracking-uri", mixed_store["uri"], "--output", str(out), "--at", at,
                 "--no-log-artifact"]) == 0
    client = MlflowClient(tracking_uri=mixed_store["uri"])
    ids = {client.get_run(r).info.run_name: r for r in mixed_store["children"]}
    for row in _rows(out / "runs.csv"):  # run ids are provenance; the names are unique here
        hist = client.get_metric_history(ids[row["run_name"]], "val/accuracy")
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
    assert [g["activation"] for g in groups] and {g["runs"] for g in groups} == {"6"}
    md = (out / "report.md").read_text()
    assert "param `init` varies within groups (he, xavier)" in md
    assert "ranked by `test/accuracy`" in md and "heatmap.png" not in md
    assert "Selection: experiment `contract`" in md
    assert ("--experiment contract --metric test/accuracy --at final --group-by activation"
            in (out / "provenance.md").read_text())


def test_two_sweeps_give_the_same_report_md(tmp_path):
    """Two sweeps with the same seeds in one store (new run ids, sweep id, parent name): each
    reported with --sweep, report.md and the result tables are the same bytes."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweeps = [write_sweep(uri, (tmp_path / "artifacts").as_uri(), sweep_id=f"sw-{i}")
              for i in (1, 2)]
    for i, (parent, _) in enumerate(sweeps):
        assert main(["--tracking-uri", uri, "--sweep", parent, "--output", str(tmp_path / str(i)),
                     "--no-log-artifact"]) == 0
    for name in ("report.md", "groups.csv", "runs.csv", "paired.csv"):
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "1" / name).read_bytes(), name
    md = (tmp_path / "0" / "report.md").read_text()
    assert "Selection: one sweep, chosen by its id (`--sweep`)" in md
    for i, (parent, children) in enumerate(sweeps):
        assert parent in (tmp_path / str(i) / "provenance.md").read_text()
        assert not any(r in md for r in [parent, *children]) and f"sw-{i + 1}" not in md


def test_one_seed_no_validation_split_and_hostile_names(tmp_path, monkeypatch):
    """A 1-seed sweep without a validation split, whose experiment, sweep id and factor
    levels are hostile: the report says the groups cannot be compared, ranks by
    train/accuracy and says so, escapes every name, and stays inside reports/."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    evil = "<b>relu</b>"
    write_sweep(uri, (tmp_path / "artifacts").as_uri(), experiment="..", sweep_id="/../../x",
                activations=(evil, "tanh*"), seeds=(0,), val=False)
    monkeypatch.chdir(tmp_path)
    assert main(["--tracking-uri", uri, "--no-log-artifact"]) == 0
    (out,) = (tmp_path / "reports").iterdir()
    assert out.name == "sweep-_x" and not (tmp_path.parent / "x").exists()
    md = (out / "report.md").read_text()
    assert "every group has a single seed (n < 3): no interval, and the groups **cannot be " \
           "compared**" in md
    assert "ranked by `train/accuracy`" in md and "no validation split" in md
    def text(doc):  # outside code spans, which show their content literally
        return re.sub(r"(`+).*?\1", "", doc)

    assert "<b>" not in text(md) and "\\<b\\>relu\\</b\\>" in md
    assert "`ffexp -m activation=<b>relu</b>,tanh* " in md  # the command line, as code
    assert "tanh\\*" in md and "<b>" not in text((out / "provenance.md").read_text())
    html = (out / "report.html").read_text()
    assert "<b>" not in html and "&lt;b&gt;relu&lt;/b&gt;" in html
    assert "uncontrolled" not in md
    assert {r["n"] for r in _rows(out / "groups.csv")} == {"1"}
    assert {p["verdict"] for p in _rows(out / "paired.csv")} == {"not comparable (n < 3)"}
