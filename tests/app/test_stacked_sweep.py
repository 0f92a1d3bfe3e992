"""``train.stack=true`` through the real command: the same sweep stacked and separate, into two
SQLite stores, read back with MlflowClient (ffexp.launch.stacked)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ffexp, statuses

TIMES = ("time/epoch", "time/elapsed")
#: a step image's file name carries when it was logged and a fresh id
_STEP_IMAGE = re.compile(r"\+timestamp\+\d+\+[0-9a-f-]+")
SWEEP = ("activation=relu,tanh", "seed=0,1,2", "train.epochs=6", "dataset.params.n_samples=120")


def _sweep(tmp_path: Path, name: str, stack: bool, *extra: str):
    return ffexp("-m", *SWEEP, *extra, f"train.stack={str(stack).lower()}",
                 f"hydra.sweep.dir={name}", f"tracking.uri=sqlite:///{tmp_path / name}.db",
                 cwd=tmp_path)


def _store(tmp_path: Path, name: str) -> tuple[dict, list]:
    """({config hash: (run, {metric: history}, artifact paths)} of the children, parents)."""
    from mlflow import MlflowClient
    client = MlflowClient(f"sqlite:///{tmp_path / name}.db")
    runs = [r for e in client.search_experiments()
            for r in client.search_runs([e.experiment_id])]
    parents = [r for r in runs if r.data.tags.get("ffexp.kind") == "sweep"]
    children = {}
    for run in runs:
        if run in parents:
            continue
        rid = run.info.run_id
        history = {k: [(m.step, m.value, m.timestamp > 0)
                       for m in sorted(client.get_metric_history(rid, k), key=lambda m: m.step)]
                   for k in run.data.metrics if k not in TIMES}
        artifacts = sorted(_STEP_IMAGE.sub("", a.path) for top in client.list_artifacts(rid)
                           for a in ([top] if not top.is_dir else
                                     client.list_artifacts(rid, top.path)))
        children[run.data.tags["ffexp.config_hash"]] = (run, history, artifacts)
    return children, parents


def _records(tmp_path: Path, name: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "pid", "run_id", "overrides")}
            for r in statuses(tmp_path / name)]


@pytest.mark.slow
def test_a_stacked_sweep_records_what_the_separate_sweep_records(tmp_path):
    separate = _sweep(tmp_path, "separate", False)
    stacked = _sweep(tmp_path, "stacked", True)
    assert separate.returncode == stacked.returncode == 0, stacked.stderr[-2000:]
    assert "6 job(s) done" in stacked.stdout
    lines = lambda out: sorted(l.split(":")[0] for l in out.splitlines() if l.startswith("[job"))
    assert lines(stacked.stdout) == [l.replace("False", "True") for l in lines(separate.stdout)]
    assert _records(tmp_path, "stacked") == _records(tmp_path, "separate")
    assert (tmp_path / "stacked" / ".stack" / "0" / "members.json").is_file()
    for job in range(6):   # each member its own folder, as a separate job's
        folder = tmp_path / "stacked" / str(job)
        assert {p.name for p in folder.iterdir()} == \
            {p.name for p in (tmp_path / "separate" / str(job)).iterdir()}
        assert "trained as one stack of 6 networks" in (folder / "ffexp.log").read_text()
        for name in ("config.yaml", "overrides.yaml"):   # the config Hydra composes for it
            text = (tmp_path / "separate" / str(job) / ".hydra" / name).read_text()
            assert (folder / ".hydra" / name).read_text() == \
                text.replace("stack: false", "stack: true").replace("stack=False", "stack=True") \
                .replace("separate.db", "stacked.db")

    runs, parents = _store(tmp_path, "separate")
    other, other_parents = _store(tmp_path, "stacked")
    assert len(parents) == len(other_parents) == 1
    assert other_parents[0].data.tags["ffexp.n_jobs"] == parents[0].data.tags["ffexp.n_jobs"] \
        == "6"
    assert other_parents[0].info.status == parents[0].info.status == "FINISHED"
    assert set(runs) == set(other) and len(runs) == 6   # the same config hashes
    for config_hash, (run, history, artifacts) in runs.items():
        twin, twin_history, twin_artifacts = other[config_hash]
        assert twin.data.tags["mlflow.parentRunId"] == other_parents[0].info.run_id
        assert twin.info.run_name == run.info.run_name
        assert twin.info.status == run.info.status == "FINISHED"
        assert twin.data.tags["ffexp.outcome"] == run.data.tags["ffexp.outcome"]
        params = dict(run.data.params, **{"train.stack": "True"})
        assert twin.data.params == params
        assert twin_history == history   # every value at every step, exactly
        assert twin_artifacts == artifacts and "model" in " ".join(artifacts)
        assert {k: v for k, v in twin.data.metrics.items() if k not in TIMES} == \
            {k: v for k, v in run.data.metrics.items() if k not in TIMES}


@pytest.mark.slow
def test_a_stacked_sweep_resumes_by_config_hash(tmp_path):
    first = ffexp("-m", *SWEEP[:1], "seed=0,1", *SWEEP[2:], "train.stack=true",
                  "hydra.sweep.dir=first", f"tracking.uri=sqlite:///{tmp_path}/m.db",
                  cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    again = ffexp("-m", *SWEEP, "train.stack=true", "tracking.skip_existing=true",
                  "hydra.sweep.dir=again", f"tracking.uri=sqlite:///{tmp_path}/m.db",
                  cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "6 job(s) done (4 skipped: finished before; 0 rerun)" in again.stdout
    records = statuses(tmp_path / "again")
    assert [r["job_num"] for r in records] == list(range(6))
    # the finished configs are skipped before the launch (ffexp.launch.resume): the two new
    # jobs (seed 2) are numbered first and trained as one stack, the skipped ones after them
    assert [r["status"] for r in records] == ["ok", "ok"] + ["skipped"] * 4
    assert {tuple(r["overrides"][:2]) for r in records[:2]} == \
        {("activation=relu", "seed=2"), ("activation=tanh", "seed=2")}


@pytest.mark.slow
def test_a_failing_or_diverging_member_fails_alone(tmp_path):
    """One member refused by ``prepare`` (train.tol_on=bogus), one diverging (lr 1e6): the
    others train; statuses, outcomes and the exit status as without stacking."""
    args = ("-m", "seed=0,1", "optimizer.lr=0.1,1e6", "train.tol_on=cost,bogus",
            "train.epochs=5", "dataset.params.n_samples=120", "tracking.enabled=false")
    separate = ffexp(*args, "train.stack=false", "hydra.sweep.dir=separate", cwd=tmp_path)
    stacked = ffexp(*args, "train.stack=true", "hydra.sweep.dir=stacked", cwd=tmp_path)
    assert separate.returncode == stacked.returncode == 1
    assert "4 of 8 jobs failed" in stacked.stderr
    records = _records(tmp_path, "stacked")
    assert records == _records(tmp_path, "separate")
    assert [r["status"] for r in records] == ["ok", "failed"] * 4
    assert {r["outcome"] for r in records if r["status"] == "ok"} == {"finished", "diverged"}
    plan = json.loads((tmp_path / "stacked" / ".stack" / "0" / "members.json").read_text())
    assert [num for num, _ in plan["members"]] == list(range(8))


def test_jobs_group_by_the_overrides_a_stack_must_share():
    from omegaconf import OmegaConf

    from ffexp.launch.stacked import groups
    jobs = [[f"activation={a}", f"model.hidden_sizes={h}", f"seed={s}", "optimizer.lr=0.1"]
            for h in ("[8]", "[16]") for a in ("relu", "tanh") for s in (0, 1)]
    on, off = OmegaConf.create({"train": {"stack": True}}), OmegaConf.create({"train": {}})
    assert groups(on, jobs) == [[0, 1, 2, 3], [4, 5, 6, 7]]   # the layer sizes split them
    assert groups(off, jobs) == [[i] for i in range(8)]
    mixed = [[*job, f"train.stack={s}"] for job in jobs[:4] for s in ("true", "false")]
    assert groups(off, mixed) == [[0, 2, 4, 6], [1], [3], [5], [7]]


def _launcher(n_jobs=None):
    from omegaconf import OmegaConf

    from ffexp.launch.stacked import JOBLIB
    launcher = {"_target_": JOBLIB, "n_jobs": n_jobs} if n_jobs else {"_target_": "basic"}
    return OmegaConf.create({"train": {"stack": True}, "hydra": {"launcher": launcher}})


def test_a_group_is_cut_into_one_sub_stack_per_worker():
    from ffexp.launch.stacked import in_process, tasks
    seeds = lambda n, act="relu": [[f"activation={act}", f"seed={s}", "model.hidden_sizes=[8]"]
                                   for s in range(n)]
    two = _launcher(2)
    assert tasks(two, seeds(100)) == [list(range(50)), list(range(50, 100))]
    assert tasks(two, seeds(25)) == [list(range(13)), list(range(13, 25))]
    assert tasks(two, seeds(15)) == [list(range(15))]          # sub-stacks of 10 at least
    assert tasks(_launcher(4), seeds(30)) == [list(range(10)), list(range(10, 20)),
                                              list(range(20, 30))]
    other = [[*job[:2], "model.hidden_sizes=[4]"] for job in seeds(20)]
    assert tasks(two, seeds(20) + other) == [list(range(20)), list(range(20, 40))]  # 2 groups
    assert tasks(_launcher(), seeds(100)) == [list(range(100))]   # basic: one at a time
    # one task: in the launching process, unless the launcher is not joblib's
    assert in_process(two, [seeds(15)]) and not in_process(two, [seeds(25)])
    assert in_process(_launcher(1), [seeds(100)]) and not in_process(_launcher(), [seeds(9)])
    off = [[*job, "train.stack=false"] for job in seeds(3)]
    assert not in_process(two, [off])


def test_members_with_equal_data_settings_share_one_dataset(settings_of):
    from ffexp.job.app import prepare
    memo: dict = {}
    a, b, c = (prepare(settings_of("dataset.params.n_samples=120", *o), memo)
               for o in (["seed=0"], ["seed=1", "activation=tanh"], ["dataset.seed=4"]))
    assert a.dataset is b.dataset and c.dataset is not a.dataset and len(memo) == 2
    alone = prepare(settings_of("dataset.params.n_samples=120", "dataset.seed=4"))
    assert (alone.dataset.X_train == c.dataset.X_train).all()


@pytest.mark.slow
@pytest.mark.parametrize("jobs, tasks", [(3, 1), (20, 2)])
def test_joblib_trains_one_sub_stack_per_worker_or_none(tmp_path, jobs, tasks):
    """With joblib's two workers: 20 seeds are two sub-stacks, each in a worker; 3 seeds are
    one task, trained in the launching process (no worker)."""
    import ffexp_command
    proc = ffexp_command.start(
        tmp_path, "-m", f"seed={','.join(map(str, range(jobs)))}", "train.epochs=3",
        "dataset.params.n_samples=120", "train.stack=true", "tracking.enabled=false",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=s",
        env=ffexp_command.command_env(drop=("FFEXP_COMMAND_LINE",)))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    records = statuses(tmp_path / "s")
    assert [r["job_num"] for r in records] == list(range(jobs))
    assert {r["status"] for r in records} == {"ok"}
    pids = [r["pid"] for r in records]
    if tasks == 1:
        assert set(pids) == {proc.pid}
    else:
        half = jobs // 2
        assert len(set(pids[:half])) == len(set(pids[half:])) == 1
        assert len(set(pids)) == 2 and proc.pid not in pids
        assert sorted(p.name for p in (tmp_path / "s" / ".stack").iterdir()) == ["0", "10"]
