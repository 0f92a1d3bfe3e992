"""MLflow tracking at the edge: one run per job, one parent run per sweep.

The composition root calls::

    with record_job(settings, job, context) as recorder:
        result = execute(job, callbacks=[..., *recorder.callbacks])
        recorder.finish(result)

``settings`` is the typed ffexp.job.settings.Settings, ``job`` the ffexp.job.app.Job, ``context`` the
ffexp.job.settings.RunContext (mode, overrides, output/sweep dirs, job number, command line,
resolved config as a plain dict). On an exception the context manager marks the run FAILED
(KILLED on KeyboardInterrupt / SIGTERM) and re-raises. With ``tracking.enabled=false`` it
yields a NullRecorder and MLflow is not even imported.

Modules: store (URI, experiment, UI command), params, tags, buffer (the metrics callback),
diagnose, model (npz + pyfunc), run (record_job), sweep (the Hydra callback of a multirun),
handoff (the parent run's id, passed to jobs through a file in the sweep directory), signals,
stale (heartbeats, stale runs, ffexp-stale), preflight (is the store usable, before training),
spool (a job's record kept in its folder while the store is unreachable) and sync (ffexp-sync:
spooled records uploaded once the store is back).
"""

from __future__ import annotations

from contextlib import contextmanager


class NullRecorder:
    """Records nothing: used when tracking.enabled is false."""

    callbacks: list = []
    run_id = None
    #: what to print after a single run's summary (where to look at the runs)
    hint = ""
    #: metric values that could not be stored
    metrics_lost = 0

    def finish(self, result) -> None:
        pass


@contextmanager
def record_job(settings, job, context):
    """The job's MLflow run (see ffexp.tracking.run), or a NullRecorder when disabled."""
    if not settings.tracking.enabled:
        yield NullRecorder()
        return
    from .run import record_job as recording
    with recording(settings, job, context) as recorder:
        yield recorder


def existing_run_id(settings, context) -> str | None:
    """For ``tracking.skip_existing=true``: the id of a FINISHED run with this job's config hash
    in its experiment (the entry point may then skip the job), else None."""
    if not (settings.tracking.enabled and settings.tracking.skip_existing):
        return None
    from .run import existing_run_id as find
    return find(settings, context)


def check_store(settings, context) -> None:
    """ValueError naming ``tracking.uri`` if the job's store cannot be used (an HTTP server that
    does not answer, a SQLite file that cannot be created, a scheme MLflow cannot record in, an
experiment name MLflow refuses): before training, nothing created.
    A sweep's job skips it: the launching process checked before the sweep began."""
    if not settings.tracking.enabled:
        return
    from . import handoff
    if context.mode == "multirun" and \
            handoff.read(context.sweep_dir, context.sweep_uid) is not None:
        return
    from .preflight import check_experiment_name, check_store as check
    from .store import resolve_uri
    check_experiment_name(settings.tracking.experiment)
    check(resolve_uri(settings.tracking.uri))


def note_skipped(context, run_id: str) -> None:
    """Tell the sweep's parent that this job was skipped for the FINISHED run ``run_id``."""
    if context.mode == "multirun":
        from . import handoff
        handoff.note_skipped(context.output_dir, run_id)


def job_ended(context) -> None:
    """A job of a tracked sweep wrote its status file: recount the sweep's jobs onto its parent
    run (ffexp.tracking.tally); nothing outside a sweep, or without a parent."""
    if context.mode == "multirun" and context.sweep_dir:
        from . import handoff
        try:
            target = handoff.read(context.sweep_dir, context.sweep_uid)
        except (OSError, ValueError):
            return
        if target is not None:
            from .tally import update_parent
            update_parent(context.sweep_dir, target)


def spooled(recorder):
    """The job's spool (ffexp.tracking.spool.SpoolingClient: ``folder``, ``reason``,
    ``created_run_id``) if its record went there because the store was unreachable, else
    None."""
    if isinstance(recorder, NullRecorder):
        return None
    from .spool import spooled as spool_of
    return spool_of(recorder)


def close_sweep(exc: BaseException | None = None, hint: bool = True) -> None:
    """Close this process's sweep parent run if it is still open: FINISHED without ``exc``,
    KILLED for Ctrl-C / SIGTERM, FAILED otherwise. For the entry point, around Hydra: Hydra
    skips on_multirun_end when a job raised. A no-op when no sweep is open. ``hint``: print
    where to look at the runs."""
    from .sweep import close_open_sweep, status_of
    close_open_sweep(status_of(exc), hint=hint)


__all__ = ["NullRecorder", "check_store", "close_sweep", "existing_run_id", "job_ended",
           "note_skipped", "record_job", "spooled"]
