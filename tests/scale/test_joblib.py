"""Local parallel sweeps: the joblib launcher (2 reused loky workers) on a fresh SQLite store.

A probe (a ``sitecustomize`` on PYTHONPATH, so it runs inside every worker) wraps
``ffexp.job.app.execute`` and writes, from inside each job's training, the worker's pid, the BLAS
thread count, MLflow's active run and ffexp's module state. The job of seed 0 leaves a fluent
MLflow run open on purpose (after its training), as a careless library might: the next job in that worker must still
start clean, and that run must not stay RUNNING.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter

import pytest

from helpers_scale import check_sweep_store, run_ffexp, sweep_args

PROBE = textwrap.dedent('''
    import json, os
    import ffexp.job.app as app

    _real = app.execute

    def execute(job, callbacks=()):
        import mlflow, threadpoolctl
        from ffexp.tracking import signals, sweep
        seed = job.settings.seed
        state = {"pid": os.getpid(), "seed": seed, "epochs": job.settings.train.epochs,
                 "active_run": mlflow.active_run() is not None,
                 "open_sweep": bool(sweep._OPEN), "signals": list(signals.RECEIVED),
                 "blas": [d["num_threads"] for d in threadpoolctl.threadpool_info()
                          if d["user_api"] == "blas"]}
        name = f"{seed}-{state['epochs']}.json"
        with open(os.path.join(os.environ["FFEXP_PROBE_DIR"], name), "w") as f:
            json.dump(state, f)
        result = _real(job, callbacks)
        if seed == 0 and state["epochs"] == 1:  # leak MLflow's fluent active run
            mlflow.set_tracking_uri(os.environ["FFEXP_PROBE_URI"])
            experiment = mlflow.get_experiment_by_name("moons")
            mlflow.start_run(experiment_id=experiment.experiment_id, run_name="leaked",
                             tags={"probe.leak": "1"})
        return result

    app.execute = execute
''')


@pytest.mark.slow  # tests/app/test_command.py runs a joblib sweep by default
def test_joblib_two_workers_fresh_sqlite_store(tmp_path):
    n = 8
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(PROBE)
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    proc, seconds = run_ffexp(tmp_path, sweep_args(n, workers=2), uri,
                              env={"PYTHONPATH": str(probe), "FFEXP_PROBE_DIR": str(probe),
                                   "FFEXP_PROBE_URI": uri})
    assert "database is locked" not in proc.stdout + proc.stderr
    parent, children = check_sweep_store(uri, n, exclude_tag="probe.leak")

    states = [json.loads(p.read_text()) for p in probe.glob("*.json")]
    assert len(states) == n
    per_worker = Counter(s["pid"] for s in states)
    assert len(per_worker) <= 2 and max(per_worker.values()) >= 2  # workers were reused
    assert all(s["blas"] and set(s["blas"]) == {1} for s in states)  # one BLAS thread per job
    assert not any(s["active_run"] or s["open_sweep"] or s["signals"] for s in states)
    # the leaked fluent run was ended by the next job of its worker (or at the worker's exit)
    from mlflow import MlflowClient
    leaked = [r for r in MlflowClient(uri).search_runs([parent.info.experiment_id])
              if "probe.leak" in r.data.tags]
    assert len(leaked) == 1 and leaked[0].info.status != "RUNNING"
