"""Stacked training against separate ``ffexp.train`` calls: CPU per network, in one process.

The networks are benchmarks/sweep.py's (moons, 400 samples, 2-16-16-1, sigmoid output, bce,
mini-batch 32, lr 0.1, 50 epochs, one BLAS thread):

- ``seeds K``: one configuration (relu, he) with seeds 0..K-1, K = 5, 20, 100: a sweep's seeds;
- ``sweep grid``: the sweep's 100 networks, 5 activations × 4 inits × 5 seeds, in one stack
  (five activation groups).

For each row: the CPU seconds (this process, ``time.process_time``) per network of K separate
``ffexp.train`` calls and of one ``ffexp.train_stacked`` call, and their ratio (separate /
stacked: how many times cheaper the stack is); the median of ``--repeats`` interleaved runs
(the order alternates). Every row also checks what the stack promises: each network's final
parameters equal its separate run's (max |ΔW| printed; 0 is the contract).

``jobs``: the sweep's 100 jobs as an untracked worker would run them, their Settings composed
by Hydra beforehand (20 compositions, one per activation and init, the seed replaced; not
timed), then timed: ``ffexp.job.app.prepare`` of each (data, checks, network) and
``ffexp.job.stacked.execute_stacked`` of the 100 (the validation callback every epoch and the
final train/val/test metrics included), against ``execute`` of each prepared job.

The last lines are issue 27's target, "untracked sweep with stacking ≤ 1.0× the bare loop of
100 separate ffexp.train calls", for the parts measured here against the bare loop
(benchmarks/sweep.py --bare's 100 calls): the stacked training alone, and the jobs' part in a
worker (prepare + execute_stacked). The command's sweep adds what is not measured here: the
processes, Hydra's per-job composition and output directories, the status files.

    python benchmarks/stack.py [--repeats 3] [--epochs 50]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
import warnings

import numpy as np

import ffexp
from ffexp.job.data import load_dataset

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "linear")
INITS = ("random", "xavier", "he", "zeros")
SLOPE = {"leaky_relu": 0.01, "linear": 1.0}


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def configs(row: str, K: int) -> list[tuple[str, str, int]]:
    """(activation, init, seed) of each network of a row."""
    if row == "sweep grid":
        return list(itertools.product(ACTIVATIONS, INITS, range(K // 20)))
    return [("relu", "he", seed) for seed in range(K)]


def networks(cfgs) -> list[ffexp.Network]:
    return [ffexp.Network([2, 16, 16, 1], act, "sigmoid", init, seed, slope=SLOPE.get(act))
            for act, init, seed in cfgs]


def separate(cfgs, X, Y, epochs: int) -> tuple[float, list]:
    nets = networks(cfgs)
    t = time.process_time()
    for net, (_, _, seed) in zip(nets, cfgs):
        ffexp.train(net, X, Y, "bce", optimizer="minibatch", lr=0.1, batch_size=32,
                    epochs=epochs, seed=seed)
    return time.process_time() - t, nets


def stacked(cfgs, X, Y, epochs: int) -> tuple[float, list]:
    nets = networks(cfgs)
    t = time.process_time()
    ffexp.train_stacked(nets, X, Y, "bce", optimizer="minibatch", lr=0.1, batch_size=32,
                        epochs=epochs, seeds=[seed for _, _, seed in cfgs])
    return time.process_time() - t, nets


def max_dW(a: list, b: list) -> float:
    return max(float(np.max(np.abs(p - q)))
               for n1, n2 in zip(a, b) for p, q in zip(n1.get_params(), n2.get_params()))


def job_settings(epochs: int) -> list:
    """The Settings of the sweep's 100 jobs (tracking off), in the grid's order."""
    from dataclasses import replace

    from hydra import compose, initialize_config_module

    from ffexp.launch.config import to_settings
    from ffexp.launch.main import register
    register()   # the schemas and hydra/sweeper=ffexp, which conf/config.yaml's defaults name
    out = []
    with initialize_config_module("ffexp.conf", version_base=None):
        for act, init in itertools.product(ACTIVATIONS, INITS):
            base = to_settings(compose("config", [f"activation={act}", f"init={init}",
                                                  "optimizer=minibatch",
                                                  f"train.epochs={epochs}",
                                                  "tracking.enabled=false"]))
            out += [replace(base, seed=seed) for seed in range(5)]
    return out


def jobs_row(settings: list, repeats: int) -> tuple[float, float, float]:
    """CPU seconds (medians): prepare of every job, execute of each, execute_stacked of all."""
    from ffexp.job.app import execute, prepare
    from ffexp.job.stacked import execute_stacked
    prep, sep, st = [], [], []
    for r in range(repeats):
        t = time.process_time()
        jobs = [prepare(s) for s in settings]
        prep.append(time.process_time() - t)
        with ffexp.job.blas.limit(1):
            t = time.process_time()
            alone = [execute(job) for job in jobs]
            sep.append(time.process_time() - t)
            jobs = [prepare(s) for s in settings]
            t = time.process_time()
            together = execute_stacked(jobs)
            st.append(time.process_time() - t)
        assert all(a.metrics == b.metrics for a, b in zip(alone, together))
    return statistics.median(prep), statistics.median(sep), statistics.median(st)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=50)
    args = ap.parse_args()
    d = load_dataset("moons", seed=0, params={"n_samples": 400, "noise": 0.2})
    X, Y = d.X_train, d.Y_train
    warnings.simplefilter("ignore", RuntimeWarning)   # linear/zeros networks may overflow
    rows = [("seeds", 5), ("seeds", 20), ("seeds", 100), ("sweep grid", 100)]
    print(f"numpy {np.__version__}; m = {X.shape[1]}, {args.epochs} epochs, one BLAS thread; "
          f"load average before: {_load()}")
    print(f"{'row':16} {'K':>4} {'separate ms/net':>16} {'stacked ms/net':>15} "
          f"{'separate/stacked':>17} {'max |dW|':>9}")
    results = {}
    for row, K in rows:
        cfgs = configs(row, K)
        sep, st, dW = [], [], 0.0
        for r in range(args.repeats):
            order = (separate, stacked) if r % 2 == 0 else (stacked, separate)
            out = {f.__name__: f(cfgs, X, Y, args.epochs) for f in order}
            sep.append(out["separate"][0])
            st.append(out["stacked"][0])
            dW = max(dW, max_dW(out["separate"][1], out["stacked"][1]))
        s, t = statistics.median(sep), statistics.median(st)
        results[row, K] = (s, t)
        name = f"{row} {K}" if row == "seeds" else row
        print(f"{name:16} {K:>4} {s / K * 1e3:>16.2f} {t / K * 1e3:>15.2f} {s / t:>17.2f} "
              f"{dW:>9.1g}")
    prep, sep, st = jobs_row(job_settings(args.epochs), args.repeats)
    print(f"{'jobs':16} {100:>4} {(prep + sep) / 100 * 1e3:>16.2f} "
          f"{(prep + st) / 100 * 1e3:>15.2f} {(prep + sep) / (prep + st):>17.2f}   (prepare {prep / 100 * 1e3:.2f} ms/job in "
          f"both; metrics equal)")
    bare, t = results["sweep grid", 100]
    for what, cost in (("training alone (train_stacked)", t),
                       ("the jobs in a worker (prepare + execute_stacked)", prep + st)):
        print(f"target (issue 27): untracked sweep with stacking <= 1.0x the bare loop of 100 "
              f"separate ffexp.train calls; {what}: {cost:.2f} s / bare {bare:.2f} s = "
              f"{cost / bare:.2f}x ({'met' if cost <= bare else 'NOT met'})")
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
