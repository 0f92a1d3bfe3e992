"""Cost of the per-epoch validation metrics against an epoch's training, on the default run.

The default run (moons, 2-16-16-1, mini-batch 32, 200 epochs, ``train.eval_every=1``): an
epoch's training is timed from ``ffexp.train`` (CPU time per epoch, bookkeeping on, one BLAS
thread), the validation step from what the Validation callback calls every epoch
(``split_metrics(job, "val")``: forward pass, cost, the task metrics), and the task metrics
alone by ffexp.job.metrics (numpy) and by scikit-learn (the reference, what they cost before).
Target (issue 15): validation ≤ 0.5 × an epoch's training.

    python benchmarks/metrics.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from hydra import compose, initialize_config_module
from threadpoolctl import threadpool_limits

from ffexp.job.app import prepare, split_metrics
from ffexp.launch.config import to_settings
from ffexp.launch.main import register
from ffexp.job.metrics import evaluate
from ffexp.nn import train


def _cpu_per_call(fn, calls: int) -> float:
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls


def _sklearn_binary(Y, Yhat) -> dict[str, float]:
    """What ffexp.job.metrics computed with scikit-learn before (the default run is binary)."""
    from sklearn import metrics as skm
    y, pred = Y[0].astype(int), (Yhat[0] > 0.5).astype(int)
    return {"accuracy": skm.accuracy_score(y, pred), "f1": skm.f1_score(y, pred, zero_division=0),
            "roc_auc": skm.roc_auc_score(y, Yhat[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    register()   # what the entry point registers in Hydra (schemas, sweepers)
    with initialize_config_module("ffexp.conf", version_base=None):
        settings = to_settings(compose("config", overrides=["tracking.enabled=false"]))
    epoch, val, ours, sk = [], [], [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(args.repeats):
            job = prepare(settings)
            d, s = job.dataset, settings
            t0 = time.process_time()
            train(job.net, d.X_train, d.Y_train, job.loss, optimizer=s.optimizer.name,
                  lr=s.optimizer.lr, batch_size=s.optimizer.batch_size, epochs=s.train.epochs,
                  seed=s.seed)
            epoch.append((time.process_time() - t0) / s.train.epochs)
            Yhat = job.net.forward(d.X_val)
            val.append(_cpu_per_call(lambda: split_metrics(job, "val"), 200))
            ours.append(_cpu_per_call(lambda: evaluate(job.task, d.Y_val, Yhat), 200))
            sk.append(_cpu_per_call(lambda: _sklearn_binary(d.Y_val, Yhat), 50))
    e, v, o, r = (statistics.median(x) * 1e3 for x in (epoch, val, ours, sk))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"validation metrics, default run (moons 2-16-16-1, mini-batch 32), CPU ms, median of "
          f"{args.repeats}; load average {load}")
    print(f"  an epoch's training                       {e:8.3f} ms")
    print(f"  validation step (forward, cost, metrics)  {v:8.3f} ms  = {v / e:.2f} x an epoch "
          f"(target <= 0.5: {'OK' if v / e <= 0.5 else 'OVER'})")
    print(f"    task metrics, ffexp.job.metrics (numpy)     {o:8.3f} ms")
    print(f"    task metrics, scikit-learn (reference)  {r:8.3f} ms  ({r / o:.0f}x)")


if __name__ == "__main__":
    main()
