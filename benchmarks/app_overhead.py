"""Per-job overhead of the experiment app around training.

Times a sweep of N short jobs (moons, seeds 0..N-1, tracking off) two ways against the same N
trainings called directly from Python (``Network`` + ``ffexp.train``, data loaded once,
untimed):

- ``command``: the real command in a subprocess, ``ffexp -m seed=range(N) …``: everything a user
  waits for, including the interpreter start and imports (paid once per sweep) and Hydra's
  per-job work (composition, output dirs, .hydra files, logging);
- ``in-process``: Hydra's compose API and the same steps as the task function (to_settings,
  prepare, record_job, execute), split into stages, to show where the time goes.

The overhead per job is (app time − direct time) / N; the target is < 0.2 s.

``--default-run``: instead, the CPU time (process tree) of the default run, ``ffexp`` with no
override, tracked and with ``tracking.enabled=false``, interleaved, each in a fresh working
directory (so the tracked run creates its SQLite store) and again in the same directory (the
store exists). Target (issue 15): tracked / untracked ≤ 1.5. It then prints the floor under
that ratio: the CPU of the imports tracking adds (a fresh interpreter importing them, less one
importing what an untracked run does) and the run's metric values at the values per second
the store takes through the path a job's values take (Core or ``log_batch``, named; measured on
the run's store).

    python benchmarks/app_overhead.py [--jobs 20] [--epochs 20]
    python benchmarks/app_overhead.py --default-run [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module

from ffexp import Network, train
from ffexp.job.app import execute, prepare, split_metrics
from ffexp.job.settings import RunContext
from ffexp.launch.config import to_settings
from ffexp.launch.main import register
from ffexp.job.data import load_dataset
from ffexp.tracking import record_job


def direct(jobs: int, epochs: int) -> float:
    """The bare trainings: the default network and optimizer, no validation, no evaluation."""
    d = load_dataset("moons")
    t0 = time.perf_counter()
    for seed in range(jobs):
        net = Network([d.n_features, 16, 16, d.n_outputs], "relu", "sigmoid", "he", seed)
        train(net, d.X_train, d.Y_train, "bce", optimizer="minibatch", lr=0.1, batch_size=32,
              epochs=epochs)
    return time.perf_counter() - t0


def command(jobs: int, epochs: int) -> float:
    """The real ``ffexp -m`` in a subprocess, wall clock."""
    exe = Path(sys.executable).with_name("ffexp")
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        run = subprocess.run([str(exe), "-m", "tracking.enabled=false", f"train.epochs={epochs}",
                              f"seed=range(0,{jobs})"], cwd=cwd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"ffexp -m failed:\n{run.stderr}")
    return seconds


def in_process(jobs: int, epochs: int) -> dict[str, float]:
    """The task function's steps with Hydra's compose API, timed by stage (seconds, totals)."""
    register()   # what the entry point registers in Hydra (schemas, sweepers)
    stages = dict.fromkeys(("compose", "prepare", "train+validation", "final evaluation"), 0.0)
    with initialize_config_module("ffexp.conf", version_base=None):
        for seed in range(jobs):
            t0 = time.perf_counter()
            settings = to_settings(compose("config", overrides=[
                "tracking.enabled=false", f"train.epochs={epochs}", f"seed={seed}"]))
            t1 = time.perf_counter()
            job = prepare(settings)
            t2 = time.perf_counter()
            context = RunContext("multirun", [f"seed={seed}"], tempfile.gettempdir(), None, seed,
                                 str(seed), "benchmark")
            with record_job(settings, job, context) as recorder:
                result = execute(job, recorder.callbacks)
                recorder.finish(result)
            t3 = time.perf_counter()
            stages["compose"] += t1 - t0
            stages["prepare"] += t2 - t1
            stages["train+validation"] += result.train.seconds
            stages["final evaluation"] += (t3 - t2) - result.train.seconds
    return stages


def _cpu_of(args: list[str], cwd: str) -> float:
    """CPU seconds of a command and its descendants (the metrics helper included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{run.stderr}")
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


#: what an untracked run imports, and what a tracked one imports besides (ffexp._compat.joblib_workers'
#: list for a sweep's job: MLflow's client and SQL store, the plots; and the pyfunc model)
UNTRACKED = ["ffexp.launch.main", "sklearn.datasets", "sklearn.model_selection",
             "sklearn.preprocessing"]
TRACKED = ["ffexp.tracking.run", "mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store",
           "ffexp.plots.figures", "mlflow.pyfunc"]


def _import_cpu(modules: list[str]) -> float:
    return _cpu_of([sys.executable, "-c", "import " + ", ".join(modules)], ".")


def _values_logged(cwd: str) -> int:
    """Metric values of the last run in the store under ``cwd``, read back."""
    from mlflow import MlflowClient
    client = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    run = client.search_runs([e.experiment_id for e in client.search_experiments()],
                             order_by=["attributes.start_time DESC"], max_results=1)[0]
    return sum(len(client.get_metric_history(run.info.run_id, key)) for key in run.data.metrics)


def default_run(repeats: int) -> None:
    """The default run's CPU time tracked against untracked, and the floor under the ratio:
    the imports tracking adds (a fresh interpreter each, medians) and the run's metric values
    at the rate the store takes them through the path they take (benchmarks/tracking.py's
    ``store_throughput``)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from tracking import store_throughput

    exe = str(Path(sys.executable).with_name("ffexp"))
    cpu: dict[str, list[float]] = {k: [] for k in ("off", "on, new store", "on, existing store")}
    imports, values, rate, path = [], 0, [], ""
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cwd:
            cpu["off"].append(_cpu_of([exe, "tracking.enabled=false"], cwd))
            cpu["on, new store"].append(_cpu_of([exe], cwd))
            cpu["on, existing store"].append(_cpu_of([exe], cwd))
            imports.append(_import_cpu(UNTRACKED + TRACKED) - _import_cpu(UNTRACKED))
            values = _values_logged(cwd)
            per_second, path = store_throughput(f"sqlite:///{cwd}/mlflow.db")
            rate.append(per_second)
    med = {k: statistics.median(v) for k, v in cpu.items()}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"default run (ffexp, no override: moons, 200 epochs), CPU s of the process tree, "
          f"median of {repeats}; load average {load}")
    for name, seconds in med.items():
        ratio = seconds / med["off"]
        verdict = "" if name == "off" else \
            f"  tracked / untracked {ratio:.2f} (target <= 1.5: {'OK' if ratio <= 1.5 else 'OVER'})"
        print(f"  {name:<20} {seconds:7.2f} s{verdict}")
    imported, writing = statistics.median(imports), values / statistics.median(rate)
    floor = (med["off"] + imported + writing) / med["off"]
    print(f"  floor: the imports tracking adds {imported:.2f} s CPU (MLflow's client and SQL "
          f"store, matplotlib, the pyfunc model) + {values} metric values at "
          f"{statistics.median(rate):.0f} values per CPU second ({path}, the path the run's "
          f"values take, measured now) {writing:.2f} s "
          f"-> tracked / untracked >= {floor:.2f}, before any plot, model or run is written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--default-run", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.default_run:
        default_run(args.repeats)
        return
    n, e = args.jobs, args.epochs

    base = direct(n, e)
    stages = in_process(n, e)
    app_in = sum(stages.values())
    cmd = command(n, e)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{n} jobs of moons, {e} epochs each ({os.cpu_count()} cpus, load average {load})")
    print(f"  direct trainings            {base:7.3f} s  ({base / n:.4f} s/job)")
    print(f"  app in-process              {app_in:7.3f} s  overhead {(app_in - base) / n:.4f} s/job")
    for name, seconds in stages.items():
        print(f"    {name:<25} {seconds:7.3f} s  ({seconds / n:.4f} s/job)")
    job = prepare(to_settings_for_probe(e))
    t0 = time.perf_counter()
    for _ in range(e):
        split_metrics(job, "val")
    per_epoch = (time.perf_counter() - t0) / e
    print(f"    (of train+validation: the val metrics, {per_epoch * 1e3:.2f} ms/epoch "
          f"= {per_epoch * e:.4f} s/job)")
    print(f"  ffexp -m in a subprocess    {cmd:7.3f} s  overhead {(cmd - base) / n:.4f} s/job "
          f"(incl. one interpreter start and imports)")
    worst = max(app_in, cmd)
    verdict = "OK" if (worst - base) / n < 0.2 else "OVER"
    print(f"per-job overhead (worst of the two): {(worst - base) / n:.4f} s  target < 0.2 s: {verdict}")


def to_settings_for_probe(epochs: int):
    with initialize_config_module("ffexp.conf", version_base=None):
        return to_settings(compose("config", overrides=["tracking.enabled=false",
                                                        f"train.epochs={epochs}"]))


if __name__ == "__main__":
    main()
