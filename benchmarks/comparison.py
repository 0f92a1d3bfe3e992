"""Time the comparison figures a sweep's parent gets when the sweep ends
(ffexp.report.comparison.log_comparison), for sweeps of 20 and of 100 jobs.

Each store is written directly with MlflowClient: a parent and its FINISHED children (4 seeds
per group; 5 groups for 20 jobs, 25 for 100: past 24 groups the figures are small multiples),
each child with the artifacts a 10-hidden-layer run on moons logs: ``history.csv`` (201
records: every per-epoch metric of 11 layers) and one 240 × 240 ``decision_boundary`` step
image. Then, per sweep: reading the children (``collect``), drawing the three PNGs (``draw``)
and the whole ``log_comparison`` (reading, drawing, uploading, the description), CPU and wall
seconds; the ratio is against the 20-job sweep of the same run.

    python benchmarks/comparison.py
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EPOCHS, LAYERS, SEEDS = 200, 11, 4


def _history(path: Path, rng, scale: float) -> None:
    names = ["epoch", "train/cost", "val/cost", "val/accuracy", "time/epoch"]
    names += [f"{q}{l}" for q in ("grad_norm/W", "grad_norm/b", "grad_norm/Z", "weight_norm/W",
                                  "act_mean/", "act_std/") for l in range(1, LAYERS + 1)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for e in range(EPOCHS + 1):
            decay = np.exp(-e / 50)
            row = [e, 0.7 * decay + 0.05 * rng.random(), 0.7 * decay + 0.06 * rng.random(),
                   0.95 - 0.4 * decay, 0.01]
            row += [scale ** (LAYERS - l) * (1 + rng.random()) for _ in range(6)
                    for l in range(1, LAYERS + 1)]
            w.writerow([repr(float(v)) for v in row])


def build(root: Path, jobs: int) -> tuple[object, str, str]:
    from mlflow import MlflowClient
    from mlflow.entities import Param
    from matplotlib.image import imsave
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    eid = client.create_experiment("bench", artifact_location=str(root / "artifacts"))
    parent = client.create_run(eid, run_name="sweep·bench").info.run_id
    rng = np.random.default_rng(0)
    staging = root / "staging"
    for j in range(jobs):
        group, seed = divmod(j, SEEDS)
        run = client.create_run(eid, tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_batch(run, params=[Param("activation", f"act{group}"), Param("seed", str(seed)),
                                      Param("task", "binary"), Param("dataset", "moons")])
        (staging / "images").mkdir(parents=True, exist_ok=True)
        _history(staging / "history.csv", rng, 10.0 ** -(group % 4))
        image = staging / "images" / f"decision_boundary+step+{EPOCHS}+timestamp+0+x.png"
        imsave(image, rng.random((240, 240, 3)))
        client.log_artifacts(run, str(staging))
        for p in (staging / "images").iterdir():
            p.unlink()
        client.set_terminated(run, "FINISHED")
    return client, eid, parent


def _time(f):
    c, w = time.process_time(), time.perf_counter()
    out = f()
    return out, time.process_time() - c, time.perf_counter() - w


def main() -> None:
    from ffexp.report import comparison
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"cpus: {os.cpu_count()}; each sweep: {SEEDS} seeds per group, {EPOCHS} epochs, "
          f"{LAYERS} layers")
    base = None
    for jobs in (20, 100):
        with tempfile.TemporaryDirectory(prefix="ffexp-bench-cmp-") as tmp:
            client, eid, parent = build(Path(tmp), jobs)
            data, c_cpu, c_wall = _time(lambda: comparison.collect(client, eid, parent, ("activation",)))
            _, d_cpu, d_wall = _time(lambda: comparison.draw(data, Path(tmp, "out")))
            _, t_cpu, t_wall = _time(lambda: comparison.log_comparison(client, eid, parent,
                                                                       ("activation",)))
            base = base or t_wall
            print(f"{jobs:4d} jobs ({len(data['groups'])} groups): read {c_wall:5.2f} s "
                  f"(cpu {c_cpu:5.2f}), draw {d_wall:5.2f} s (cpu {d_cpu:5.2f}), "
                  f"log_comparison {t_wall:5.2f} s (cpu {t_cpu:5.2f}); x{t_wall / base:.2f} "
                  f"of 20 jobs")
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    sys.exit(main())
