"""Comparisons within blocks, through the real ffexp-report on hand-written sweeps read back from
SQLite: two datasets are never compared with each other; paired.csv names each row's reference
(``ref_<key>``); a sweep whose jobs all failed gives one line and a non-zero exit."""

from __future__ import annotations

import csv
import subprocess

import pytest

from ffexp.report.cli import main

from .conftest import REPORT
from .contract_store import write_sweep


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory):
    """moons and circles × relu, tanh × he, xavier × 3 seeds; every circles group is 0.3 below
    every moons group, so a comparison across datasets would always pick a moons reference."""
    root = tmp_path_factory.mktemp("blocks")
    uri = f"sqlite:///{root}/mlflow.db"
    write_sweep(uri, (root / "artifacts").as_uri(), seeds=(0, 1, 2),
                datasets=("moons", "circles"))
    out = root / "r"
    assert main(["--tracking-uri", uri, "--output", str(out), "--no-log-artifact"]) == 0
    return out


def test_a_sweep_over_two_datasets_never_compares_across_them(two_datasets):
    groups = _rows(two_datasets / "groups.csv")
    assert {g["dataset"] for g in groups} == {"moons", "circles"} and len(groups) == 8
    pairs = _rows(two_datasets / "paired.csv")
    keys = ["dataset", "activation", "init"]
    assert list(pairs[0]) == [*keys, "compared", *(f"ref_{k}" for k in keys), "shared_seeds",
                              "diff", "ci_low", "ci_high", "test", "p", "p_holm", "p_equiv",
                              "p_equiv_holm", "margin", "verdict"]
    assert all(p["dataset"] == p["ref_dataset"] for p in pairs)
    # one factor at a time: the other factor is the same in the group and its reference
    for p in pairs:
        other = "init" if p["compared"] == "activation" else "activation"
        assert p["compared"] in ("activation", "init") and p[other] == p[f"ref_{other}"]
        assert p[p["compared"]] != p[f"ref_{p['compared']}"]
    # 2 datasets × 2 blocks per factor × 2 factors, one comparison each
    assert len(pairs) == 8
    # each reference is the best of its block, from the block's own means
    mean = {(g["dataset"], g["activation"], g["init"]): float(g["mean"]) for g in groups}
    for p in pairs:
        assert mean[tuple(p[f"ref_{k}"] for k in keys)] >= mean[tuple(p[k] for k in keys)]
    md = (two_datasets / "report.md").read_text()
    assert "## Paired comparisons within blocks" in md and "**Best sets**" in md
    assert "- `activation` within dataset=circles, init=he: " in md


def test_a_sweep_whose_jobs_all_failed_gives_one_line(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    failed = {(a, i, s): {"status": "FAILED", "outcome": "failed"}
              for a in ("relu", "tanh") for i in ("he", "xavier") for s in (0, 1)}
    write_sweep(uri, (tmp_path / "artifacts").as_uri(), special=failed)
    proc = subprocess.run([*REPORT, "--tracking-uri", uri, "--output", str(tmp_path / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines == ["ffexp-report: error: no run has a value of val/accuracy to rank (8 runs: "
                     "failed 8; a non-finite value or one beyond ±1e+12 is none): nothing to "
                     "report"]
