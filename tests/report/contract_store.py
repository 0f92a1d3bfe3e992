"""Write a sweep into an MLflow store by hand, exactly as docs/ARCHITECTURE.md's contract says.

Used where the real ``ffexp -m`` cannot produce the case: runs from two code commits, a failed
and a diverged job, a different epoch count — the uncontrolled comparison and the outcome counts.
"""

from __future__ import annotations

import itertools
import time
import zlib

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

LAYERS = 3


def history(activation: str, init: str, seed: int, epochs: int,
            dataset: str = "moons") -> dict[str, list[float]]:
    """Deterministic, plausible per-epoch values for one job (circles 0.3 below moons)."""
    rng = np.random.default_rng([zlib.crc32(activation.encode()), zlib.crc32(init.encode()), seed]
                                + ([zlib.crc32(dataset.encode())] if dataset != "moons" else []))
    base = ({"relu": 0.9, "tanh": 0.8}.get(activation, 0.7) + {"he": 0.05}.get(init, 0.0)
            - (0.3 if dataset == "circles" else 0.0))
    e = np.arange(1, epochs + 1)
    out = {"train/cost": list(0.7 * np.exp(-e / 5) + 0.05 * rng.random(epochs)),
           "val/cost": list(0.7 * np.exp(-e / 6) + 0.05 * rng.random(epochs)),
           "val/accuracy": list(np.clip(base - 0.3 * np.exp(-e / 3)
                                 + 0.02 * rng.standard_normal(epochs), 0, 1))}
    for l in range(1, LAYERS + 1):
        out[f"grad_norm/W{l}"] = list(10.0 ** (l - LAYERS) * (1 + rng.random(epochs)))
        out[f"grad_norm/Z{l}"] = list(10.0 ** (l - LAYERS) * (2 + rng.random(epochs)))
    return out


def write_sweep(uri: str, artifacts: str, experiment: str = "contract",
                activations=("relu", "tanh"), inits=("he", "xavier"), seeds=(0, 1),
                epochs: int = 5, sweep_id: str = "sw-1",
                special: dict | None = None, val: bool = True,
                datasets=("moons",)) -> tuple[str, list[str]]:
    """One parent run and one child per combination, artifacts under the folder ``artifacts``. ``special`` maps (activation, init, seed)
    to overrides: ``status`` (RUNNING leaves the run open, as a dead process would), ``outcome``,
    ``epochs``, ``commit``. ``val=False``: no validation split (``dataset.val_fraction=0``), so
    train/accuracy instead of the val/ metrics. ``datasets``: one job per dataset too (the
    dataset in the command line when there are several). Returns (parent id, child ids)."""
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(
        experiment, artifact_location=artifacts)
    command = (f"ffexp -m activation={','.join(activations)} init={','.join(inits)} "
               f"seed={','.join(map(str, seeds))} train.epochs={epochs}"
               + (f" dataset={','.join(datasets)}" if len(datasets) > 1 else ""))
    parent = client.create_run(exp_id, run_name=f"sweep-{sweep_id}",
                               tags={"ffexp.command": command, "ffexp.sweep_id": sweep_id})
    pid = parent.info.run_id
    children = []
    for d, a, i, s in itertools.product(datasets, activations, inits, seeds):
        sp = (special or {}).get((a, i, s), {})
        ep = sp.get("epochs", epochs)
        params = {"dataset": d, "task": "binary", "activation": a, "init": i,
                  "loss": "bce", "optimizer": "minibatch", "lr": "0.1", "batch_size": "32",
                  "hidden_sizes": "[8, 8]", "epochs": str(ep), "seed": str(s),
                  "activation.name": a, "init.name": i, "train.epochs": str(ep),
                  "train.seed": str(s), "dataset.params.noise": "0.2"}
        tags = {"ffexp.outcome": sp.get("outcome", "finished"),
                "mlflow.source.git.commit": sp.get("commit", "abc1234"), "ffexp.git_dirty": "false",
                "ffexp.config_hash": f"h{d}{a}{i}{s}{ep}", "ffexp.version": "0.1.0",
                "ffexp.sweep_id": sweep_id, "mlflow.parentRunId": pid,
                "ffexp.overrides": f"activation={a} init={i} seed={s} train.epochs={ep}"
                + (f" dataset={d}" if len(datasets) > 1 else "")}
        run = client.create_run(exp_id, run_name=f"{d}·{a}·{i}·s{s}", tags=tags)
        now = int(time.time() * 1000)
        hist = history(a, i, s, ep, d)
        if not val:
            hist = {("train/accuracy" if k == "val/accuracy" else k): v
                    for k, v in hist.items() if k != "val/cost"}
        metrics = [Metric(k, float(v), now, step) for k, vs in hist.items()
                   for step, v in enumerate(vs, 1)]
        last = hist["val/accuracy" if val else "train/accuracy"][-1]
        metrics.append(Metric("test/accuracy", float(last) - 0.01, now, ep))
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param(k, v) for k, v in params.items()])
        if sp.get("status") != "RUNNING":
            client.set_terminated(run.info.run_id, sp.get("status", "FINISHED"))
        children.append(run.info.run_id)
    client.set_terminated(pid, "FINISHED")
    return pid, children
