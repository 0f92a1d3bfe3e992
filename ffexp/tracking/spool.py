"""Train through an outage: a job whose tracking store stays unreachable keeps training and
keeps its complete record in its output folder, for ``ffexp-sync`` (ffexp.tracking.sync) to
upload once the store is back.

Every job records through a ``SpoolingClient``: MLflow's client (ffexp's RetryingClient, which
rides out an outage of up to the retry window, ffexp.tracking.retry) plus a journal in memory
of what the job wrote to its run (the creation's tags and start time, params, tags, the
dataset input, and every metric value with its step and timestamp: the metrics buffer notes
them, ffexp.tracking.buffer). When a call still fails at the end of the window because the
store is away (``outage``: a server that does not answer or answers 5xx, a database that went
away, a lock held too long, or a server ffexp already knows is down), the client switches to
spooling, at run creation or mid-run alike: from then on nothing more is sent to the store,
the job trains on, and its record goes to ``<job dir>/mlflow_spool/``:

- ``run.json``: the store's URI, experiment, the run's id if it was created before the outage
  (else null), its key ``ffexp.run_key``, name, start and end time, status, the creation's tags
  (with ``mlflow.parentRunId`` in a sweep), params, tags, the dataset input, the sweep's folder
  and parent; ``"complete": true`` once the run was closed (FINISHED, FAILED or KILLED);
- ``metrics.jsonl``: every metric value the job logged, one ``[key, value, timestamp ms, step,
  model]`` a line (``model``: the LoggedModel a final value is linked to, ``SPOOLED_MODEL``
  until the sync logs the model);
- ``artifacts/``: the files the run would have got, as it would have got them (history.csv,
  config/, hydra/, plots/, images/, error/traceback.txt, ...);
- ``model/``: ``network.npz``, ``scaling.npz`` and ``model.json`` (feature and output names,
  step, the LoggedModel's name and params): what logging the same LoggedModel later takes.

A job that spools says so in one line (its log, its job line or a single run's warning: the
folder and the command that uploads it) and its status file says ``spooled``. Calls on other
runs (the stale check of a resumed job) are not journaled.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path

log = logging.getLogger("ffexp")

SPOOL_DIR = "mlflow_spool"
RUN_FILE = "run.json"
#: ``run.json`` renamed once ffexp-sync uploaded the record
SYNCED_FILE = "synced.json"
METRICS_FILE = "metrics.jsonl"
ARTIFACTS_DIR = "artifacts"
MODEL_DIR = "model"
FORMAT = 1
#: the LoggedModel id a spooled run's final metrics are linked to until the sync logs it
SPOOLED_MODEL = "ffexp-spooled-model"
#: the run id a job records under when its run could not be created
NO_RUN = "spooled-run"
#: the command that uploads spooled records
SYNC_COMMAND = "ffexp-sync"


def outage(err: BaseException, remote: bool) -> str | None:
    """Why ``err`` says the store is away (after ffexp's retries gave up), else None: a lock,
    a database or server that did not come back within the window
    (ffexp.tracking.faults.transient), or a server known to be down."""
    from .faults import TrackingServerUnreachable, transient
    seen, e = set(), err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, TrackingServerUnreachable):
            return str(e).strip().splitlines()[0][:200] if str(e).strip() else \
                "the tracking server is unreachable"
        e = e.__cause__ or e.__context__
    return transient(err, remote)


class _Info:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.artifact_uri = None  # nowhere yet: the artifacts stay in the spool


class _SpooledRun:
    """What ``create_run`` returns when the run could not be created (``info.run_id``)."""

    def __init__(self, run_id: str) -> None:
        self.info = _Info(run_id)


def _dataset_record(entity) -> dict:
    """A DatasetInput as JSON (``dataset_from_record`` makes it again)."""
    d = entity.dataset
    return {"name": d.name, "digest": d.digest, "source_type": d.source_type,
            "source": d.source, "schema": d.schema, "profile": d.profile,
            "tags": {t.key: t.value for t in entity.tags}}


def dataset_from_record(record: dict):
    from mlflow.entities import Dataset, DatasetInput, InputTag
    entity = Dataset(name=record["name"], digest=record["digest"],
                     source_type=record["source_type"], source=record["source"],
                     schema=record.get("schema"), profile=record.get("profile"))
    return DatasetInput(entity, tags=[InputTag(k, v) for k, v in record["tags"].items()])


def write_json(path: Path, record: dict) -> None:
    """Atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str) + "\n")
    tmp.replace(path)


class SpoolingClient:
    """The job's client: MLflow's (``client``, None when the store could not even be opened),
    a journal of the job's run, and its spool once the store is away (see the module doc).
    Methods the job records through are journaled for its own run and spooled once
    ``spooling``; others pass through to the store. While spooling, ``search_runs`` finds
    nothing and ``get_metric_history`` reads the journal."""

    def __init__(self, client, uri: str, folder, record: dict) -> None:
        self._client = client
        self.uri = uri
        self.folder = Path(folder)
        self.remote = uri.startswith(("http://", "https://"))
        self.spooling = False
        self.reason = ""
        self.created_run_id: str | None = None
        self._lock = threading.RLock()
        self.record = {"format": FORMAT, "complete": False, "tracking_uri": uri,
                       "run_id": None, "run_name": None, "start_time": None, "end_time": None,
                       "status": "RUNNING", "create_tags": {}, "params": {}, "tags": {},
                       "inputs": [], "host": socket.gethostname(), "pid": os.getpid(),
                       **record}
        #: (key, value, timestamp ms, step, model id or None): every value the job logged
        self.rows: list[tuple] = []

    # -- the switch ------------------------------------------------------------------------
    @property
    def unwrapped(self):
        return getattr(self._client, "unwrapped", self._client)

    @property
    def run_id(self) -> str:
        return self.created_run_id or NO_RUN

    def _mine(self, run_id) -> bool:
        return run_id in (self.created_run_id, NO_RUN)

    def absorb(self, err: BaseException, probe: bool = False) -> bool:
        """True (and spooling from now on) if ``err`` says the store is away; with ``probe``
        (an error that tells nothing: a metrics helper's text), asks the store once."""
        if self.spooling:
            return True
        why = outage(err, self.remote)
        if not why and probe and self._client is not None:
            try:
                self._client.get_run(self.created_run_id) if self.created_run_id else \
                    self._client.search_experiments(max_results=1)
            except Exception as again:
                why = outage(again, self.remote)
        if not why:
            return False
        self.switch(why)
        return True

    def switch(self, why: str) -> None:
        """Spool from now on: the folder prepared, run.json written (not complete yet)."""
        with self._lock:
            if self.spooling:
                return
            self.spooling, self.reason = True, why
            _clear(self.folder)
            (self.folder / ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
            self.record.update(reason=why, spooled_at=int(time.time() * 1000),
                               run_id=self.created_run_id)
            self._write(complete=False)
        log.warning("the MLflow store %s is unreachable (%s): the job trains on and spools its "
                    "record to %s; upload it later with: %s %s", self.uri, why, self.folder,
                    SYNC_COMMAND, self.folder.parent)

    def _write(self, complete: bool) -> None:
        with self._lock:
            self.record["complete"] = complete
            with open(self.folder / (METRICS_FILE + ".tmp"), "w") as f:
                for row in self.rows:
                    f.write(json.dumps(list(row)) + "\n")
            (self.folder / (METRICS_FILE + ".tmp")).replace(self.folder / METRICS_FILE)
            write_json(self.folder / RUN_FILE, self.record)

    def _try(self, name: str, *args, **kwargs):
        """(True, the store's answer), or (False, None) once spooling (now or before)."""
        if not self.spooling and self._client is not None:
            try:
                return True, getattr(self._client, name)(*args, **kwargs)
            except Exception as err:
                if not self.absorb(err):
                    raise
        elif not self.spooling:
            self.switch("the store could not be opened")
        return False, None

    # -- the journal -----------------------------------------------------------------------
    def journal_rows(self, rows) -> None:
        """Metric values the job hands to the store (ffexp.tracking.buffer): (key, value,
        timestamp, step[, model id])."""
        with self._lock:
            self.rows.extend(tuple(r) if len(r) == 5 else (*r, None) for r in rows)

    # -- MlflowClient's methods that a job records with -------------------------------------
    def create_run(self, experiment_id, start_time=None, tags=None, run_name=None):
        start = start_time or int(time.time() * 1000)
        with self._lock:
            self.record.update(experiment_id=experiment_id, start_time=start,
                               run_name=run_name, create_tags=dict(tags or {}))
        ok, run = self._try("create_run", experiment_id, start_time=start, tags=tags,
                            run_name=run_name)
        if ok:
            self.created_run_id = run.info.run_id
            self.record["run_id"] = self.created_run_id
            return run
        return _SpooledRun(NO_RUN)

    def log_batch(self, run_id, metrics=(), params=(), tags=(), **kwargs):
        """Params and tags are journaled here; metric values by the metrics buffer."""
        if self._mine(run_id):
            with self._lock:
                self.record["params"].update({p.key: p.value for p in params or ()})
                self.record["tags"].update({t.key: t.value for t in tags or ()})
        self._try("log_batch", run_id, metrics=metrics, params=params, tags=tags, **kwargs)

    def set_tag(self, run_id, key, value, **kwargs):
        if self._mine(run_id):
            with self._lock:
                self.record["tags"][key] = str(value)
        self._try("set_tag", run_id, key, value, **kwargs)

    def log_inputs(self, run_id, datasets=None, **kwargs):
        if self._mine(run_id):
            with self._lock:
                self.record["inputs"] = [_dataset_record(d) for d in datasets or ()]
        self._try("log_inputs", run_id, datasets=datasets, **kwargs)

    def _target(self, artifact_path) -> Path:
        target = self.folder / ARTIFACTS_DIR / (artifact_path or "")
        target.mkdir(parents=True, exist_ok=True)
        return target

    def log_artifacts(self, run_id, local_dir, artifact_path=None):
        ok, _ = self._try("log_artifacts", run_id, local_dir, artifact_path)
        if not ok:
            shutil.copytree(local_dir, self._target(artifact_path), dirs_exist_ok=True)

    def log_artifact(self, run_id, local_path, artifact_path=None):
        ok, _ = self._try("log_artifact", run_id, local_path, artifact_path)
        if not ok:
            shutil.copy2(local_path, self._target(artifact_path) / Path(local_path).name)

    def log_text(self, run_id, text, artifact_file):
        ok, _ = self._try("log_text", run_id, text, artifact_file)
        if not ok:
            path = self._target(str(Path(artifact_file).parent)) / Path(artifact_file).name
            path.write_text(text)

    def set_terminated(self, run_id, status=None, end_time=None):
        if self._mine(run_id):
            with self._lock:
                self.record.update(status=status or "FINISHED",
                                   end_time=end_time or int(time.time() * 1000))
        self._try("set_terminated", run_id, status, end_time)
        if self.spooling and self._mine(run_id):
            self._write(complete=True)

    def get_metric_history(self, run_id, key):
        if self.spooling and self._mine(run_id):
            from mlflow.entities import Metric
            return [Metric(k, v, ts, step) for k, v, ts, step, _ in list(self.rows) if k == key]
        return self._client.get_metric_history(run_id, key)

    def search_runs(self, *args, **kwargs):
        ok, found = self._try("search_runs", *args, **kwargs)
        return found if ok else []

    def __getattr__(self, name: str):
        if name.startswith("_") or self._client is None:
            raise AttributeError(name)
        return getattr(self._client, name)

    def __repr__(self) -> str:
        return f"SpoolingClient({self._client!r}, spooling={self.spooling})"


def _clear(folder: Path) -> None:
    """Make room for a new spool: one already uploaded is removed, one not uploaded yet (an
    earlier job in a reused folder) is moved aside to ``mlflow_spool.<n>`` (the sync finds it
    there)."""
    if not folder.exists():
        return
    if (folder / SYNCED_FILE).exists() and not (folder / RUN_FILE).exists():
        shutil.rmtree(folder)
        return
    n = 1
    while folder.with_name(f"{folder.name}.{n}").exists():
        n += 1
    folder.rename(folder.with_name(f"{folder.name}.{n}"))


def target(find, settings, context, experiment: str, experiment_tags: dict):
    """(client, uri, experiment id, sweep) of the job (``find``: ffexp.tracking.run._target)
    with the job's client a SpoolingClient; a store that cannot even be opened (a single run's
    experiment is looked up or created first) starts spooling at once."""
    from . import store
    folder = Path(context.output_dir or ".") / SPOOL_DIR
    record = {"experiment_name": experiment, "experiment_tags": dict(experiment_tags),
              "output_dir": str(context.output_dir) if context.output_dir else None,
              "sweep_dir": context.sweep_dir, "job_num": context.job_num}
    try:
        client, uri, experiment_id, sweep = find(settings, context)
    except Exception as err:
        uri = store.resolve_uri(settings.tracking.uri)
        why = outage(err, uri.startswith(("http://", "https://")))
        if not why:
            raise
        spooling = SpoolingClient(None, uri, folder, record)
        spooling.switch(why)
        return spooling, uri, None, None
    if sweep is not None:
        record.update(parent_run_id=sweep.parent_run_id, sweep_uid=sweep.sweep_uid,
                      experiment_id=experiment_id)
    return SpoolingClient(client, uri, folder, record), uri, experiment_id, sweep


def log_model(client, run_id: str, uri: str, experiment_id, net, dataset, step: int,
              name: str, params: dict | None) -> str:
    """ffexp.tracking.model.log_network; while spooling (or when the store goes away during
    it), the model's files go to the spool's ``model/`` and the id returned is
    ``SPOOLED_MODEL``."""
    from .model import log_network, save_network
    if not getattr(client, "spooling", False):
        try:
            return log_network(client, run_id, uri, experiment_id, net, dataset, step, name,
                               params)
        except Exception as err:
            absorb = getattr(client, "absorb", None)
            if absorb is None or not absorb(err):
                raise
    folder = client.folder / MODEL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    names = save_network(net, dataset, folder)
    write_json(folder / "model.json", {"names": names, "step": step, "name": name,
                                       "params": params})
    return SPOOLED_MODEL


def spooled(recorder) -> SpoolingClient | None:
    """The recorder's client if the job's record went to its spool, else None."""
    client = getattr(recorder, "client", None)
    return client if getattr(client, "spooling", False) else None
