"""The cost of the engine's bookkeeping: peak RSS and epoch time with it on against off.

Bookkeeping is what ``ffexp.train`` measures every epoch besides training: the training cost,
the per-layer gradient norms and the activation statistics, from a pass over the whole
training set at the epoch's end (issue 15). The network is 2-64-64-1 (ReLU, He, sigmoid
output, binary cross-entropy), mini-batch gradient descent with s = 128, on make_moons data
of m = 1e5 and 1e6 examples, one BLAS thread.

Every measurement is a fresh subprocess (so that its peak RSS, ``ru_maxrss``, is its own);
on and off alternate, ``--repeats`` times per size. The epoch time is the median over the
run's training epochs of the time between two records (updates and bookkeeping; step 0, the
record before any update, is not an epoch), as wall time and as the process's CPU time (less
sensitive to other processes on a busy machine). Printed: the medians and the ratios on / off.
Targets (issue 15): at m = 1e6 peak RSS on / off ≤ 1.5 and epoch time on / off ≤ 1.3. The
load averages at the start and the end are printed with the result; where the bookkeeping's
time goes, and its floor, is in docs/benchmarks.md.

    python benchmarks/bookkeeping.py [--repeats 3] [--epochs 3] [--sizes 100000 1000000]
    python benchmarks/bookkeeping.py --gradients full    # the full-gradient bookkeeping
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def child(m: int, bookkeeping: bool, epochs: int, gradients: str) -> dict:
    """One training in this process: its median epoch times and the process's peak RSS."""
    import resource
    import time

    import numpy as np
    from sklearn.datasets import make_moons
    from threadpoolctl import threadpool_limits

    from ffexp.nn import Callback, Network, train

    class Clock(Callback):
        """(wall, CPU) seconds at every record; epoch e's time is its record's minus the last."""

        def __init__(self):
            self.marks: dict[int, tuple[float, float]] = {}

        def on_train_begin(self, net, info):
            self.marks[0] = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, net, stats):
            self.marks[stats.epoch] = (time.perf_counter(), time.process_time())

    X, y = make_moons(n_samples=m, noise=0.2, random_state=0)
    X = np.ascontiguousarray(((X - X.mean(axis=0)) / X.std(axis=0)).T)
    Y = y[None, :].astype(float)
    del y
    net = Network([2, 64, 64, 1], "relu", "sigmoid", "he", seed=0)
    clock = Clock()
    with threadpool_limits(limits=1, user_api="blas"):
        train(net, X, Y, "bce", optimizer="minibatch", lr=0.05, batch_size=128, epochs=epochs,
              bookkeeping=bookkeeping, epoch_gradients=gradients, callbacks=[clock])
    t = clock.marks
    return {"epoch_s": statistics.median(t[e][0] - t[e - 1][0] for e in range(1, epochs + 1)),
            "epoch_cpu_s": statistics.median(t[e][1] - t[e - 1][1] for e in range(1, epochs + 1)),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def load() -> str:
    """The 1, 5 and 15 minute load averages: another process on the cores skews the ratios."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(m: int, bookkeeping: bool, epochs: int, gradients: str) -> dict:
    args = [sys.executable, __file__, "--child", str(m), str(int(bookkeeping)), str(epochs),
            gradients]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--gradients", default="mean", choices=["mean", "full"],
                    help="train's epoch_gradients with bookkeeping on")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        m, on, epochs, gradients = args.child
        print(json.dumps(child(int(m), bool(int(on)), int(epochs), gradients)))
        return
    print(f"2-64-64-1 relu/he, minibatch s=128, {args.epochs} epochs, epoch_gradients="
          f"{args.gradients}, 1 BLAS thread; median of {args.repeats} alternating runs; "
          f"load average {load()}")
    print(f"{'m':>9s} {'RSS off MB':>11s} {'RSS on MB':>10s} {'ratio':>6s} "
          f"{'epoch off s':>12s} {'epoch on s':>11s} {'ratio':>6s} "
          f"{'CPU off s':>10s} {'CPU on s':>9s} {'ratio':>6s}")
    for m in args.sizes:
        runs: dict[bool, list[dict]] = {False: [], True: []}
        for _ in range(args.repeats):
            for on in (False, True):
                runs[on].append(measure(m, on, args.epochs, args.gradients))
        med = {on: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
               for on, rs in runs.items()}
        off, on = med[False], med[True]
        print(f"{m:9d} {off['rss_mb']:11.0f} {on['rss_mb']:10.0f} "
              f"{on['rss_mb'] / off['rss_mb']:6.2f} {off['epoch_s']:12.3f} "
              f"{on['epoch_s']:11.3f} {on['epoch_s'] / off['epoch_s']:6.2f} "
              f"{off['epoch_cpu_s']:10.3f} {on['epoch_cpu_s']:9.3f} "
              f"{on['epoch_cpu_s'] / off['epoch_cpu_s']:6.2f}", flush=True)
    print(f"targets at m = 1e6: RSS ratio <= 1.5, epoch-time ratio <= 1.3; load average {load()}")


if __name__ == "__main__":
    main()
