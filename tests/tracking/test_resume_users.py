"""A resumed grid sweep skips its finished configs before the launcher sees them
(ffexp.launch.resume), and adopts only the user's own runs (``mlflow.user``) unless
``tracking.skip_existing_any_user=true``. Slow: several commands each."""

from __future__ import annotations

import json

import pytest

from helpers_tracking import FAST, all_runs, run_ffexp

BASE = ["-m", *FAST, "train.epochs=2", "tracking.log_model=false", "tracking.log_plots=false",
        "tracking.skip_existing=true"]


def _as(user: str) -> dict:
    return {"LOGNAME": user, "USER": user}


def _parents(uri):
    return sorted((r for r in all_runs(uri) if r.data.tags.get("ffexp.kind") == "sweep"),
                  key=lambda r: r.info.start_time)


@pytest.mark.slow
def test_finished_configs_are_not_submitted_and_still_counted(tmp_path, store):
    sweep = tmp_path / "sweep"
    args = [*BASE, f"hydra.sweep.dir={sweep}"]
    run_ffexp(tmp_path, *args, "seed=0,1", uri=store, env=_as("alice"))
    first = {r.data.params["seed"]: r.info.run_id for r in all_runs(store)
             if r.data.tags.get("ffexp.kind") != "sweep"}
    assert {r.data.tags["mlflow.user"] for r in all_runs(store)} == {"alice"}
    # the same directory again, one more seed: the launcher gets one job
    proc = run_ffexp(tmp_path, *args, "seed=0,1,2", uri=store, env=_as("alice"))
    assert "Launching 1 jobs" in proc.stdout + proc.stderr
    lines = [x for x in proc.stdout.splitlines() if x.startswith("[job ")]
    assert [x.split(": ", 1)[1].split()[0] for x in lines] == ["skipped", "skipped", "finished"]
    assert "3 job(s) done (2 skipped: finished before; 0 rerun)" in proc.stdout
    statuses = [json.loads(p.read_text()) for p in (sweep / "skipped").rglob("ffexp_status.json")]
    assert sorted(r["run_id"] for r in statuses) == sorted(first.values())
    new = _parents(store)[-1]
    assert new.data.metrics["sweep/skipped"] == 2 and new.data.metrics["sweep/finished"] == 1
    assert set(new.data.tags["ffexp.skipped_run_ids"].split(",")) == set(first.values())


@pytest.mark.slow
def test_another_users_runs_are_not_adopted_unless_asked(tmp_path, store):
    run_ffexp(tmp_path, *BASE, "seed=0", uri=store, env=_as("alice"))
    proc = run_ffexp(tmp_path, *BASE, "seed=0", uri=store, env=_as("bob"))
    assert "skipped" not in proc.stdout  # bob trains his own run
    runs = [r for r in all_runs(store) if r.data.tags.get("ffexp.kind") != "sweep"]
    assert sorted(r.data.tags["mlflow.user"] for r in runs) == ["alice", "bob"]
    assert len({r.data.tags["ffexp.config_hash"] for r in runs}) == 1
    proc = run_ffexp(tmp_path, *BASE, "seed=0", "tracking.skip_existing_any_user=true",
                     uri=store, env=_as("carol"))
    assert ": skipped  run " in proc.stdout
    assert len([r for r in all_runs(store) if r.data.tags.get("ffexp.kind") != "sweep"]) == 2
