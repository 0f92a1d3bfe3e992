"""Metric values per second of CPU that a SQLite store takes: ffexp's Core path against
MLflow's ``log_batch``.

The values of a sweep's short runs, written as ffexp writes them at a run's end: ``--runs``
runs of ``--epochs`` epochs × 28 values (steps 0..epochs, one timestamp per epoch), each run's
values in one call of ffexp.tracking.buffer.store_rows: with SQLAlchemy Core into MLflow's
``metrics`` and ``latest_metrics`` tables (ffexp._compat.mlflow_metrics; one transaction per
run), or, with the Core path switched off, MLflow's ``log_batch`` in requests of 1,000 values.
Each way writes into its own fresh store (ffexp.tracking.store.open_store), in this process
(engine and store already made), interleaved, ``--repeats`` times; CPU time of the process
(``time.process_time``), medians. Then both stores are read back through MlflowClient and
compared (every history, every latest value).

    python benchmarks/store_writes.py [--runs 20] [--epochs 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

from ffexp._compat import mlflow_metrics
from ffexp.tracking import store
from ffexp.tracking.buffer import store_rows

VALUES_PER_EPOCH = 28


def rows_of_run(run: int, epochs: int) -> list[tuple]:
    """(key, value, timestamp ms, step): 28 keys an epoch, like a 2-16-16-1 run's."""
    ts = 1_700_000_000_000 + run * 10_000
    return [(f"m{k:02d}", 1.0 / (1 + step + k + run), ts + step, step)
            for step in range(epochs + 1) for k in range(VALUES_PER_EPOCH)]


def write(uri: str, core: bool, runs: int, epochs: int, name: str) -> tuple[float, list[str]]:
    """(CPU seconds to store the runs' values, run ids) in the store at ``uri``."""
    client, exp = store.open_store(uri, name)
    choice = mlflow_metrics.choose(client, uri)
    assert (choice.writer is not None) == core, choice.line
    ids = [client.create_run(exp).info.run_id for _ in range(runs)]
    batches = [rows_of_run(r, epochs) for r in range(runs)]
    t0 = time.process_time()
    for run_id, rows in zip(ids, batches):
        store_rows(client, uri, run_id, rows)
    return time.process_time() - t0, ids


def read_back(uri: str, ids: list[str]) -> list:
    client = MlflowClient(uri)
    out = []
    for run_id in ids:
        run = client.get_run(run_id)
        out.append((sorted(run.data.metrics.items()),
                    [[(m.key, m.value, m.timestamp, m.step)
                      for m in client.get_metric_history(run_id, key)]
                     for key in sorted(run.data.metrics)]))
    return out


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.runs * (args.epochs + 1) * VALUES_PER_EPOCH
    load0 = _load()
    cpu: dict[str, list[float]] = {"core": [], "log_batch": []}
    with tempfile.TemporaryDirectory(prefix="ffexp-bench-store-") as tmp:
        last: dict[str, tuple[str, list[str]]] = {}
        for r in range(args.repeats):
            for way in (("core", "log_batch") if r % 2 == 0 else ("log_batch", "core")):
                uri = f"sqlite:///{Path(tmp) / f'{way}-{r}.db'}"
                if way == "log_batch":
                    os.environ[mlflow_metrics.ENV_SWITCH] = "0"
                try:
                    seconds, ids = write(uri, way == "core", args.runs, args.epochs, "bench")
                finally:
                    os.environ.pop(mlflow_metrics.ENV_SWITCH, None)
                cpu[way].append(seconds)
                last[way] = (uri, ids)
        same = read_back(*last["core"]) == read_back(*last["log_batch"])
    med = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"store writes: {args.runs} runs x {args.epochs + 1} steps x {VALUES_PER_EPOCH} values "
          f"= {n} values a way, one call a run, SQLite; median of {args.repeats}; "
          f"{os.cpu_count()} cpus, load average {load0} (start), {_load()} (end)")
    print(f"{'':>10} {'cpu s':>7} {'values/s':>9} {'µs/value':>9}")
    for way in ("log_batch", "core"):
        print(f"{way:>10} {med[way]:>7.2f} {n / med[way]:>9.0f} {1e6 * med[way] / n:>9.1f}")
    print(f"log_batch / core: {med['log_batch'] / med['core']:.2f} cpu; read back through "
          f"MlflowClient: {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
