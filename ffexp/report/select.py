"""Which runs a report is about, read from an MLflow store.

The selection ends as a pandas frame from ``mlflow.search_runs`` (one row per job run, the sweep's
parent run left out; final metric values, params and tags come with it in one query) plus, on
demand, the per-epoch histories of a few metrics. Histories are the expensive part: MLflow's
client has one call for them, ``get_metric_history(run_id, key)``, issued from a thread pool
when the store is a server (the calls wait on the network); on SQLite threads only contend for
the GIL and the file, so one does. The SQL store's private ``get_metric_history_bulk`` (one
query per metric for all runs) measured no faster on SQLite — building the Metric entities
dominates — so the report keeps to the public client (see benchmarks/report.py).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .render import code

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_HTTP_FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


#: how a sweep's parent run is recognised (the contract says ffexp.command; the tracking code
#: writes ffexp.command_line and ffexp.kind = sweep): any one of these filters
PARENT_FILTERS = ("tags.`ffexp.kind` = 'sweep'", "tags.`ffexp.command` LIKE '%'",
                  "tags.`ffexp.command_line` LIKE '%'")
COMMAND_TAGS = ("ffexp.command", "ffexp.command_line")


def sweep_command(tags: dict) -> str | None:
    """The sweep's command line from its parent run's tags."""
    return next((tags[t] for t in COMMAND_TAGS if tags.get(t)), None)


class ReportError(Exception):
    """A user's mistake or an unusable store: printed as one line, no traceback."""


@dataclass
class Selection:
    """The job runs of a report and how they were chosen."""

    runs: pd.DataFrame  # mlflow.search_runs rows, sorted by run_id
    experiments: dict[str, str]  # experiment id -> name
    criteria: list[str]  # human-readable, one line each, with the sweep's parent run id
    parent: dict | None = None  # {"run_id", "run_name", "tags", "start_time", "end_time"}
    args: list[str] = field(default_factory=list)  # CLI options that reselect exactly these runs
    #: the criteria in words that stay the same when the sweep is rerun (no id, no date)
    stable: list[str] = field(default_factory=list)


def resolve_uri(uri: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else ffexp's default embedded store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def connect(uri: str):
    """An MlflowClient on ``uri`` that has answered one request, or ReportError.

    A report never creates a store: a SQLite path that does not exist is an error. HTTP stores
    fail fast (no retries, a short timeout) instead of MLflow's minutes of back-off.
    """
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.is_file():
            raise ReportError(f"no MLflow store at {uri} (file {path} not found); "
                              "pass --tracking-uri or set MLFLOW_TRACKING_URI")
        from ffexp.tracking.preflight import damaged
        reason = damaged(path)
        if reason:
            raise ReportError(f"cannot read the tracking store {uri}: the file {path} is "
                              f"damaged ({reason})")
    if uri.startswith(("http://", "https://")):
        for key, value in _HTTP_FAIL_FAST.items():
            os.environ.setdefault(key, value)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means the store is unusable
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReportError(f"cannot read the tracking store {uri}: {reason[:200]}") from None
    return client


def _search(experiment_ids: list[str], filter_string: str) -> pd.DataFrame:
    import mlflow

    try:
        df = mlflow.search_runs(experiment_ids=experiment_ids, filter_string=filter_string,
                                max_results=100_000, output_format="pandas")
    except Exception as exc:  # noqa: BLE001 - bad filter syntax comes back as MlflowException
        message = getattr(exc, "message", None) or str(exc)
        raise ReportError(f"invalid --filter {filter_string!r}: "
                          f"{message.strip().splitlines()[0][:200]}") from None
    return df


def _and(*clauses: str | None) -> str:
    return " and ".join(c for c in clauses if c)


def _all_experiments(client) -> dict[str, str]:
    return {e.experiment_id: e.name for e in client.search_experiments(max_results=50_000)}


def _parent_info(run) -> dict:
    return {"run_id": run.info.run_id, "run_name": run.info.run_name,
            "experiment_id": run.info.experiment_id, "tags": dict(run.data.tags),
            "start_time": run.info.start_time, "end_time": run.info.end_time}


def _find_parent(client, experiments: dict[str, str], sweep: str):
    """The parent run named by a run id or by an ``ffexp.sweep_id`` tag, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(sweep)
    except MlflowException:
        pass
    for parent_filter in PARENT_FILTERS:
        hits = _search(list(experiments), _and(f"tags.`ffexp.sweep_id` = '{sweep}'",
                                               parent_filter))
        if len(hits):
            return client.get_run(sorted(hits["run_id"])[0])
    children = _search(list(experiments), f"tags.`ffexp.sweep_id` = '{sweep}'")
    parents = sorted(set(children.get("tags.mlflow.parentRunId", pd.Series(dtype=str)).dropna()))
    return client.get_run(parents[0]) if parents else None


def _latest_sweep(client, experiment_ids: list[str]):
    """The parent run started last (ties: the larger run id)."""
    import mlflow

    found = []
    for parent_filter in PARENT_FILTERS:
        df = mlflow.search_runs(experiment_ids=experiment_ids, filter_string=parent_filter,
                                order_by=["attributes.start_time DESC"], max_results=1)
        found += [(df["start_time"].iloc[0], df["run_id"].iloc[0])] if len(df) else []
    return client.get_run(max(found)[1]) if found else None


def _skipped_ids(client, parent) -> list[str]:
    """The runs a resumed sweep skipped (``tracking.skip_existing``: finished by an earlier
    sweep, so they stay that sweep's children): they are part of this sweep's grid. The parent
    lists them in ``ffexp.skipped_run_ids``, and in full in an artifact when the tag is clipped."""
    tag = parent.data.tags.get("ffexp.skipped_run_ids", "")
    if tag.endswith("…"):
        path = client.download_artifacts(parent.info.run_id, "sweep/skipped_run_ids.txt")
        return sorted(Path(path).read_text().split())
    return sorted(i for i in tag.split(",") if i)


def select_runs(client, experiment: str | None = None, sweep: str | None = None,
                filter_string: str | None = None) -> Selection:
    """The job runs chosen by experiment name, sweep (parent run id or sweep id) and filter.

    With none of the three: the most recent sweep (the parent run started last).
    A sweep's parent run, and any run that is the parent of another, is not a job and is left
    out of the rows.
    """
    experiments = _all_experiments(client)
    criteria, args, stable = [], [], []
    if experiment is not None:
        ids = sorted(i for i, n in experiments.items() if n == experiment)
        if not ids:
            names = ", ".join(sorted(experiments.values())) or "none"
            raise ReportError(f"unknown experiment {experiment!r} (experiments: {names})")
        experiments = {i: experiments[i] for i in ids}
        criteria.append(f"experiment = {experiment}")
        stable.append(f"experiment {code(experiment)}")
        args += ["--experiment", experiment]
    parent = None
    if sweep is not None or (experiment is None and filter_string is None):
        parent = (_find_parent(client, experiments, sweep) if sweep is not None
                  else _latest_sweep(client, list(experiments)))
        if parent is None:
            raise ReportError(f"no sweep with parent run id or sweep id {sweep!r}" if sweep
                              else "no sweep in the store (no sweep parent run); "
                                   "select runs with --experiment, --sweep or --filter")
        experiments = {parent.info.experiment_id: _all_experiments(client).get(
            parent.info.experiment_id, parent.info.experiment_id)}
        criteria.append(f"sweep = parent run {parent.info.run_id} ({parent.info.run_name})")
        stable.append("one sweep, chosen by its id (`--sweep`)" if sweep is not None
                      else "the most recent sweep in the store")
        args += ["--sweep", parent.info.run_id]
    if filter_string:
        criteria.append(f"filter = {filter_string}")
        stable.append(f"filter: {code(filter_string)}")
        args += ["--filter", filter_string]
    clause = f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'" if parent else None
    df = _search(sorted(experiments), _and(clause, filter_string))
    skipped = _skipped_ids(client, parent) if parent else []
    if skipped:   # MLflow's search has no OR: the skipped runs are a second search
        ids = ", ".join(f"'{i}'" for i in skipped)
        more = _search(sorted(experiments), _and(f"attributes.run_id IN ({ids})", filter_string))
        df = pd.concat([df, more[~more["run_id"].isin(set(df["run_id"]))]], ignore_index=True) \
            if len(df) else more
        criteria.append(f"with the {len(skipped)} run(s) the sweep skipped as finished before")
        stable.append("with the runs it skipped as finished before (`tracking.skip_existing`)")
    if len(df) and "tags.mlflow.parentRunId" in df:
        df = df[~df["run_id"].isin(set(df["tags.mlflow.parentRunId"].dropna()))]
    if not len(df):
        raise ReportError("the selection has no runs (" + "; ".join(criteria) + ")")
    df = df.sort_values("run_id", kind="stable").reset_index(drop=True)
    used = {i: experiments[i] for i in sorted(set(df["experiment_id"])) if i in experiments}
    return Selection(df, used, criteria, _parent_info(parent) if parent else None, args, stable)


def fetch_histories(client, run_ids: list[str], keys: list[str],
                    workers: int = 1) -> pd.DataFrame:
    """Per-epoch values of ``keys`` for ``run_ids``: columns run_id, key, step, value.

    Sorted by (run_id, key, step); where a step was logged twice the last value wins.
    """
    rows: list[tuple[str, str, int, float, int]] = []
    pairs = [(r, k) for r in run_ids for k in keys]

    def one(pair):
        return [(pair[0], pair[1], m.step, m.value, m.timestamp)
                for m in client.get_metric_history(*pair)]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for part in pool.map(one, pairs):
            rows += part
    df = pd.DataFrame(rows, columns=["run_id", "key", "step", "value", "timestamp"])
    df = df.sort_values(["run_id", "key", "step", "timestamp"], kind="stable")
    df = df.drop_duplicates(["run_id", "key", "step"], keep="last")
    return df.drop(columns="timestamp").reset_index(drop=True)
