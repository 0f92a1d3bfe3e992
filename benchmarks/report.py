"""Time ffexp-report over a 100-run sweep with 100 epochs each (target: < 30 s).

The store is written directly with MlflowClient.log_batch (5 activations × 4 inits × 5 seeds,
the contract's metric names for a 2-16-16-1 network: 27 values per epoch, 270,000 in all) and
cached in a temporary directory, so only the first run pays for it. Then:

- ``ffexp-report`` end to end in a subprocess (what a user waits for, imports included);
- the history fetch alone (one ``get_metric_history`` call per (run, metric)) on 1 and on 8
  threads, and through the SQL store's private bulk query (one query per metric for all runs),
  which the report does not use: it is no faster on SQLite.

    python benchmarks/report.py [--fresh]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu")
INITS = ("he", "xavier", "random", "zeros")
SEEDS = range(5)
EPOCHS = 100
LAYERS = 3
CACHE = Path(tempfile.gettempdir()) / "ffexp-report-bench"


def _epoch_values(rng, e: int) -> dict[str, float]:
    decay = np.exp(-e / 30)
    out = {"train/cost": 0.7 * decay + 0.05 * rng.random(), "val/cost": 0.7 * decay + 0.06 * rng.random(),
           "val/accuracy": 0.95 - 0.4 * decay + 0.01 * rng.random(), "val/f1": 0.9 - 0.4 * decay,
           "val/roc_auc": 0.97 - 0.3 * decay, "time/epoch": 0.01, "time/elapsed": 0.01 * e}
    for l in range(1, LAYERS + 1):
        for name in ("grad_norm/W", "grad_norm/b", "grad_norm/Z", "weight_norm/W"):
            out[f"{name}{l}"] = 10.0 ** (l - LAYERS) * (1 + rng.random())
    for l in range(1, LAYERS):
        for name in ("act_mean/", "act_std/", "act_saturated/", "act_dead/"):
            out[f"{name}{l}"] = rng.random()
    return out


def build_store(root: Path) -> str:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    uri = f"sqlite:///{root}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("bench", artifact_location=(root / "artifacts").as_uri())
    command = (f"ffexp -m activation={','.join(ACTIVATIONS)} init={','.join(INITS)} "
               f"seed=0,1,2,3,4 train.epochs={EPOCHS}")
    parent = client.create_run(exp, run_name="sweep·bench", tags={
        "ffexp.command": command, "ffexp.sweep_id": "bench", "ffexp.kind": "sweep"}).info.run_id
    for a, i, s in itertools.product(ACTIVATIONS, INITS, SEEDS):
        rng = np.random.default_rng([ACTIVATIONS.index(a), INITS.index(i), s])
        run = client.create_run(exp, run_name=f"moons·{a}·{i}·s{s}", tags={
            "mlflow.parentRunId": parent, "ffexp.sweep_id": "bench", "ffexp.outcome": "finished",
            "mlflow.source.git.commit": "0" * 40, "ffexp.git_dirty": "false", "ffexp.version": "0.1.0",
            "ffexp.overrides": f"activation={a} init={i} seed={s} train.epochs={EPOCHS}"})
        params = {"dataset": "moons", "task": "binary", "activation": a, "init": i,
                  "loss": "bce", "optimizer": "minibatch", "lr": "0.1", "batch_size": "32",
                  "hidden_sizes": "[16,16]", "epochs": str(EPOCHS), "seed": str(s)}
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, e) for e in range(1, EPOCHS + 1)
                   for k, v in _epoch_values(rng, e).items()]
        metrics.append(Metric("test/accuracy", metrics[-1].value, now, EPOCHS))
        rid = run.info.run_id
        client.log_batch(rid, params=[Param(k, v) for k, v in params.items()])
        for start in range(0, len(metrics), 1000):  # MLflow's limit per log_batch
            client.log_batch(rid, metrics=metrics[start:start + 1000])
        client.set_terminated(rid, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    (root / "complete").write_text(uri)
    return uri


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached store")
    args = ap.parse_args()
    if args.fresh or not (CACHE / "complete").exists():
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.mkdir(parents=True)
        t0 = time.perf_counter()
        uri = build_store(CACHE)
        print(f"built store: 100 runs x {EPOCHS} epochs in {time.perf_counter() - t0:.1f} s ({CACHE})")
    else:
        uri = (CACHE / "complete").read_text()
        print(f"cached store: {CACHE}")

    out = CACHE / "report"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ffexp.report.cli", "--tracking-uri", uri,
                           "--output", str(out), "--no-log-artifact"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(done.stderr)
    print(done.stdout.strip())
    print(f"ffexp-report end to end: {wall:.1f} s (target < 30 s)")

    from mlflow import MlflowClient

    from ffexp.report import select

    client = MlflowClient(tracking_uri=uri)
    ids = [r.info.run_id for r in client.search_runs(
        [client.get_experiment_by_name("bench").experiment_id], "tags.`ffexp.sweep_id` = 'bench'",
        max_results=1000) if "mlflow.parentRunId" in r.data.tags]
    keys = ["train/cost", "val/cost", "val/accuracy",
            *(f"grad_norm/{k}{l}" for k in "WZ" for l in range(1, LAYERS + 1))]
    times = {}
    for workers in (1, 8):
        t0 = time.perf_counter()
        hist = select.fetch_histories(client, ids, keys, workers=workers)
        times[workers] = time.perf_counter() - t0
    store = client._tracking_client.store
    t0 = time.perf_counter()
    n_bulk = sum(len(store.get_metric_history_bulk(ids, k, 10**7)) for k in keys)
    t_bulk = time.perf_counter() - t0
    assert n_bulk == len(hist)
    print(f"history fetch, {len(ids)} runs x {len(keys)} metrics = {len(hist)} values: "
          f"get_metric_history x {len(ids) * len(keys)} on 1 thread {times[1]:.2f} s, "
          f"on 8 threads {times[8]:.2f} s; private bulk query x {len(keys)} {t_bulk:.2f} s")


if __name__ == "__main__":
    main()
