"""``ffexp-sync <dir> [<dir> ...]``: upload the records jobs spooled while their tracking store
was unreachable (ffexp.tracking.spool), exactly once, under their sweep's parent run.

For each spool found under the folders (a sweep's folder, a job's folder or a spool itself:
every ``mlflow_spool*/run.json`` below them), one at a time under an exclusive lock on the
spool (two syncs at once take turns), in steps noted in the spool's ``sync.json`` as each is
done, so that a sync that stops half-way (a crash, Ctrl-C, the store away again) is completed
by the next one without doing anything twice:

1. **the run**: the one noted by an earlier partial sync, else the one the job created before
   the outage (``run_id``), else the run of the experiment tagged with the job's
   ``ffexp.run_key`` (created by an earlier sync whose note was lost), else a new run, created
   with the recorded start time, name and creation tags (``mlflow.parentRunId``: the sweep's
   parent) through ffexp's client, which never creates a run twice (ffexp.tracking.retry);
2. params (those the run lacks), tags, the dataset input (if the run has none);
3. metrics: every value of ``metrics.jsonl`` that the run's history lacks (same key, step,
   timestamp and value), through the metrics' fast path (ffexp.tracking.buffer.store_rows);
   a value stored before the outage is not stored again;
4. artifacts: ``artifacts/`` uploaded to the run's root (uploading a file again replaces it);
5. the model: ``model/`` logged as ``model_npz/network.npz`` and the same pyfunc LoggedModel a
   job logs (ffexp.tracking.model.log_saved_network; its id noted as soon as it exists), then
   the final values linked to it;
6. the run closed with the recorded status and end time;
7. ``run.json`` renamed ``synced.json`` (a second sync uploads nothing), and the job's status
   file, if it still says ``spooled`` for this spool, says ``ok`` with the run's id.

Then every parent run a spool belonged to is recounted: ffexp.tracking.tally from the sweep's
status files (while the sweep folder's ``mlflow_sweep.json`` is still that sweep's) and the
summary read from its children (ffexp.tracking.summary); a parent its sweep could not close
(the store was away when the sweep ended; the sweep noted how it ended in its folder,
``mlflow_sweep_end.json``) is closed so, also if a stale check closed it KILLED meanwhile.

Exit status 0 when every spool found is uploaded (or was before), 1 if one could not be (the
store still away: the first such spool stops the sync), 2 for a bad argument; one line each.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .spool import (ARTIFACTS_DIR, METRICS_FILE, MODEL_DIR, RUN_FILE, SPOOL_DIR, SPOOLED_MODEL,
                    SYNCED_FILE, dataset_from_record, outage, write_json)

log = logging.getLogger("ffexp")

PROGRESS_FILE = "sync.json"
LOCK = ".sync.lock"
#: MLflow's limits per log_batch request
PER_CALL = 100


@dataclass
class Synced:
    """What became of one spool."""
    folder: Path
    state: str        # uploaded | already | incomplete | failed
    run_id: str | None = None
    detail: str = ""
    record: dict = field(default_factory=dict)


def find(folders) -> list[Path]:
    """The spool folders (``mlflow_spool``, ``mlflow_spool.<n>``) under ``folders``, uploaded
    or not, in path order."""
    found = set()
    for folder in map(Path, folders):
        for marker in (RUN_FILE, SYNCED_FILE):
            if (folder / marker).is_file() and folder.name.startswith(SPOOL_DIR):
                found.add(folder.resolve())
            for path in folder.rglob(marker):
                if path.parent.name.startswith(SPOOL_DIR):
                    found.add(path.parent.resolve())
    return sorted(found)


def pending(folders) -> list[Path]:
    """The spools under ``folders`` not uploaded yet."""
    return [f for f in find(folders) if (f / RUN_FILE).is_file()]


class _Progress:
    """``sync.json``: the run's id, the LoggedModel's id and the steps done."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / PROGRESS_FILE
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {"done": []}

    def done(self, step: str) -> bool:
        return step in self.data["done"]

    def note(self, step: str | None = None, **values) -> None:
        self.data.update(values)
        if step and step not in self.data["done"]:
            self.data["done"].append(step)
        write_json(self.path, self.data)


def _rows(folder: Path) -> list[tuple]:
    out = []
    path = folder / METRICS_FILE
    if path.is_file():
        with open(path) as f:
            for line in f:
                if line.strip():
                    key, value, ts, step, model = json.loads(line)
                    out.append((key, float(value), int(ts), int(step), model))
    return out


def _experiment(client, record: dict, uri: str, moved: bool):
    """The experiment to record into: the recorded one; by name when the record has none (the
    store could not be opened) or the store is given anew (``moved``)."""
    if record.get("experiment_id") and not moved:
        return client, record["experiment_id"]
    from . import store
    return store.open_store(uri, record["experiment_name"], record.get("experiment_tags"))


def _exists(client, run_id: str | None):
    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except Exception as err:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(err, "error_code", "")) or \
                "not found" in str(err).lower():
            return None
        raise


def _the_run(client, experiment_id: str, record: dict, progress: _Progress, moved: bool):
    """(run, created): step 1 of the module doc."""
    from .retry import _find_run
    from .tags import RUN_KEY
    run = _exists(client, progress.data.get("run_id")) or \
        (None if moved else _exists(client, record.get("run_id")))
    key = (record.get("create_tags") or {}).get(RUN_KEY)
    if run is None and key:
        run = _find_run(client, experiment_id, key)
    created = run is None
    if created:
        run = client.create_run(experiment_id, start_time=record.get("start_time"),
                                tags=record.get("create_tags") or {},
                                run_name=record.get("run_name"))
        run = client.get_run(run.info.run_id)
    progress.note("run", run_id=run.info.run_id)
    return run, created


def _new_values(client, run_id: str, rows: list[tuple]) -> list[tuple]:
    """The rows whose (key, step, timestamp, value) the run's history lacks (each once)."""
    keys = sorted({r[0] for r in rows})
    stored = set()
    for key in keys:
        stored |= {(m.key, m.step, m.timestamp, m.value)
                   for m in client.get_metric_history(run_id, key)}
    out = []
    for row in rows:
        ident = (row[0], row[3], row[2], row[1])
        if ident not in stored:
            stored.add(ident)
            out.append(row)
    return out


def upload(folder: Path, uri: str | None = None) -> Synced:
    """Upload one spool (the steps of the module doc); ``uri``: another address of the store
    than the recorded one."""
    from . import store
    from .store import flocked
    folder = Path(folder)
    with flocked(folder / LOCK, os.O_RDWR | os.O_CREAT):
        if not (folder / RUN_FILE).is_file():
            return Synced(folder, "already", detail="uploaded before")
        record = json.loads((folder / RUN_FILE).read_text())
        if not record.get("complete"):
            return Synced(folder, "incomplete", record=record,
                          detail=f"the job (pid {record.get('pid')} on {record.get('host')}) "
                                 f"has not closed its run: still training, or it was killed")
        moved = bool(uri) and uri != record["tracking_uri"]
        uri = uri or record["tracking_uri"]
        client, experiment_id = _experiment(store.client(uri), record, uri, moved)
        progress = _Progress(folder)
        run, created = _the_run(client, experiment_id, record, progress, moved)
        run_id = run.info.run_id
        n = _upload_steps(client, uri, experiment_id, run, record, folder, progress)
        synced = {**record, "run_id": run_id, "synced_to": uri,
                  "synced_at": int(time.time() * 1000)}
        write_json(folder / SYNCED_FILE, synced)
        (folder / RUN_FILE).unlink()
        _status_synced(folder, record, run_id)
        how = "created" if created else "completed"
        return Synced(folder, "uploaded", run_id, f"{how} run {run_id} ({record.get('run_name')}"
                      f", {record.get('status')}; {n} metric values)", synced)


def _upload_steps(client, uri: str, experiment_id: str, run, record: dict, folder: Path,
                  progress: _Progress) -> int:
    """Steps 2-6 of the module doc; returns the metric values stored."""
    from mlflow.entities import Metric, Param, RunTag

    from .buffer import send_metrics, store_rows
    run_id = run.info.run_id
    if not progress.done("params"):
        params = [Param(k, str(v)) for k, v in record.get("params", {}).items()
                  if k not in run.data.params]
        for i in range(0, len(params), PER_CALL):
            client.log_batch(run_id, params=params[i:i + PER_CALL])
        tags = [RunTag(k, str(v)) for k, v in
                {**(record.get("create_tags") or {}), **record.get("tags", {})}.items()]
        for i in range(0, len(tags), PER_CALL):
            client.log_batch(run_id, tags=tags[i:i + PER_CALL])
        if "ffexp.error" in run.data.tags and "ffexp.error" not in record.get("tags", {}):
            client.delete_tag(run_id, "ffexp.error")   # set by a stale check meanwhile
        if record.get("inputs") and not run.inputs.dataset_inputs:
            client.log_inputs(run_id, datasets=[dataset_from_record(d)
                                                for d in record["inputs"]])
        progress.note("params")
    rows = _rows(folder)
    plain = [r for r in rows if not r[4]]
    stored = 0
    if not progress.done("metrics"):
        new = _new_values(client, run_id, plain)
        store_rows(client, uri, run_id, [r[:4] for r in new])
        stored += len(new)
        progress.note("metrics")
    artifacts = folder / ARTIFACTS_DIR
    if not progress.done("artifacts"):
        if artifacts.is_dir() and any(artifacts.iterdir()):
            client.log_artifacts(run_id, str(artifacts))
        progress.note("artifacts")
    model_dir = folder / MODEL_DIR
    if (model_dir / "model.json").is_file() and not progress.done("model"):
        from .model import log_saved_network
        spec = json.loads((model_dir / "model.json").read_text())
        model_id = log_saved_network(client, run_id, uri, experiment_id, model_dir,
                                     spec["names"], spec["step"], spec["name"], spec["params"],
                                     on_created=lambda m: progress.note(model_id=m),
                                     model_id=progress.data.get("model_id"))
        progress.note("model", model_id=model_id)
    if not progress.done("linked"):
        model_id = progress.data.get("model_id")
        linked = [(k, v, ts, step, model_id if m == SPOOLED_MODEL else m)
                  for k, v, ts, step, m in rows if m and (m != SPOOLED_MODEL or model_id)]
        new = _new_values(client, run_id, linked)
        send_metrics(client, run_id, [Metric(k, v, ts, step, model_id=m)
                                      for k, v, ts, step, m in new])
        stored += len(new)
        progress.note("linked")
    if not progress.done("closed"):
        client.set_terminated(run_id, record.get("status") or "FINISHED",
                              end_time=record.get("end_time"))
        progress.note("closed")
    return stored


def _status_synced(folder: Path, record: dict, run_id: str) -> None:
    """The job's status file (beside the spool: a sweep folder copied elsewhere keeps them
    together), if it still says ``spooled`` for this spool: ``ok``, the run."""
    from .tally import STATUS_FILE
    path = folder.parent / STATUS_FILE
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if status.get("status") != "spooled" or Path(status.get("spool") or "").name != folder.name:
        return
    status.update(status="ok", run_id=run_id, synced=True)
    write_json(path, status)


def _close_parent(client, run, sweep_dir: Path | None) -> str:
    """A parent its sweep could not close (the store was away when the sweep ended: the sweep
    noted how it ended in its folder, ffexp.tracking.sweep.END_FILE) is closed so now, also
    if a stale check closed it KILLED meanwhile; what is said about it."""
    from .sweep import END_FILE
    try:
        end = json.loads((sweep_dir / END_FILE).read_text()) if sweep_dir else None
    except (OSError, ValueError):
        end = None
    if not end or end.get("parent_run_id") != run.info.run_id:
        return ""
    tags = run.data.tags
    stale = run.info.status == "KILLED" and tags.get("ffexp.outcome") == "stale"
    if run.info.status != "RUNNING" and not stale:
        return ""
    client.set_tag(run.info.run_id, "ffexp.outcome", end["outcome"])
    if stale and "ffexp.error" in tags:
        client.delete_tag(run.info.run_id, "ffexp.error")
    client.set_terminated(run.info.run_id, end["status"], end_time=end.get("end_time"))
    return f"; closed {end['status']} (its sweep ended while the store was away)"


def recount(done: list[Synced], uri: str | None = None) -> list[str]:
    """Recount every parent run of the uploaded spools (see the module doc); the lines that
    say so."""
    from . import handoff, store
    from .summary import summarize
    from .tally import update_parent
    lines = []
    parents = {}
    for s in done:
        r = s.record
        if s.state == "uploaded" and r.get("parent_run_id"):
            parents.setdefault((r.get("synced_to") or uri, r["parent_run_id"]), r)
    for (target_uri, parent), r in sorted(parents.items()):
        try:
            client = store.client(target_uri)
            sweep_dir = Path(r["sweep_dir"]) if r.get("sweep_dir") else None
            try:
                handed = handoff.read(sweep_dir) if sweep_dir else None
            except (OSError, ValueError):
                handed = None
            own = handed is not None and handed.sweep_uid == r.get("sweep_uid")
            if own:
                update_parent(sweep_dir, handed)
            run = client.get_run(parent)
            counts = summarize(client, run.info.experiment_id, parent,
                               handoff.skipped(sweep_dir) if own else [],
                               sweep_dir if own else None)
            closed = _close_parent(client, run, sweep_dir)
            summary = client.get_run(parent).data.tags.get("ffexp.summary", "")
            lines.append(f"ffexp-sync: parent run {parent}: {summary or counts}{closed}")
        except Exception as err:
            lines.append(f"ffexp-sync: warning: could not recount parent run {parent}: "
                         f"{(str(err).strip().splitlines() or [type(err).__name__])[0][:200]}")
    return lines


def sync(folders, uri: str | None = None, out=None) -> tuple[list[Synced], list[str]]:
    """Upload every spool under ``folders`` and recount their parents (the module doc); each
    spool's line, then the parents', printed to ``out`` (None: silent). Stops at the first
    spool the store cannot take because it is away."""
    results = []
    say = (lambda line: print(line, file=out, flush=True)) if out else (lambda line: None)
    for folder in find(folders):
        try:
            result = upload(folder, uri)
        except Exception as err:
            why = outage(err, True)
            text = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            log.debug("sync of %s failed", folder, exc_info=True)
            results.append(Synced(folder, "failed", detail=f"{type(err).__name__}: {text}"))
            say(f"ffexp-sync: {folder}: not uploaded: {type(err).__name__}: {text}")
            if why:
                say("ffexp-sync: the store is still unreachable; stopped (run the same command "
                    "again once it is back: what was uploaded is not uploaded twice)")
                break
            continue
        results.append(result)
        if result.state == "uploaded":
            say(f"ffexp-sync: {folder}: {result.detail}")
        elif result.state == "incomplete":
            say(f"ffexp-sync: {folder}: not uploaded: {result.detail}")
    lines = recount(results, uri)
    for line in lines:
        say(line)
    return results, lines


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ffexp-sync",
        description="Upload the MLflow records that jobs spooled to their folders "
                    f"(<job dir>/{SPOOL_DIR}/) while their tracking store was unreachable: "
                    "each exactly once, under its sweep's parent run.")
    p.add_argument("folders", nargs="+", metavar="DIR",
                   help="a sweep folder, a job folder or a spool folder (searched below)")
    p.add_argument("--tracking-uri", help="the store at another address than the one the "
                                          "jobs recorded (default: the recorded one)")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``ffexp-sync`` command (see the module doc)."""
    args = _parser().parse_args(argv)
    missing = [f for f in args.folders if not Path(f).is_dir()]
    if missing:
        print(f"ffexp-sync: error: {missing[0]}: no such folder (give a sweep, job or spool "
              f"folder)", file=sys.stderr)
        return 2
    from .faults import quiet_store_loggers
    from .retry import configure_http
    configure_http()
    quiet_store_loggers()
    results, _ = sync(args.folders, args.tracking_uri, out=sys.stdout)
    count = {s: sum(r.state == s for r in results) for s in
             ("uploaded", "already", "incomplete", "failed")}
    print(f"ffexp-sync: {len(results)} spool(s): {count['uploaded']} uploaded, "
          f"{count['already']} uploaded before, {count['incomplete']} incomplete, "
          f"{count['failed']} failed", flush=True)
    return 1 if count["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
