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
the three are interleaved (the order rotates) and the medians are printed. ``start s``: from
the command's start to Hydra's line that it launches the jobs (before it, Hydra composes the
sweep's config, the callbacks open the store and the parent run, and the sweeper checks that
the jobs compose).

``--start`` measures only that, before and after ffexp's sweeper (ffexp.launch.sweeper): the same
command tracked and untracked with Hydra's own basic sweeper
(``hydra.sweeper._target_=hydra._internal.core_plugins.basic_sweeper.BasicSweeper``, which
composes every job before launching) and with ffexp's (the default, one job per combination
of activation and init: 20 of 100), each process stopped once it launches; interleaved, the
order rotating, medians of ``--repeats``.

``--log-batch`` adds the tracked variants (``tracked``, and ``no pictures`` with ``--floor``)
with the metric values written by MLflow's ``log_batch`` instead of ffexp's Core path
(``FFEXP_MLFLOW_CORE=0``, see ffexp._compat.mlflow_metrics): before and after, in one sitting.

``--floor`` adds a variant, ``no pictures``: tracked without the plots, the step images and the
model (``tracking.log_plots=false tracking.snapshots=0 tracking.log_model=false``): what
MLflow's store costs by itself for the runs, params, metrics, tags and the remaining artifacts,
the floor under the tracked sweep's ratio.

``--floor`` also adds ``no model`` (tracked without the model: the pictures' part is
``no model`` - ``no pictures``). ``--before PATH`` adds the tracked variants (``tracked``,
``no model``) run with another version's package first on ``PYTHONPATH`` (issue 27's pictures:
the code before them, in the same sitting).
``--stack`` adds ``untracked stack`` and ``tracked stack``: the same commands with
``train.stack=true`` (ffexp.launch.stacked; the sweep's jobs differ only in activation, init and
seed, so all of them are one group, cut into one sub-stack per joblib worker: two tasks of 50),
with issue 27's target untracked stack / bare ≤ 1.0 (CPU seconds); and three more untracked
variants: ``stack 1 proc`` (``hydra.launcher.n_jobs=1``: the group is one task, trained in the
launching process, no worker process), ``stack launch`` (the same command ended at Hydra's line
that it launches the task: the command's cost before any job, i.e. Python, imports, Hydra and
the sweeper's check composing the 20 combinations of activation and init) and ``one job`` (the
command's fixed cost: ``ffexp -m seed=0 train.epochs=1`` stacked, one job in the launching
process, including the sweep's end).

    python benchmarks/sweep.py [--jobs 100] [--epochs 50] [--repeats 1] [--n-jobs 2] [--start]
                               [--floor] [--log-batch] [--stack] [--before PATH]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import signal
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


#: Hydra's line as it launches the jobs (basic launcher; joblib)
LAUNCH = re.compile(r"\[HYDRA\] (Launching \d+ jobs|Joblib\.Parallel\(.*\) is launching)")
#: Hydra's own basic sweeper, which composes every job before launching (ffexp's: the default)
HYDRAS_SWEEPER = "hydra.sweeper._target_=hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _timed(args: list[str], cwd: str, stop_at_launch: bool = False, env: dict | None = None
           ) -> tuple[float, float, float | None]:
    """(wall seconds, CPU seconds of the process and its waited-for descendants, seconds to
    Hydra's launch line or None). ``stop_at_launch``: end the process (its whole group, the
    joblib workers too) there."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=stop_at_launch,
                            env={**os.environ, **(env or {})})
    launch, lines = None, []
    for line in proc.stdout:
        lines.append(line)
        if launch is None and LAUNCH.search(line):
            launch = time.perf_counter() - t0
            if stop_at_launch:
                os.killpg(proc.pid, signal.SIGTERM)
                break
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if (proc.returncode != 0 and not stop_at_launch) or (stop_at_launch and launch is None):
        print("".join(lines)[-2000:], err[-3000:], file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(args)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, launch


#: the sweep's jobs trained as stacks (--stack)
STACK = ("train.stack=true",)
#: the tracked sweep without its pictures and model (--floor)
NO_PICTURES = ("tracking.log_plots=false", "tracking.snapshots=0", "tracking.log_model=false")
#: the tracked sweep with its pictures, without its model (--floor): the pictures' part
NO_MODEL = ("tracking.log_model=false",)


def command(tracked: bool, acts, inits, seeds, epochs: int, n_jobs: int,
            hydras_sweeper: bool = False, stop_at_launch: bool = False,
            extra: tuple[str, ...] = (), env: dict | None = None
            ) -> tuple[float, float, float | None]:
    ffexp = str(Path(sys.executable).with_name("ffexp"))
    args = [ffexp, "-m", f"activation={','.join(acts)}", f"init={','.join(inits)}",
            f"seed={','.join(map(str, seeds))}", "optimizer=minibatch", f"train.epochs={epochs}",
            "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    if not tracked:
        args.append("tracking.enabled=false")
    if hydras_sweeper:
        args.append(HYDRAS_SWEEPER)
    args.extend(extra)
    with tempfile.TemporaryDirectory(prefix="ffexp-bench-sweep-") as cwd:
        return _timed(args, cwd, stop_at_launch, env)


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
    from ffexp.job.data import load_dataset

    d = load_dataset("moons", seed=0, params={"n_samples": 400, "noise": 0.2})
    with threadpool_limits(limits=1, user_api="blas"):
        for act, init, seed in itertools.product(acts, inits, seeds):
            net = Network([d.n_features, 16, 16, d.n_outputs], act, "sigmoid", init, seed,
                          slope={"leaky_relu": 0.01, "linear": 1.0}.get(act))
            train(net, d.X_train, d.Y_train, "bce", optimizer="minibatch", lr=0.1,
                  batch_size=32, epochs=epochs, seed=seed)


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _rotated(names: list[str], repeats: int):
    """Every name once per repeat, the order rotating: no variant always first."""
    for r in range(repeats):
        k = r % len(names)
        yield from names[k:] + names[:k]


def start_main(args, acts, inits, seeds, n: int) -> None:
    """``--start``: seconds to the launch, Hydra's sweeper against ffexp's."""
    runs = {(tracked, hydras): (lambda t=tracked, h=hydras: command(
                t, acts, inits, seeds, args.epochs, args.n_jobs, h, stop_at_launch=True))
            for tracked in (False, True) for hydras in (True, False)}
    load0 = _load()
    times: dict = {k: [] for k in runs}
    for key in _rotated(list(runs), args.repeats):
        times[key].append(runs[key]()[2])
    start = {k: statistics.median(v) for k, v in times.items()}
    print(f"sweep start: {n} jobs ({len(acts)} activations x {len(inits)} inits x {len(seeds)} "
          f"seeds), joblib n_jobs={args.n_jobs}; seconds from the command's start to the "
          f"launch, median of {args.repeats}; {os.cpu_count()} cpus, load average {load0} "
          f"(start), {_load()} (end)")
    print(f"{'':>10} {'Hydra s':>8} {'ffexp s':>8} {'Hydra/ffexp':>12}")
    for tracked in (False, True):
        hydra, ffexp = start[(tracked, True)], start[(tracked, False)]
        name = "tracked" if tracked else "untracked"
        print(f"{name:>10} {hydra:>8.2f} {ffexp:>8.2f} {hydra / ffexp:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="about this many jobs (default 100)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib workers")
    parser.add_argument("--start", action="store_true",
                        help="only the time to the launch, Hydra's sweeper against ffexp's")
    parser.add_argument("--floor", action="store_true",
                        help="also the tracked sweep without pictures and model")
    parser.add_argument("--log-batch", action="store_true",
                        help="also the tracked variants with metrics written by MLflow's "
                             "log_batch (FFEXP_MLFLOW_CORE=0)")
    parser.add_argument("--stack", action="store_true",
                        help="also the untracked and tracked sweeps with train.stack=true")
    parser.add_argument("--before", metavar="PATH",
                        help="also the tracked variants with another version of ffexp's package "
                             "first on PYTHONPATH (e.g. an older commit's ffexp/ and "
                             "hydra_plugins/ unpacked into PATH): before and after in one sitting")
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
    if args.start:
        start_main(args, acts, inits, seeds, n)
        return
    runs = {
        "tracked": lambda env=None: command(True, acts, inits, seeds, args.epochs, args.n_jobs,
                                            env=env),
        "untracked": lambda: command(False, acts, inits, seeds, args.epochs, args.n_jobs),
        "bare": lambda: bare(acts, inits, seeds, args.epochs),
    }
    if args.floor:
        runs["no pictures"] = lambda env=None: command(True, acts, inits, seeds, args.epochs,
                                                       args.n_jobs, extra=NO_PICTURES, env=env)
        runs["no model"] = lambda env=None: command(True, acts, inits, seeds, args.epochs,
                                                    args.n_jobs, extra=NO_MODEL, env=env)
    if args.stack:
        runs["untracked stack"] = lambda: command(False, acts, inits, seeds, args.epochs,
                                                  args.n_jobs, extra=STACK)
        runs["tracked stack"] = lambda: command(True, acts, inits, seeds, args.epochs,
                                                args.n_jobs, extra=STACK)
        runs["stack 1 proc"] = lambda: command(False, acts, inits, seeds, args.epochs, 1,
                                               extra=STACK)
        runs["stack launch"] = lambda: command(False, acts, inits, seeds, args.epochs, 1,
                                               extra=STACK, stop_at_launch=True)
        runs["one job"] = lambda: command(False, acts[:1], inits[:1], seeds[:1], 1,
                                          args.n_jobs, extra=STACK)
    if args.log_batch:
        for name in [k for k in runs if k in ("tracked", "no pictures")]:
            runs[f"{name} lb"] = lambda f=runs[name]: f(env={"FFEXP_MLFLOW_CORE": "0"})
    if args.before:
        for name in [k for k in runs if k in ("tracked", "no model")]:
            runs[f"{name} before"] = lambda f=runs[name]: f(env={"PYTHONPATH": args.before})
    load0 = _load()
    times: dict[str, list[tuple[float, float, float | None]]] = {k: [] for k in runs}
    for name in _rotated(list(runs), args.repeats):
        times[name].append(runs[name]())
    wall = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    start = {k: statistics.median(t[2] for t in v) if v[0][2] is not None else None
             for k, v in times.items()}

    print(f"sweep: {n} jobs ({len(acts)} activations x {len(inits)} inits x {len(seeds)} seeds), "
          f"moons, mini-batch, {args.epochs} epochs, joblib n_jobs={args.n_jobs}; "
          f"median of {args.repeats}; {os.cpu_count()} cpus, load average {load0} (start), "
          f"{_load()} (end)")
    print(f"{'':>14} {'wall s':>8} {'cpu s':>8} {'jobs/min':>9} {'start s':>8}")
    for name in runs:
        first = f"{start[name]:>8.2f}" if start[name] is not None else f"{'':>8}"
        print(f"{name:>14} {wall[name]:>8.1f} {cpu[name]:>8.1f} {60 * n / wall[name]:>9.1f} "
              f"{first}")
    for num, den, target in (("untracked", "bare", 3.0), ("tracked", "untracked", 1.5)):
        ratio = wall[num] / wall[den]
        print(f"{num} / {den}: {ratio:.2f} wall (target <= {target:g}: "
              f"{'OK' if ratio <= target else 'OVER'}), {cpu[num] / cpu[den]:.2f} cpu")
    if args.floor:
        print(f"no pictures / untracked: {wall['no pictures'] / wall['untracked']:.2f} wall, "
              f"{cpu['no pictures'] / cpu['untracked']:.2f} cpu (the store's floor); pictures and "
              f"model: {(wall['tracked'] - wall['no pictures']) / n:.3f} s wall, "
              f"{(cpu['tracked'] - cpu['no pictures']) / n:.3f} s cpu a job; the pictures alone "
              f"(no model - no pictures): {(cpu['no model'] - cpu['no pictures']) / n:.3f} s cpu "
              f"a job")
    for name in [k for k in runs if k.endswith(" before")]:
        after = name[:-7]
        print(f"{after}: before -> after: {cpu[name]:.1f} -> {cpu[after]:.1f} cpu s, "
              f"{cpu[name] / cpu['untracked']:.2f} -> {cpu[after] / cpu['untracked']:.2f} cpu / "
              f"untracked; {(cpu[name] - cpu[after]) / n:.3f} cpu s a job less")
    if args.floor and args.before:
        print(f"the pictures alone (no model - no pictures): "
              f"{(cpu['no model before'] - cpu['no pictures']) / n:.3f} -> "
              f"{(cpu['no model'] - cpu['no pictures']) / n:.3f} cpu s a job")
    if args.stack:
        ratio = cpu["untracked stack"] / cpu["bare"]
        print(f"untracked stack / bare: {ratio:.2f} cpu (target <= 1.0: "
              f"{'OK' if ratio <= 1.0 else 'OVER'}), {wall['untracked stack'] / wall['bare']:.2f}"
              f" wall")
        for num, den in (("untracked stack", "untracked"), ("tracked stack", "tracked"),
                         ("tracked stack", "untracked stack"), ("tracked stack", "untracked"),
                         ("stack 1 proc", "bare"), ("stack 1 proc", "untracked stack"),
                         ("stack launch", "bare"), ("one job", "bare")):
            print(f"{num} / {den}: {cpu[num] / cpu[den]:.2f} cpu, "
                  f"{wall[num] / wall[den]:.2f} wall")
        print(f"stack 1 proc after its launch (the members, their training, the sweep's end): "
              f"{cpu['stack 1 proc'] - cpu['stack launch']:.1f} cpu s")
    for name in [k for k in runs if k.endswith(" lb")]:
        after = name[:-3]
        print(f"{after}: log_batch -> Core: {cpu[name]:.1f} -> {cpu[after]:.1f} cpu s "
              f"({cpu[name] / cpu[after]:.2f}x), {cpu[name] / cpu['untracked']:.2f} -> "
              f"{cpu[after] / cpu['untracked']:.2f} cpu / untracked; "
              f"{(cpu[name] - cpu[after]) / n:.3f} cpu s a job")


if __name__ == "__main__":
    main()
