"""Hydra's submitit launcher, local executor: the code path of a SLURM cluster without one.

Each job is pickled by submitit and run in its own process, reading the sweep's parent run from
``<sweep dir>/mlflow_sweep.json`` (on a cluster: a filesystem shared with the compute nodes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_scale import check_sweep_store, run_ffexp, sweep_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_submitit_local_sweep_keeps_the_parent_child_structure(tmp_path):
    n = 4
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, _ = run_ffexp(tmp_path, [*sweep_args(n, launcher="submitit_local"),
                                   "hydra.launcher.timeout_min=10"], uri)
    assert f"{n} job(s) done" in proc.stdout
    # the submitting console shows each job's line as it ends (ffexp.launch.watch)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("[job ")]
    assert sorted(int(x.split("]")[0][5:]) for x in lines) == list(range(n))
    parent, children = check_sweep_store(uri, n)
    sweep_dir = tmp_path / parent.data.tags["ffexp.sweep_id"]
    assert (sweep_dir / "mlflow_sweep.json").is_file()
    # every job ran in a submitit process of its own (its pickles and logs are here)
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == n
    assert {c.data.tags["ffexp.sweep_id"] for c in children} == {parent.data.tags["ffexp.sweep_id"]}


def test_slurm_template_composes(tmp_path):
    """conf/hydra/launcher/ffexp_slurm.yaml extends submitit_slurm (no cluster needed)."""
    proc, _ = run_ffexp(tmp_path, ["--cfg", "hydra", "-p", "hydra.launcher",
                                   "hydra/launcher=ffexp_slurm", "hydra.launcher.partition=cpu"],
                        uri=f"sqlite:///{tmp_path / 'unused.db'}")
    text = proc.stdout
    assert "SlurmLauncher" in text and "partition: cpu" in text
    assert "cpus_per_task: 1" in text and "array_parallelism: 64" in text
    assert not (tmp_path / "unused.db").exists()
