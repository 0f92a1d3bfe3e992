"""Stale runs: RUNNING in the store, but no process is working on them any more (SIGKILL, an
out-of-memory kill, a lost node). Nothing in the dying process can close such a run; the next
sweep with ``tracking.skip_existing=true``, or ``ffexp-stale``, recognizes and closes it.

A job's run is created with the tags ``ffexp.host``, ``ffexp.pid`` and ``ffexp.heartbeat`` (unix
seconds); the metrics buffer advances the heartbeat from its flush path, at most every
HEARTBEAT_SECONDS while the job trains. A RUNNING run is stale when

- it was started on this host and its process no longer exists (certain), or
- its last sign of life (the heartbeat, else its start time) is older than ``older_than``
  seconds (``tracking.stale_seconds``, default 300). This one is a judgement: a run whose
  epochs take longer than that on another host looks stale too, so keep the threshold well
  above an epoch's duration.

A sweep's parent run (tag ``ffexp.kind=sweep``) has no heartbeat of its own: its last sign of
life is the newest of its children's. Marking a run stale sets it KILLED (end time = its last
sign of life) with tags ``ffexp.outcome=stale`` and ``ffexp.error`` saying why; ffexp-report
counts it as killed, never as finished.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

HEARTBEAT_TAG = "ffexp.heartbeat"
HOST_TAG = "ffexp.host"
PID_TAG = "ffexp.pid"
#: the heartbeat advances at most this often (seconds)
HEARTBEAT_SECONDS = 10.0
#: a RUNNING run silent for longer than this (seconds) is stale (tracking.stale_seconds)
DEFAULT_OLDER_THAN = 300.0
MAX_RUNS = 50_000


def process_tags() -> dict[str, str]:
    """The tags that let a later process judge whether this one still works on a run."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()),
            HEARTBEAT_TAG: str(int(time.time()))}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: a process of another user exists
        return True
    return True


def last_sign_of_life(run) -> float:
    """Unix seconds of the run's heartbeat, else of its start."""
    try:
        return float(run.data.tags[HEARTBEAT_TAG])
    except (KeyError, ValueError):
        return (run.info.start_time or 0) / 1000


def why_stale(run, older_than: float, now: float | None = None,
              last: float | None = None) -> str | None:
    """Why a RUNNING run is stale, or None (not RUNNING, or alive as far as we can tell).

    ``last`` overrides the run's own last sign of life (a parent's: its children's)."""
    if run.info.status != "RUNNING":
        return None
    tags, host = run.data.tags, socket.gethostname()
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) == host and pid.isdigit() and int(pid) != os.getpid() \
            and not _pid_alive(int(pid)):
        return f"its process {pid} on {host} has ended"
    age = (time.time() if now is None else now) - (last_sign_of_life(run) if last is None
                                                   else last)
    if age > older_than:
        return f"no sign of life for {age:.0f} s (threshold {older_than:g} s)"
    return None


def _parent_last(client, run) -> float:
    """A sweep parent's last sign of life: its own, or its newest child's."""
    kids = client.search_runs([run.info.experiment_id],
                              f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
                              max_results=MAX_RUNS)
    times = [last_sign_of_life(run)]
    times += [max(last_sign_of_life(k), (k.info.end_time or 0) / 1000) for k in kids]
    return max(times)


def find_stale(client, experiment_ids: list[str], older_than: float = DEFAULT_OLDER_THAN,
               now: float | None = None) -> list[tuple[object, str, float]]:
    """(run, reason, last sign of life) of every stale run in the experiments."""
    if not experiment_ids:
        return []
    running = client.search_runs(experiment_ids, "attributes.status = 'RUNNING'",
                                 max_results=MAX_RUNS)
    found = []
    for run in running:
        last = _parent_last(client, run) if run.data.tags.get("ffexp.kind") == "sweep" \
            else last_sign_of_life(run)
        reason = why_stale(run, older_than, now, last)
        if reason:
            found.append((run, reason, last))
    return found


def mark_stale(client, run, reason: str, last: float | None = None) -> bool:
    """KILLED with ``ffexp.outcome=stale``; False if the run ended meanwhile (left alone)."""
    from mlflow.entities import RunTag
    if client.get_run(run.info.run_id).info.status != "RUNNING":
        return False
    last = last_sign_of_life(run) if last is None else last
    client.log_batch(run.info.run_id, tags=[RunTag("ffexp.outcome", "stale"),
                                            RunTag("ffexp.error", f"stale: {reason}")])
    end = max(int(last * 1000), run.info.start_time or 0)
    client.set_terminated(run.info.run_id, "KILLED", end_time=end)
    return True


def close_stale(client, experiment_ids: list[str], older_than: float = DEFAULT_OLDER_THAN,
                dry_run: bool = False) -> list[tuple[object, str]]:
    """Find and (unless ``dry_run``) mark the stale runs; returns (run, reason) of each."""
    out = []
    for run, reason, last in find_stale(client, experiment_ids, older_than):
        if dry_run or mark_stale(client, run, reason, last):
            out.append((run, reason))
    return out


# ---- ffexp-stale ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ffexp-stale",
        description="Mark runs left RUNNING by a process that no longer exists (SIGKILL, a lost "
                    "node) as KILLED with tag ffexp.outcome=stale.")
    p.add_argument("--tracking-uri", help="the store (default: $MLFLOW_TRACKING_URI, else "
                                          "sqlite:///mlflow.db in the current directory)")
    p.add_argument("--experiment", action="append",
                   help="experiment name (repeatable; default: every experiment)")
    p.add_argument("--older-than", type=float, default=DEFAULT_OLDER_THAN, metavar="SECONDS",
                   help=f"silence that makes a run stale (default {DEFAULT_OLDER_THAN:g})")
    p.add_argument("--dry-run", action="store_true", help="list the stale runs, change nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``ffexp-stale`` command: exit 0, or 2 after one ``ffexp-stale: error:`` line (a bad
    argument, an unusable store), never a traceback."""
    args = _parser().parse_args(argv)
    from . import store
    uri = store.resolve_uri(args.tracking_uri)
    if args.older_than < 0:
        return _error("--older-than must be >= 0 seconds")
    db = store.sqlite_path(uri)
    if db is not None and not db.is_file():
        return _error(f"no MLflow store at {uri}; pass --tracking-uri")
    from .preflight import damaged, unreachable
    reason = damaged(db) if db is not None else None
    if reason:
        return _error(f"--tracking-uri {uri}: the store {db} is damaged ({reason})")
    down = unreachable(uri) if uri.startswith(("http://", "https://")) else None
    if down is not None:
        return _error(f"--tracking-uri {uri}: no MLflow tracking server answers there ({down})")
    try:
        return _close(store.client(uri), uri, args)
    except Exception as err:  # an unusable store: no scheme MLflow knows, no server, ...
        from .faults import cause
        text = cause(err) or (str(err).strip().splitlines() or [type(err).__name__])[0]
        return _error(f"--tracking-uri {uri}: the store cannot be used: {text[:300]}")


def _error(message: str) -> int:
    print(f"ffexp-stale: error: {message}", file=sys.stderr)
    return 2


def _close(client, uri: str, args) -> int:
    experiments = {e.name: e.experiment_id for e in client.search_experiments(max_results=MAX_RUNS)}
    unknown = sorted(set(args.experiment or ()) - set(experiments))
    if unknown:
        return _error(f"unknown experiment(s) {', '.join(unknown)}; experiments: "
                      f"{', '.join(sorted(experiments)) or 'none'}")
    ids = [experiments[n] for n in args.experiment or experiments]
    found = close_stale(client, ids, args.older_than, args.dry_run)
    verb = "stale (dry run, unchanged)" if args.dry_run else "marked KILLED (ffexp.outcome=stale)"
    for run, reason in found:
        print(f"{run.info.run_id} {run.info.run_name}: {reason}; {verb}")
    print(f"ffexp-stale: {len(found)} stale run(s) in {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
