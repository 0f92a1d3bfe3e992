"""The cost of the harness around training: one sweep, tracked, untracked and as a bare loop.

The sweep (issue 15): 5 activations × 4 inits × 5 seeds = 100 jobs on the default dataset
(moons, 2-16-16-1, mini-batch 32), 50 epochs each, through the real command::

    ffexp -m activation=... init=... seed=... train.epochs=50 \
        hydra/launcher=joblib hydra.launcher.n_jobs=2

three ways, each a whole process started from here (wall clock and CPU of the process tree):

- ``tracked``: the default tracking, a fresh SQLite store in a temporary working directory;
- ``untracked``: the same command with ``tracking.enabled=false``;
- ``bare``: one plain Python process (``python benchmarks/sweep.py --bare``) that imports
  ffexp, loads the data and calls ``ffexp.train`` on the same 100 networks, one after the
  other, with one BLAS thread (what the command's jobs use): the work the harness wraps.

Targets: untracked / bare ≤ 3 and tracked / untracked ≤ 1.5 (wall clock). With ``--repeats``
the variants are interleaved (the order rotates) and the medians are printed.

``--floor`` adds a fourth variant, ``no pictures``: tracked without the plots, the step images
and the model (``tracking.log_plots=false tracking.snapshots=0 tracking.log_model=false``):
what MLflow's store costs by itself for the runs, params, metrics, tags and the remaining
artifacts, the floor under the tracked sweep's ratio.

    python benchmarks/sweep.py [--jobs 100] [--epochs 50] [--repeats 1] [--n-jobs 2] [--floor]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "linear")
INITS = ("random", "xavier", "he", "zeros")


def grid(jobs: int) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """(activations, inits, seeds) of about ``jobs`` jobs: 20 per seed; fewer activations
    below 20 jobs."""
    if jobs >= 20:
        return ACTIVATIONS, INITS, tuple(range(jobs // 20))
    return ACTIVATIONS[:max(1, jobs // 4)], INITS, (0,)


def _timed(args: list[str], cwd: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its waited-for descendants)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(args)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


#: the tracked sweep without its pictures and model (--floor)
NO_PICTURES = ("tracking.log_plots=false", "tracking.snapshots=0", "tracking.log_model=false")


def command(tracked: bool, acts, inits, seeds, epochs: int, n_jobs: int,
            extra: tuple[str, ...] = ()) -> tuple[float, float]:
    ffexp = str(Path(sys.executable).with_name("ffexp"))
    args = [ffexp, "-m", f"activation={','.join(acts)}", f"init={','.join(inits)}",
            f"seed={','.join(map(str, seeds))}", "optimizer=minibatch", f"train.epochs={epochs}",
            "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    if not tracked:
        args.append("tracking.enabled=false")
    args.extend(extra)
    with tempfile.TemporaryDirectory(prefix="ffexp-bench-sweep-") as cwd:
        return _timed(args, cwd)


def bare(acts, inits, seeds, epochs: int) -> tuple[float, float]:
    args = [sys.executable, __file__, "--bare", "--epochs", str(epochs),
            "--grid", ",".join(acts), ",".join(inits), ",".join(map(str, seeds))]
    with tempfile.TemporaryDirectory(prefix="ffexp-bench-bare-") as cwd:
        return _timed(args, cwd)


def bare_loop(acts, inits, seeds, epochs: int) -> None:
    """The trainings the sweep's jobs run (defaults of conf/: moons, [16, 16], sigmoid output,
    bce, mini-batch lr 0.1 batch 32; slopes: leaky_relu 0.01, linear 1), nothing around them."""
    from threadpoolctl import threadpool_limits

    from ffexp import Network, train
    from ffexp.data import load_dataset

    d = load_dataset("moons", seed=0, params={"n_samples": 400, "noise": 0.2})
    with threadpool_limits(limits=1, user_api="blas"):
        for act, init, seed in itertools.product(acts, inits, seeds):
            net = Network([d.n_features, 16, 16, d.n_outputs], act, "sigmoid", init, seed,
                          slope={"leaky_relu": 0.01, "linear": 1.0}.get(act))
            train(net, d.X_train, d.Y_train, "bce", optimizer="minibatch", lr=0.1,
                  batch_size=32, epochs=epochs, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="about this many jobs (default 100)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib workers")
    parser.add_argument("--floor", action="store_true",
                        help="also the tracked sweep without pictures and model")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grid", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        acts, inits, seeds = args.grid
        bare_loop(acts.split(","), inits.split(","), [int(s) for s in seeds.split(",")],
                  args.epochs)
        return

    acts, inits, seeds = grid(args.jobs)
    n = len(acts) * len(inits) * len(seeds)
    runs = {
        "tracked": lambda: command(True, acts, inits, seeds, args.epochs, args.n_jobs),
        "untracked": lambda: command(False, acts, inits, seeds, args.epochs, args.n_jobs),
        "bare": lambda: bare(acts, inits, seeds, args.epochs),
    }
    if args.floor:
        runs["no pictures"] = lambda: command(True, acts, inits, seeds, args.epochs,
                                              args.n_jobs, NO_PICTURES)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    order = list(runs)
    for r in range(args.repeats):
        for name in order[r % len(order):] + order[:r % len(order)]:  # no variant always first
            times[name].append(runs[name]())
    wall = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"sweep: {n} jobs ({len(acts)} activations x {len(inits)} inits x {len(seeds)} seeds), "
          f"moons, mini-batch, {args.epochs} epochs, joblib n_jobs={args.n_jobs}; "
          f"median of {args.repeats}; {os.cpu_count()} cpus, load average {load}")
    print(f"{'':>11} {'wall s':>8} {'cpu s':>8} {'jobs/min':>9}")
    for name in runs:
        print(f"{name:>11} {wall[name]:>8.1f} {cpu[name]:>8.1f} {60 * n / wall[name]:>9.1f}")
    for num, den, target in (("untracked", "bare", 3.0), ("tracked", "untracked", 1.5)):
        ratio = wall[num] / wall[den]
        print(f"{num} / {den}: {ratio:.2f} wall (target <= {target:g}: "
              f"{'OK' if ratio <= target else 'OVER'}), {cpu[num] / cpu[den]:.2f} cpu")
    if args.floor:
        print(f"no pictures / untracked: {wall['no pictures'] / wall['untracked']:.2f} wall, "
              f"{cpu['no pictures'] / cpu['untracked']:.2f} cpu (the store's floor); pictures and "
              f"model: {(wall['tracked'] - wall['no pictures']) / n:.3f} s wall a job")


if __name__ == "__main__":
    main()
