"""Engine speed: ffexp against scikit-learn's MLPClassifier on the same work, in one process.

Both train the same architecture with plain SGD (scikit-learn: solver="sgd", momentum=0,
alpha=0, no early stopping, tol disabled), same batch size, epochs and learning rate, in an
interleaved loop of repeats; the script prints the median wall-time ratio ffexp / sklearn for
every case, with ffexp's per-epoch bookkeeping (training cost, gradient norms, activation
statistics) on and off. Target (issue 2): ≤ 0.5 with bookkeeping on, ≤ 0.33 with it off.

A last row compares the two through the same scikit-learn API on case (a):
``ffexp.sklearn.FFClassifier(...).fit(X, y)`` against ``MLPClassifier(...).fit(X, y)``, and
prints the adapter's overhead: FFClassifier.fit against ``ffexp.train`` called directly on the
same network and data (the same seed, so the same weights come out; bookkeeping on for both),
as the median over repeats of the paired ratio − 1, in wall time and in this process's CPU time
(steadier when other work shares the cores), and as the share of FFClassifier.fit spent outside
the ffexp.train call it makes (timed within the same fit, so immune to the pairing's noise).
Target (issue 16): < 5 % of fit time.

``--default-run`` alone: the default config's job (``ffexp``: moons, 2-16-16-1 relu, mini-batch
s = 32, 200 epochs, validation every epoch), untracked, trained by the app with
``train.epoch_gradients`` full and mean in turn, BLAS on one thread as in a job: median wall and
CPU seconds of ``execute`` and their ratio full / mean.

    python benchmarks/engine.py [--repeats 5] [--quick] [--blas-threads 1] [--dtype float32] [--api-only] [--default-run]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import ffexp
from ffexp.sklearn import FFClassifier
from ffexp.sklearn import _base as sklearn_base


def _moons():
    X, y = make_moons(n_samples=2000, noise=0.2, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, y, y[None, :].astype(float)


def _digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Y = np.zeros((10, y.size))
    Y[y, np.arange(y.size)] = 1.0
    return X, y, Y


# name: (data, hidden sizes, batch size (None = all), epochs, lr, output, loss)
CASES = {
    "a moons 2-64-64-1 b=32 50ep": (_moons, (64, 64), 32, 50, 0.1, "sigmoid", "bce"),
    "b moons 2-64-64-1 b=1 2ep": (_moons, (64, 64), 1, 2, 0.01, "sigmoid", "bce"),
    "c moons 2-64-64-1 full 500ep": (_moons, (64, 64), None, 500, 0.5, "sigmoid", "bce"),
    "d digits 64-128x3-10 b=64 30ep": (_digits, (128, 128, 128), 64, 30, 0.1, "softmax", "cce"),
}


def run_sklearn(X, y, hidden, batch, epochs, lr):
    clf = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", solver="sgd", momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, batch_size=batch or X.shape[0],
                        max_iter=epochs, learning_rate_init=lr, learning_rate="constant",
                        shuffle=True, tol=0.0, n_iter_no_change=10**9, early_stopping=False,
                        random_state=0)
    t = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - t, clf.n_iter_


def run_ffexp(X, Y, hidden, batch, epochs, lr, output, loss, bookkeeping, dtype="float64",
              gradients="full"):
    net = ffexp.Network([X.shape[1], *hidden, Y.shape[0]], "relu", output, "he", seed=0, dtype=dtype)
    t = time.perf_counter()
    r = ffexp.train(net, X.T, Y, loss, optimizer="batch" if batch is None else "minibatch",
                    lr=lr, batch_size=batch or 1, epochs=epochs, bookkeeping=bookkeeping,
                    epoch_gradients=gradients)
    assert r.epochs == epochs, r.message
    return time.perf_counter() - t


def run_estimator(X, y, hidden, batch, epochs, lr, dtype="float64", inside=None):
    """Wall seconds of FFClassifier.fit; ``inside`` (a list) gets those of the ffexp.train call
    the adapter makes, timed by wrapping the function it calls."""
    clf = FFClassifier(hidden_layer_sizes=hidden, activation="relu", init="he",
                       optimizer="batch" if batch is None else "minibatch", learning_rate=lr,
                       batch_size=batch or 1, epochs=epochs, random_state=0, dtype=dtype)

    def timed_train(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return ffexp.train(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - t0)

    if inside is not None:
        sklearn_base.train = timed_train
    try:
        t = time.perf_counter()
        clf.fit(X, y)
        elapsed = time.perf_counter() - t
    finally:
        sklearn_base.train = ffexp.train
    assert clf.n_iter_ == epochs, clf.outcome_
    return elapsed


def api_row(repeats: int, dtype: str) -> None:
    """FFClassifier vs MLPClassifier, both through fit(X, y), and the adapter's overhead."""
    name = next(iter(CASES))
    data, hidden, batch, epochs, lr, output, loss = CASES[name]
    X, y, Y = data()
    sk, est, direct, wall, cpu, inside = [], [], [], [], [], []

    def timed(times: list, run) -> float:
        """Run; append its wall time to ``times`` and return this process's CPU seconds."""
        t = time.process_time()
        times.append(run())
        return time.process_time() - t

    for i in range(repeats):
        sk.append(run_sklearn(X, y, hidden, batch, epochs, lr)[0])
        pair = [lambda: timed(est, lambda: run_estimator(X, y, hidden, batch, epochs, lr, dtype,
                                                         inside)),
                lambda: timed(direct, lambda: run_ffexp(X, Y, hidden, batch, epochs, lr, output,
                                                        loss, True, dtype))]
        c = [0.0, 0.0]
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):   # alternate which of the pair goes first
            c[k] = pair[k]()
        wall.append(est[-1] / direct[-1] - 1.0)
        cpu.append(c[0] / c[1] - 1.0)
    s, e, d = statistics.median(sk), statistics.median(est), statistics.median(direct)
    print(f"\nscikit-learn API, case {name}")
    outside = statistics.median(1.0 - i / f for i, f in zip(inside, est))
    print(f"{'MLPClassifier.fit s':>20s} {'FFClassifier.fit s':>19s} {'ratio':>6s} "
          f"{'ffexp.train s':>14s} {'overhead wall':>14s} {'overhead CPU':>13s} "
          f"{'fit outside train':>18s}")
    print(f"{s:20.3f} {e:19.3f} {e / s:6.2f} {d:14.3f} {statistics.median(wall):14.1%} "
          f"{statistics.median(cpu):13.1%} {outside:18.2%}")
    print("overhead: FFClassifier.fit / ffexp.train - 1, median of the paired repeats (CPU: this "
          "process's CPU time, steadier on a busy machine); fit outside train: the share of "
          "FFClassifier.fit spent outside its ffexp.train call. Target < 5 %")


def default_run(repeats: int) -> None:
    """The default job with epoch_gradients full and mean, interleaved: wall and CPU medians."""
    from hydra import compose, initialize_config_module
    from threadpoolctl import threadpool_limits

    from ffexp.job.app import execute, prepare
    from ffexp.launch.config import to_settings
    from ffexp.launch.main import register
    register()   # what the entry point registers in Hydra (schemas, sweepers)
    times: dict[str, list] = {"full": [], "mean": []}
    with threadpool_limits(1, user_api="blas"):
        for _ in range(repeats):
            for gradients in times:
                with initialize_config_module("ffexp.conf", version_base=None):
                    cfg = compose("config", overrides=["tracking.enabled=false",
                                                       f"train.epoch_gradients={gradients}"])
                job = prepare(to_settings(cfg))
                t, c = time.perf_counter(), time.process_time()
                execute(job)
                times[gradients].append((time.perf_counter() - t, time.process_time() - c))
    print(f"default run (moons 2-16-16-1, s=32, 200 epochs), median of {repeats}")
    med = {g: [statistics.median(x[i] for x in ts) for i in (0, 1)] for g, ts in times.items()}
    for g, (wall, cpu) in med.items():
        print(f"  epoch_gradients={g:4s} {wall:7.3f} s wall {cpu:7.3f} s CPU")
    print(f"  full / mean: {med['full'][0] / med['mean'][0]:.2f} wall, "
          f"{med['full'][1] / med['mean'][1]:.2f} CPU; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS to this many threads for both sides (ffexp's app uses 1); "
                         "default: the library's default")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                    help="ffexp's dtype (scikit-learn is given float64 data either way)")
    ap.add_argument("--default-run", action="store_true",
                    help="only the default job, epoch_gradients full against mean")
    ap.add_argument("--api-only", action="store_true",
                    help="only the scikit-learn API row (FFClassifier, MLPClassifier, overhead)")
    args = ap.parse_args()
    if args.blas_threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.blas_threads, user_api="blas")
    repeats = 1 if args.quick else args.repeats
    warnings.simplefilter("ignore", ConvergenceWarning)
    threads = args.blas_threads or "library default"
    print(f"ffexp {ffexp.__version__}, numpy {np.__version__}, ffexp dtype {args.dtype}, BLAS threads "
          f"{threads}; median of {repeats} interleaved repeats; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.api_only:
        api_row(repeats, args.dtype)
        return
    if args.default_run:
        default_run(repeats)
        return
    print(f"{'case':34s} {'sklearn s':>10s} {'ffexp s':>9s} {'ratio':>6s} {'mean s':>7s} "
          f"{'ratio':>6s} {'full/mean':>9s} {'ffexp-off s':>12s} {'ratio':>6s}")
    for name, (data, hidden, batch, epochs, lr, output, loss) in CASES.items():
        X, y, Y = data()
        sk, on, mean, off = [], [], [], []
        for _ in range(repeats):
            sk.append(run_sklearn(X, y, hidden, batch, epochs, lr)[0])
            on.append(run_ffexp(X, Y, hidden, batch, epochs, lr, output, loss, True, args.dtype))
            mean.append(run_ffexp(X, Y, hidden, batch, epochs, lr, output, loss, True, args.dtype,
                                  "mean"))
            off.append(run_ffexp(X, Y, hidden, batch, epochs, lr, output, loss, False, args.dtype))
        s, a, c, b = (statistics.median(t) for t in (sk, on, mean, off))
        print(f"{name:34s} {s:10.3f} {a:9.3f} {a / s:6.2f} {c:7.3f} {c / s:6.2f} {a / c:9.2f} "
              f"{b:12.3f} {b / s:6.2f}")
    print("targets: ratio <= 0.50 with bookkeeping on, <= 0.33 off; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    api_row(repeats, args.dtype)


if __name__ == "__main__":
    main()
