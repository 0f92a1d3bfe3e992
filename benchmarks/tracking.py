"""Cost of tracking: the same job with MLflow tracking off and on (default SQLite store).

The job: moons, 2-32-32-32-1 (ReLU, He), mini-batch gradient descent with batches of 32, at
100 and at 1,000 epochs, in one warm process (imports and the store's schema already paid for),
interleaved and repeated; medians. Printed per epoch count: wall time off and on, the overhead
(on - off) and the ratio on / off; then the fixed cost per run, the intercept a of
overhead(E) = a + b·E through the two points (plots, model, params, tags, run creation and
closing), and b, the per-epoch cost of the buffered metrics. Targets (issue 4): fixed cost
≤ 0.5 s, ratio ≤ 1.1 at 1,000 epochs. It then prints the floor the store sets at 1,000 epochs: the
values the run logs over the values per CPU second the store takes through the path the job's
values take (SQLAlchemy Core into MLflow's tables where ffexp._compat.mlflow_metrics allows it,
else ``log_batch``; the line names it), measured in the same run.

Then a 27-job sweep (activation × init × optimizer, 3 × 3 × 3) through the real ``ffexp -m``
command, once with ``tracking.enabled=false`` and once on a fresh SQLite store.

    python benchmarks/tracking.py [--repeats 3] [--sweep-epochs 20] [--no-sweep]
    python benchmarks/tracking.py --snapshots   # the default run, tracking.snapshots 0 vs 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ffexp.job.app import execute, prepare
from ffexp.job.settings import RunContext
from ffexp.launch.config import to_settings
from ffexp.launch.main import register
from ffexp.tracking import record_job

JOB = ["dataset=moons", "model.hidden_sizes=[32,32,32]", "optimizer=minibatch",
       "optimizer.batch_size=32", "activation=relu", "init=he"]
SWEEP = ["activation=sigmoid,tanh,relu", "init=random,xavier,he", "optimizer=batch,sgd,minibatch"]


def _settings(epochs: int, uri: str, enabled: bool):
    with initialize_config_module("ffexp.conf", version_base=None):
        cfg = compose("config", overrides=[*JOB, f"train.epochs={epochs}", f"tracking.uri={uri}",
                                           f"tracking.enabled={str(enabled).lower()}"])
    config = OmegaConf.to_container(cfg, resolve=True)
    return to_settings(cfg), config


#: metric values per job logged by the last tracked ``_one`` (the buffer's count)
SENT: dict[int, int] = {}


def store_throughput(uri: str, batches: int = 10) -> tuple[float, str]:
    """(metric values per CPU second, which path) the store takes through the path a job's
    values take (ffexp.tracking.buffer.store_rows: SQLAlchemy Core into MLflow's tables where
    ffexp._compat.mlflow_metrics allows it, else ``log_batch``), in batches of 1,000 values (the
    helper's batch), measured on a scratch run of the benchmark's store."""
    from ffexp._compat import mlflow_metrics
    from ffexp.tracking.buffer import store_rows
    from ffexp.tracking.store import open_store
    client, experiment_id = open_store(uri, "throughput")
    run_id = client.create_run(experiment_id).info.run_id
    ts = int(time.time() * 1000)
    path = "Core" if mlflow_metrics.choose(client, uri).writer else "log_batch"
    c0 = time.process_time()
    for b in range(batches):
        store_rows(client, uri, run_id, [(f"grad_norm/W{k}", 0.5, ts, b * 25 + j)
                                         for j in range(25) for k in range(40)])
    return batches * 1000 / (time.process_time() - c0), path


def _one(epochs: int, uri: str, enabled: bool, out: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, wall seconds outside training) of one job."""
    settings, config = _settings(epochs, uri, enabled)
    context = RunContext("multirun", JOB, str(out), None, 0, "0", "benchmark", config)
    t0, c0 = time.perf_counter(), time.process_time()
    job = prepare(settings)
    with record_job(settings, job, context) as recorder:
        t1 = time.perf_counter()
        result = execute(job, recorder.callbacks)
        t2 = time.perf_counter()
        recorder.finish(result)
    t3 = time.perf_counter()
    if enabled:
        SENT[epochs] = recorder.buffer.sent
    return t3 - t0, time.process_time() - c0, (t3 - t0) - (t2 - t1)


def in_process(repeats: int) -> None:
    register()   # what the entry point registers in Hydra (schemas, sweepers)
    with tempfile.TemporaryDirectory(prefix="ffexp-bench-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        _one(5, uri, True, Path(tmp))   # warm-up: imports, schema, experiment
        _one(5, uri, False, Path(tmp))
        rows, cpu, outside = {}, {}, {}
        for epochs in (100, 1000):
            off, on = [], []
            for _ in range(repeats):
                off.append(_one(epochs, uri, False, Path(tmp)))
                on.append(_one(epochs, uri, True, Path(tmp)))
            rows[epochs] = (statistics.median(r[0] for r in off), statistics.median(r[0] for r in on))
            cpu[epochs] = (statistics.median(r[1] for r in off), statistics.median(r[1] for r in on))
            outside[epochs] = (statistics.median(r[2] for r in off),
                               statistics.median(r[2] for r in on))
        throughput, path = store_throughput(uri)
    print(f"tracking cost, moons 2-32-32-32-1, mini-batch 32, median of {repeats} (warm process; "
          f"metrics written by the helper process, its CPU not counted in 'cpu')")
    print(f"{'epochs':>7} {'off s':>8} {'on s':>8} {'overhead s':>11} {'ratio':>6} "
          f"{'cpu off':>8} {'cpu on':>8} {'cpu ratio':>9}")
    for epochs, (off, on) in rows.items():
        c_off, c_on = cpu[epochs]
        print(f"{epochs:>7} {off:>8.3f} {on:>8.3f} {on - off:>11.3f} {on / off:>6.3f} "
              f"{c_off:>8.3f} {c_on:>8.3f} {c_on / c_off:>9.3f}")
    (o1, n1), (o2, n2) = rows[100], rows[1000]
    d1, d2 = n1 - o1, n2 - o2
    per_epoch = (d2 - d1) / 900
    fixed = d1 - 100 * per_epoch
    print(f"fixed cost per run (intercept of the overhead): {fixed:.3f} s (target <= 0.5); "
          f"per epoch: {1000 * per_epoch:.2f} ms; ratio at 1000 epochs {n2 / o2:.3f} (target <= 1.1)")
    writing = SENT[1000] / throughput
    print(f"the store's floor at 1000 epochs: {SENT[1000]} metric values at {throughput:.0f} "
          f"values per CPU second ({path}, the path the job's values take, measured now) = "
          f"{writing:.2f} s of writing, which the run waits "
          f"for before it is FINISHED; overlapped with training on the other core, the ratio "
          f"cannot go below {max(o2, writing) / o2:.2f} (plus the fixed cost: "
          f"{(max(o2, writing) + max(fixed, 0)) / o2:.2f})")
    direct = {e: on - off for e, (off, on) in outside.items()}
    print(f"fixed cost measured directly (time outside training, on - off: run creation, params, "
          f"closing with plots, model, artifacts, waiting for the metrics): "
          + ", ".join(f"{d:.3f} s at {e} epochs" for e, d in direct.items()))


def sweep(epochs: int) -> None:
    ffexp = str(Path(sys.executable).with_name("ffexp"))
    times = {}
    for enabled in (False, True):
        with tempfile.TemporaryDirectory(prefix="ffexp-bench-sweep-") as tmp:
            args = [ffexp, "-m", *SWEEP, f"train.epochs={epochs}",
                    f"tracking.enabled={str(enabled).lower()}"]
            t0 = time.perf_counter()
            proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True)
            times[enabled] = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"sweep failed (tracking={enabled})")
    off, on = times[False], times[True]
    print(f"27-job sweep ({' '.join(SWEEP)}, {epochs} epochs, basic launcher, one process): "
          f"off {off:.1f} s, on {on:.1f} s (fresh SQLite store, schema included), "
          f"+{(on - off) / 27:.2f} s per job, ratio {on / off:.2f}")


# ---- step images (tracking.snapshots, issue 10): a separate block, ``--snapshots`` ------------

DEFAULT_JOB = ["dataset=moons"]   # the default run: 2-16-16-1, 200 epochs, mini-batch 32


def _default_job(uri: str, enabled: bool, snapshots: int, out: Path,
                 logging: list | None = None) -> tuple[float, float]:
    """(wall, CPU seconds of this process) of the default job, with ``tracking.snapshots``;
    the CPU seconds of drawing and logging the step images (``Snapshots.log``, measured inside
    the run: the difference of two runs' totals is within their noise) appended to ``logging``."""
    with initialize_config_module("ffexp.conf", version_base=None):
        cfg = compose("config", overrides=[*DEFAULT_JOB, f"tracking.uri={uri}",
                                           f"tracking.enabled={str(enabled).lower()}",
                                           f"tracking.snapshots={snapshots}"])
    settings, config = to_settings(cfg), OmegaConf.to_container(cfg, resolve=True)
    context = RunContext("multirun", DEFAULT_JOB, str(out), None, 0, "0", "benchmark", config)
    t0, c0 = time.perf_counter(), time.process_time()
    job = prepare(settings)
    with record_job(settings, job, context) as recorder:
        if logging is not None and hasattr(recorder, "snapshots"):
            recorder.snapshots.log = _timed(recorder.snapshots.log, logging)
        recorder.finish(execute(job, recorder.callbacks))
    return time.perf_counter() - t0, time.process_time() - c0


def _timed(log, spent: list):
    def timed(*args, **kwargs):
        c0 = time.process_time()
        try:
            return log(*args, **kwargs)
        finally:
            spent.append(time.process_time() - c0)
    return timed


def snapshot_cost(repeats: int) -> None:
    """The default run untracked, tracked with tracking.snapshots=0 and =10 (interleaved)."""
    register()   # what the entry point registers in Hydra (schemas, sweepers)
    cases = (("untracked", False, 0), ("snapshots=0", True, 0), ("snapshots=10", True, 10))
    with tempfile.TemporaryDirectory(prefix="ffexp-bench-snap-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        for _, enabled, n in cases:  # warm-up: imports, schema, experiment, fonts
            _default_job(uri, enabled, n, Path(tmp))
        runs = {name: [] for name, _, _ in cases}
        logging: list[float] = []
        for _ in range(repeats):
            for name, enabled, n in cases:
                runs[name].append(_default_job(uri, enabled, n, Path(tmp),
                                               logging if n else None))
    wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
    print(f"step images, the default run (moons 2-16-16-1, 200 epochs), median of {repeats}:")
    print(f"{'case':>13} {'wall s':>8} {'cpu s':>8} {'wall/untracked':>15} {'cpu/untracked':>14}")
    for k in wall:
        print(f"{k:>13} {wall[k]:>8.3f} {cpu[k]:>8.3f} {wall[k] / wall['untracked']:>15.3f} "
              f"{cpu[k] / cpu['untracked']:>14.3f}")
    print(f"10 snapshots (20 images) cost {wall['snapshots=10'] - wall['snapshots=0']:.3f} s wall, "
          f"{cpu['snapshots=10'] - cpu['snapshots=0']:.3f} s CPU per run (difference of medians)")
    print(f"drawing and logging them (Snapshots.log, timed inside the run): "
          f"{statistics.median(logging):.3f} s CPU per run (median of {len(logging)}), "
          f"{statistics.median(logging) / cpu['untracked']:.2f}x the untracked run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep-epochs", type=int, default=20)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--snapshots", action="store_true",
                        help="only the cost of tracking.snapshots on the default run")
    args = parser.parse_args()
    if args.snapshots:
        return snapshot_cost(args.repeats)
    in_process(args.repeats)
    if not args.no_sweep:
        sweep(args.sweep_epochs)


if __name__ == "__main__":
    main()
