"""One parent MLflow run per multirun, in the launching process (ffexp.launch.mlflow_sweep's
Hydra callback calls ``begin`` and ``close_open_sweep``).

``begin`` runs once, before any job and after the launch layer checked that the jobs' configs
compose (a typo in a sweep value leaves the store untouched): it creates the SQLite schema
and the experiment (parallel jobs racing to do either break the store: mlflow #4123), creates
the parent run and writes its id to ``<sweep dir>/mlflow_sweep.json`` for the jobs
(ffexp.tracking.handoff). Before that, it checks that the store can be used
(ffexp.tracking.preflight) and, with ``tracking.skip_existing``, closes the experiment's stale
runs (ffexp.tracking.stale).

``on_multirun_end`` writes the summary and closes the parent. Hydra skips it when a job raised,
so the parent is also closed by ``close_open_sweep`` (called from the entry point's ``finally``,
and at interpreter exit as a last resort): no path leaves it RUNNING.
"""

from __future__ import annotations

import atexit
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ffexp.tracking import handoff, signals, store
from ffexp.tracking.signals import Terminated
from ffexp.tracking.stale import process_tags
from ffexp.tracking.tags import (RUN_KEY, SEP, USER, clip, current_user, experiment_tags,
                                 git_state, run_key)

#: the parent run of this process's sweep, while it is open
_OPEN: dict[str, Any] = {}


def begin(config, jobs: list[list[str]] | None, searched: tuple[str, ...] = ()) -> None:
    """A tracked sweep's start, in the launching process before any job: the store is checked
    (``_check_store``), then the experiment and the parent run are created (``open_sweep``);
    a store that breaks meanwhile (a full disk) ends the sweep with one line, exit status 1.
    With tracking off, a stale hand-off file of the sweep directory is removed."""
    if not config.tracking.enabled:
        handoff.remove(_sweep_dir(config, Path.cwd()))  # no stale parent for the jobs
        return
    _check_store(config)
    try:
        open_sweep(config, jobs, searched)
    except Exception as err:  # the store broke (a full disk): one line, nothing to run
        from ffexp.tracking.faults import as_fault, refused_line
        uri = store.resolve_uri(config.tracking.uri, base=Path.cwd())
        refusal = refused_line(err, uri, _experiment(config, jobs))
        if refusal is not None:  # the server's accounts: the user's to sort out
            print(f"ffexp: error: {refusal}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        fault = as_fault(err, uri)
        if fault is None:
            raise
        print(f"ffexp: error: {fault}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def _check_store(config) -> None:
    """An unusable store (no server at tracking.uri, a directory that cannot be written) ends
    the sweep here, before any job, with one line and exit status 2."""
    from ffexp.tracking.preflight import StoreError, check_experiment_name, check_store
    try:
        check_experiment_name(config.tracking.experiment)
        check_store(store.resolve_uri(config.tracking.uri, base=Path.cwd()))
    except StoreError as err:
        print(f"ffexp: error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _close_stale(config, client, experiment_id: str) -> None:
    """With tracking.skip_existing: close the experiment's stale runs (ffexp.tracking.stale),
    the jobs of a killed sweep and its parent among them, before the jobs look for them."""
    from ffexp.tracking.stale import close_stale
    try:
        closed = close_stale(client, [experiment_id], float(config.tracking.stale_seconds))
    except Exception as err:  # the sweep can go on; its jobs close their own stale runs
        print(f"ffexp: warning: could not close stale runs: {err}", file=sys.stderr, flush=True)
        return
    if closed:
        print(f"ffexp: {len(closed)} stale run(s) closed as KILLED (ffexp.outcome=stale): "
              + ", ".join(run.info.run_name or run.info.run_id for run, _ in closed), flush=True)


def _experiment(config, jobs: list[list[str]] | None) -> str:
    """tracking.experiment, else the dataset's name; ``ffexp`` when the sweep varies the dataset
    (all of a sweep's runs share the parent's experiment, so the UI can nest them)."""
    if config.tracking.experiment:
        return str(config.tracking.experiment)
    datasets = {o.split("=", 1)[1] for job in jobs or () for o in job
                if o.split("=", 1)[0].lstrip("+~") == "dataset"}
    return "ffexp" if len(datasets) > 1 else str(config.dataset.name)


def _varied(jobs: list[list[str]] | None, searched: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The override keys with more than one value across the jobs; when the jobs are not known
    up front (Optuna samples them), ``searched``: the keys of the sweeper's search space."""
    if jobs is None:
        return tuple(searched)
    values: dict[str, set] = {}
    for job in jobs or ():
        for override in job:
            key, _, value = override.partition("=")
            values.setdefault(key.lstrip("+~"), set()).add(value)
    return tuple(k for k, v in values.items() if len(v) > 1)


def _sweep_dir(config, start: Path) -> Path:
    return (start / str(config.hydra.sweep.dir)).resolve()


def open_sweep(config, jobs: list[list[str]] | None, searched: tuple[str, ...] = ()) -> str:
    """Create the parent run and hand its id to the jobs; returns the run id."""
    start = Path.cwd()
    uri = store.resolve_uri(config.tracking.uri, base=start)
    sweep_dir = _sweep_dir(config, start)
    experiment = _experiment(config, jobs)
    try:
        sweep_id = str(sweep_dir.relative_to(start))
    except ValueError:
        sweep_id = str(sweep_dir)
    uid = str(config.hydra.job.env_set.get("FFEXP_SWEEP_UID") or handoff.new_uid())
    client, experiment_id = store.open_store(uri, experiment, experiment_tags())
    handoff.clear_skipped(sweep_dir)
    if config.tracking.get("skip_existing"):
        _close_stale(config, client, experiment_id)
    commit, dirty = git_state()
    tags = {"ffexp.sweep_id": sweep_id, "ffexp.sweep_uid": uid,
            "ffexp.command_line": clip(_command_line()),
            "ffexp.overrides": clip(" ".join(config.hydra.overrides.task)),
            "ffexp.git_dirty": dirty, "ffexp.kind": "sweep",
            "mlflow.source.name": "ffexp", RUN_KEY: run_key(uid), USER: current_user(),
            **process_tags()}
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    if jobs is not None:
        tags["ffexp.n_jobs"] = str(len(jobs))
    name = SEP.join(["sweep", experiment, *sweep_dir.parts[-2:]])
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    _OPEN.update(client=client, run_id=run_id, uri=uri, experiment_id=experiment_id,
                 sweep_dir=sweep_dir)
    handoff.write(sweep_dir, handoff.SweepTarget(uri, experiment_id, run_id, sweep_id,
                                                 _varied(jobs, searched), uid,
                                                 len(jobs) if jobs is not None else None))
    _install_handlers()
    return run_id


def _command_line() -> str:
    """The user's command (the entry point puts it in FFEXP_COMMAND_LINE), else argv."""
    return os.environ.get("FFEXP_COMMAND_LINE") or shlex.join(["ffexp", *sys.argv[1:]])


def _install_handlers() -> None:
    """SIGTERM and Ctrl-C between jobs end the sweep through Python (the parent closes as
    KILLED); an exit without on_multirun_end (Hydra skips it when a job raised) closes it too."""
    _OPEN["previous_handlers"] = signals.install_process_handlers()
    if not _OPEN.get("atexit"):
        atexit.register(close_open_sweep, "FAILED")
        _OPEN["atexit"] = True


def status_of(exc: BaseException | None) -> str:
    """The parent's status for how the sweep ended."""
    from ffexp.tracking.signals import killed
    if exc is None or (isinstance(exc, SystemExit) and not isinstance(exc, Terminated)
                       and exc.code in (0, None)):
        return "FINISHED"
    return "KILLED" if killed(exc) and not isinstance(exc, SystemExit) \
        or isinstance(exc, Terminated) else "FAILED"


def open_parent():
    """(client, run id, experiment id) of this process's open sweep parent run, or None."""
    if "run_id" not in _OPEN:
        return None
    return _OPEN["client"], _OPEN["run_id"], _OPEN["experiment_id"]


def close_open_sweep(status: str = "FAILED", hint: bool = True) -> None:
    """Summarize and close the open parent run, if any (idempotent); ``hint``: print where to
    look at the runs (a sweep that ends normally prints it with its result instead)."""
    run_id = _OPEN.pop("run_id", None)
    if run_id is None:
        return
    client, uri = _OPEN["client"], _OPEN["uri"]
    if signals.RECEIVED:
        status = "KILLED"
    signals.restore_handlers(_OPEN.pop("previous_handlers", {}))
    from ffexp.tracking.summary import summarize
    outcome = {"FINISHED": "finished", "KILLED": "killed"}.get(status, "failed")
    steps = [lambda: summarize(client, _OPEN["experiment_id"], run_id,
                               handoff.skipped(_OPEN["sweep_dir"]), _OPEN["sweep_dir"]),
             lambda: client.set_tag(run_id, "ffexp.outcome", outcome),
             lambda: client.set_terminated(run_id, status)]
    errors = []
    for step in steps:  # each on its own: a store that takes some writes still gets the status
        try:
            step()
        except Exception as err:
            errors.append(err)
    if hint or errors:
        store.print_ui_command(uri, _OPEN.get("experiment_id"))
    if errors:
        from ffexp.tracking.faults import STALE_HINT, cause
        still = _still_running(client, run_id)
        fate = (f"left RUNNING (ffexp-sync {_OPEN.get('sweep_dir')} closes it {status} once "
                f"the store is back; else {STALE_HINT})") if still else f"closed {status}"
        if still:   # how the sweep ended, for ffexp-sync to set once the store is back
            _note_end(_OPEN.get("sweep_dir"), run_id, status, outcome)
        reason = cause(errors[0]) or (str(errors[0]).strip().splitlines() or [""])[0][:200]
        print(f"ffexp: warning: the sweep's parent run {run_id} in {uri}: {reason}; {fate}",
              file=sys.stderr, flush=True)


#: in a sweep's folder: how it ended, when its parent run could not be closed (the store was
#: away); ffexp-sync (ffexp.tracking.sync) closes the parent so once the store is back
END_FILE = "mlflow_sweep_end.json"


def _note_end(sweep_dir, run_id: str, status: str, outcome: str) -> None:
    import json
    import time
    if sweep_dir is None:
        return
    try:
        (Path(sweep_dir) / END_FILE).write_text(json.dumps(
            {"parent_run_id": run_id, "status": status, "outcome": outcome,
             "end_time": int(time.time() * 1000)}) + "\n")
    except OSError:
        pass


def _still_running(client, run_id: str) -> bool:
    try:
        return client.get_run(run_id).info.status == "RUNNING"
    except Exception:
        return True
