"""The sweep's parent run kept true while the sweep runs: every job, when it ends, counts the
sweep's jobs from their status files and writes the count onto the parent.

Each job writes ``<job dir>/ffexp_status.json`` when it ends (ffexp.launch.main: ok, failed,
skipped, timeout), whichever launcher ran it and whether or not its run could be created;
then ``update_parent`` (called right after) reads every status file of the sweep directory and
writes onto the parent run, in one ``log_batch``:

- metrics ``sweep/ended`` (status files), ``sweep/finished``, ``sweep/diverged``,
  ``sweep/failed`` (of which ``sweep/failed_without_run``: refused or failed before their run
  existed), ``sweep/killed`` (time limit), ``sweep/skipped`` (finished before, resume),
  ``sweep/spooled`` (trained while the store was unreachable, their records not uploaded yet:
  ffexp.tracking.spool; ffexp-sync recounts once it uploaded them) and,
  when the number of jobs is known up front (a grid), ``sweep/not_ended`` (running, pending
  or lost: cancelled before it could write its status);
- tags ``ffexp.summary`` (one line, the same counts) and ``ffexp.best_run_id`` /
  ``ffexp.best_run_name`` / ``ffexp.best_metric`` (below).

The metrics go through ``buffer.store_rows`` (SQLAlchemy Core where the store allows it, as a
job's own metrics), the tags through one ``log_batch``; the best runs' names come from their
status records (``run_name``), read from the store only for a record without one.

So the parent tells what happened while the sweep runs and after its submitter is gone (a
``scancel`` of the submitter, an array that outlives it). The updates of jobs that end at the
same moment take turns through an exclusive ``flock`` on ``<sweep dir>/.ffexp_tally.lock``,
each counting after the previous one wrote: the last write counts every status file written
before it. The submitter's summary at the sweep's end (ffexp.tracking.summary) reads the runs
themselves and writes the same tags and metrics last.

Best run: the highest value of the main validation metric among the finished jobs (``value``
in their status files); runs that tie share the tag: ``ffexp.best_run_id`` holds every tied
run's id, comma-separated, in job order.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from pathlib import Path

log = logging.getLogger("ffexp")

#: a job's status file (ffexp.launch.status.STATUS_FILE, the same name)
STATUS_FILE = "ffexp_status.json"
LOCK = ".ffexp_tally.lock"
#: the counts, in the order the summary line shows them
COUNTS = ("finished", "diverged", "failed", "killed", "skipped", "spooled")


def records(sweep_dir) -> list[dict]:
    """The status records of the sweep's jobs that ended, in job order (unreadable ones, being
    written at this moment, are left out)."""
    out = []
    for path in Path(sweep_dir).rglob(STATUS_FILE):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda r: (r.get("job_num") if isinstance(r.get("job_num"), int)
                                      else 1 << 30))


def state(record: dict) -> str:
    """One of COUNTS for an ended job's record."""
    status, outcome = record.get("status"), record.get("outcome")
    if status in ("skipped", "spooled"):
        return status
    if status == "ok":
        return "diverged" if outcome == "diverged" else "finished"
    return "killed" if outcome in ("timeout", "killed") else "failed"


def best(recs: list[dict]) -> tuple[list[dict], str, float] | None:
    """(the records that share the best value, metric, value) among the finished jobs."""
    scored = [r for r in recs if state(r) == "finished" and r.get("run_id")
              and isinstance(r.get("value"), (int, float)) and math.isfinite(r["value"])
              and r.get("metric")]
    if not scored:
        return None
    metric = Counter(r["metric"] for r in scored).most_common(1)[0][0]
    scored = [r for r in scored if r["metric"] == metric]
    top = max(r["value"] for r in scored)
    return [r for r in scored if r["value"] == top], metric, top


def counts(recs: list[dict], n_jobs: int | None = None) -> dict[str, int]:
    """The metrics of the parent's running count (see the module doc)."""
    by = Counter(state(r) for r in recs)
    out = {"ended": len(recs), **{k: by.get(k, 0) for k in COUNTS},
           "failed_without_run": sum(1 for r in recs
                                     if state(r) == "failed" and not r.get("run_id"))}
    if n_jobs is not None:
        out["not_ended"] = max(0, n_jobs - len(recs))
    return out


def line(c: dict[str, int], n_jobs: int | None = None) -> str:
    """``12 jobs: 7 finished, 1 diverged, 2 failed (1 without a run), 1 killed; 1 skipped
    (finished before); 3 not ended`` (the numbers of ``counts``)."""
    total = n_jobs if n_jobs is not None else c["ended"]
    text = f"{total} jobs: " + ", ".join(f"{c[k]} {k}" for k in COUNTS[:4])
    if c["failed_without_run"]:
        text = text.replace(f"{c['failed']} failed",
                            f"{c['failed']} failed ({c['failed_without_run']} without a run)")
    if c["skipped"]:
        text += f"; {c['skipped']} skipped (finished before)"
    if c.get("spooled"):
        text += (f"; {c['spooled']} spooled (trained while the store was unreachable, not "
                 f"uploaded yet: ffexp-sync)")
    if c.get("not_ended"):
        text += f"; {c['not_ended']} not ended yet"
    return text


def _turn(sweep_dir: Path):
    """One update at a time per sweep directory (no-op where flock is unavailable)."""
    from .store import flocked
    return flocked(sweep_dir / LOCK, os.O_RDWR | os.O_CREAT)


def update_parent(sweep_dir, target=None) -> dict[str, int] | None:
    """Count the sweep's ended jobs and write the count onto its parent run (see the module
    doc); ``target``: the sweep's ffexp.tracking.handoff.SweepTarget (read from the sweep
    directory if None). Returns the counts, None without a parent. A store that refuses the
    write costs a line in the job's log, never the job."""
    from mlflow.entities import Metric, RunTag

    from . import handoff, store
    from .buffer import store_rows
    from .tags import clip
    sweep_dir = Path(sweep_dir)
    try:
        target = target or handoff.read(sweep_dir)
    except (OSError, ValueError):
        return None
    if target is None:
        return None
    try:
        with _turn(sweep_dir):
            recs = records(sweep_dir)
            c = counts(recs, target.n_jobs)
            summary = line(c, target.n_jobs)
            ts = int(time.time() * 1000)
            metrics = [Metric(f"sweep/{k}", float(v), ts, 0) for k, v in c.items()]
            tags = [RunTag("ffexp.summary", summary)]
            top = best(recs)
            client = store.client(target.tracking_uri)
            if top is not None:
                tied, metric, value = top
                ids = [r["run_id"] for r in tied]
                tags += [RunTag("ffexp.best_run_id", clip(",".join(ids))),
                         RunTag("ffexp.best_metric", metric)]
                names = [r["run_name"] if isinstance(r.get("run_name"), str) else
                         client.get_run(r["run_id"]).info.run_name or "" for r in tied[:10]]
                tags.append(RunTag("ffexp.best_run_name", clip(",".join(names))))
                metrics.append(Metric(f"best/{metric}", float(value), ts, 0))
            store_rows(client, target.tracking_uri, target.parent_run_id,
                       [(m.key, m.value, m.timestamp, m.step) for m in metrics])
            client.log_batch(target.parent_run_id, tags=tags)
        return c
    except Exception as err:
        log.warning("could not update the sweep's parent run %s: %s", target.parent_run_id,
                    err, exc_info=True)
        return None
