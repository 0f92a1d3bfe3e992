"""One run's metric values written both ways (ffexp's Core path, MLflow's log_batch) and
everything MLflow's client reads back, for comparing the two."""

from __future__ import annotations

import math
import random

import sqlalchemy
from mlflow import MlflowClient
from mlflow.entities import Metric

NAN, INF = float("nan"), float("inf")

#: the cases by name, each a batch of rows (key, value, timestamp ms, step)
CASES = [
    # equal steps, different timestamps: the later timestamp is the latest, whatever its value
    [("same_step", 3.0, 200, 5), ("same_step", 9.0, 100, 5)],
    # steps out of order: step 7 stays the latest against later timestamps of earlier steps
    [("out_of_order", 1.0, 10, 7), ("out_of_order", 2.0, 20, 2), ("out_of_order", 3.0, 30, 0)],
    # NaN, +inf and -inf, as values and as the latest
    [("nan", 1.0, 1, 1), ("nan", NAN, 2, 2), ("inf", INF, 1, 1), ("neg_inf", -INF, 1, 1),
     ("inf_then_nan", INF, 5, 3), ("inf_then_nan", NAN, 5, 3)],
    # equal step and timestamp: the greater value wins; NaN is stored as 0 and ties with 0.0
    [("tie", 1.0, 7, 7), ("tie", 4.0, 7, 7), ("tie", 2.0, 7, 7),
     ("nan_tie", NAN, 3, 3), ("nan_tie", 0.0, 3, 3), ("zero_tie", 0.0, 3, 3),
     ("zero_tie", NAN, 3, 3), ("signed_zero", -0.0, 1, 1), ("signed_zero", 0.0, 1, 1)],
    # duplicates within a batch and of what an earlier batch stored (skipped, not an error)
    [("same_step", 3.0, 200, 5), ("dup", 1.5, 1, 1), ("dup", 1.5, 1, 1), ("nan", NAN, 2, 2)],
    # a later batch below the stored latest changes nothing; above it, replaces it
    [("out_of_order", 5.0, 99, 6), ("same_step", -1.0, 300, 5), ("nan", -INF, 2, 2)],
]


def random_batches(seed: int, batches: int = 12) -> list[list[tuple]]:
    """Batches of rows over a few keys, small steps and timestamps (many ties and repeats),
    values among the special ones and random floats."""
    rng = random.Random(seed)
    special = [NAN, INF, -INF, 0.0, -0.0, 1.0, 1.7976931348623157e308, 5e-324]
    out = []
    for _ in range(batches):
        out.append([(rng.choice(["train/cost", "val/cost", "grad_norm/W1", "x"]),
                     rng.choice(special) if rng.random() < 0.3 else rng.uniform(-3, 3),
                     rng.randrange(0, 6), rng.randrange(0, 8))
                    for _ in range(rng.randrange(1, 120))])
    return out


def log_batch(client: MlflowClient, run_id: str, rows: list[tuple]) -> None:
    """MLflow's public path, in requests of at most 1,000 values."""
    metrics = [Metric(*row) for row in rows]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def _value(v) -> str:
    return repr(float(v)) if v is not None else "None"


def read_back(client: MlflowClient, run_id: str) -> dict:
    """Everything MlflowClient reads back of a run's metrics: the latest values (get_run and
    search_runs), every key's history (get_metric_history, in its order), exact to the bit."""
    run = client.get_run(run_id)
    found = client.search_runs([run.info.experiment_id], f"attributes.run_id = '{run_id}'")
    histories = {key: [(m.key, _value(m.value), m.timestamp, m.step, m.model_id)
                       for m in client.get_metric_history(run_id, key)]
                 for key in run.data.metrics}
    return {"latest": {k: _value(v) for k, v in run.data.metrics.items()},
            "searched": {k: _value(v) for k, v in found[0].data.metrics.items()},
            "histories": histories}


def table_rows(uri: str, run_id: str) -> dict:
    """The run's rows of ``metrics`` and ``latest_metrics`` as stored (run id left out)."""
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as conn:
            return {table: sorted((r[0], _value(r[1]), r[2], r[3], bool(r[4])) for r in conn.execute(
                        sqlalchemy.text(f"SELECT key, value, timestamp, step, is_nan FROM {table} "
                                        "WHERE run_uuid = :run"), {"run": run_id}))
                    for table in ("metrics", "latest_metrics")}
    finally:
        engine.dispose()


def new_run(client: MlflowClient, name: str = "e") -> str:
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else client.create_experiment(name)
    return client.create_run(exp_id).info.run_id


def unsigned_zero(latest: dict) -> dict:
    """``latest`` with -0.0 read as 0.0 (SQLite stores -0.0 as 0.0, PostgreSQL keeps it)."""
    return {k: "0.0" if v == "-0.0" else v for k, v in latest.items()}


def expected_latest(batches: list[list[tuple]]) -> dict:
    """The latest value per key by MLflow's documented rule, worked out here independently:
    the greatest (step, timestamp, stored value), the first of equals (NaN stored as 0); -0.0
    as 0.0 (``unsigned_zero``)."""
    best: dict = {}
    for rows in batches:
        for key, value, timestamp, step in rows:
            stored = 0.0 if math.isnan(value) else max(min(value, 1.7976931348623157e308),
                                                       -1.7976931348623157e308)
            if key not in best or (step, timestamp, stored) > best[key][0]:
                best[key] = ((step, timestamp, stored), value)
    return unsigned_zero({k: _value(1.7976931348623157e308 if v == INF else
                                    -1.7976931348623157e308 if v == -INF else v)
                          for k, (_, v) in best.items()})
