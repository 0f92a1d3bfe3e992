"""One MLflow run per job: ``record_job`` opens it, the MetricsBuffer fills it during training,
and it is closed on every path.

Status: FINISHED when the job returns (a diverged run too: ``ffexp.outcome`` says so), FAILED
when it raises (tag ``ffexp.error``, artifact ``error/traceback.txt``), KILLED on Ctrl-C or
SIGTERM (handled here: MLflow by itself records Ctrl-C as FAILED and leaves a SIGTERM'd run
RUNNING). Everything goes through an explicit MlflowClient and run id, never MLflow's "active
run", so nothing leaks from one job into the next in a reused joblib worker.
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path

from ffexp._compat.mlflow_artifacts import prime as prime_artifacts

from . import faults, handoff, spool, store
from .buffer import MetricsBuffer, finite_metrics
from .diagnose import diagnose, diagnosis_tags
from .params import headline, run_params
from .signals import TimeLimit, deferred_sigterm, killed, sigterm_raises
from .snapshots import Snapshots
from .stale import mark_stale, process_tags, why_stale
from .summary import NOTE, run_note
from .tags import (RUN_KEY, USER, clip, config_hash, config_hashes, current_user,
                   experiment_tags, run_key, run_name, run_tags, short_error)

log = logging.getLogger("ffexp")

#: MLflow's limits per log_batch request
PARAMS_PER_CALL = 100
TAGS_PER_CALL = 100


def experiment_name(settings) -> str:
    """``tracking.experiment``, else the dataset's name (one experiment per dataset)."""
    return settings.tracking.experiment or settings.dataset.name


class Recorder:
    """The open run of one job: ``callbacks`` for training, ``finish(result)`` at the end."""

    def __init__(self, client, run_id: str, uri: str, experiment_id: str, settings, context,
                 name: str = "", job=None):
        self.client, self.run_id, self.uri = client, run_id, uri
        self.name, self.job = name, job
        self.experiment_id = experiment_id
        self.settings, self.context = settings, context
        self.buffer = MetricsBuffer(client, run_id, uri, settings.tracking.flush_seconds)
        self.snapshots = Snapshots(settings.tracking.snapshots, settings.train.epochs)
        self.callbacks = [self.buffer, self.snapshots]
        self.result = None
        #: ids of the unfinished runs of the same config this one reruns (skip_existing)
        self.rerun_of: list[str] = []
        #: metric values handed over but not stored (a killed metrics helper), once closed
        self.metrics_lost = 0

    @property
    def identity(self) -> str:
        """What the figures are titled with: the dataset and the run's name."""
        return f"{self.settings.dataset.name} · {self.name}" if self.name else \
            self.settings.dataset.name

    @property
    def hint(self) -> str:
        """What to print after a single run's summary (where to look at the runs)."""
        return store.ui_hint(self.uri, self.experiment_id)

    def finish(self, result) -> None:
        """Keep the JobResult; the run is written and closed when the ``with`` block ends."""
        self.result = result

    # -- closing --------------------------------------------------------------------------
    def close_finished(self) -> None:
        r, s = self.result, self.settings
        tags = {"ffexp.outcome": "finished"}
        if r is not None:
            train = r.train
            step = train.epochs
            # values logged every epoch (train/cost, val/…) already have their final value
            per_epoch = set(train.history[-1].flat()) if train.history else set()
            final = {k: v for k, v in r.metrics.items() if k not in per_epoch}
            self._artifacts(r)
            images = self.snapshots.log(self.client, self.run_id, r.net, r.dataset,
                                        self.identity, s.train.epoch_gradients)
            model_id = None
            if s.tracking.log_model and r.net is not None:
                model_id = spool.log_model(self.client, self.run_id, self.uri,
                                           self.experiment_id, r.net, r.dataset, step,
                                           self.identity, headline(s, self.job))
            # the final train/ and test/ values, linked to the LoggedModel they measure
            self.buffer.store_final(_linked(finite_metrics(final, step), model_id))
            found = diagnose(train.history, r.net)
            tags = {"ffexp.outcome": train.outcome, "ffexp.message": clip(train.message),
                    **diagnosis_tags(train.history, r.net, found),
                    NOTE: clip(run_note(self.name, s.dataset.name, train, r.metrics, found,
                                        images))}
            if train.diverged_epoch is not None:
                tags["ffexp.diverged_epoch"] = str(train.diverged_epoch)
        self._tags(tags)
        self.buffer.flush()  # last: the helper process stores the history meanwhile
        self._count_lost(tags.get(NOTE, ""))
        self.client.set_terminated(self.run_id, "FINISHED")

    def _count_lost(self, note: str) -> None:
        """If values handed to the metrics helper were not stored (it was killed): tag
        ``ffexp.metrics_lost=<n>`` and say it in the description (and, through
        ``metrics_lost``, on the console)."""
        self.metrics_lost = self.buffer.unstored()
        if self.metrics_lost:
            warning = (f"{self.metrics_lost} metric value(s) could not be stored (the metrics "
                       f"helper process stopped): the per-epoch histories have gaps")
            log.warning("run %s: %s", self.run_id, warning)
            self._tags({"ffexp.metrics_lost": str(self.metrics_lost),
                        NOTE: clip(f"**{warning}**\n\n{note}" if note else f"**{warning}**")})

    def close_broken(self, exc: BaseException) -> bool:
        """Close the run FAILED (KILLED, or timeout, when interrupted) with the error; each
        write is tried on its own, so a store that takes only some of them (a full disk) still
        gets the status. False if even that was refused: the run stays RUNNING, for the stale
        check (ffexp.tracking.stale)."""
        interrupted, store_cause = killed(exc), faults.cause(exc)
        message = (f"the MLflow store failed: {store_cause}" if store_cause else
                   short_error(f"{type(exc).__name__}: {exc}".strip().rstrip(":")))
        outcome = "timeout" if isinstance(exc, TimeLimit) else "killed" if interrupted \
            else "failed"
        steps = [("flush the metrics", self.buffer.flush),
                 ("tag the error", lambda: self._tags({
                     "ffexp.outcome": outcome, "ffexp.error": clip(message),
                     NOTE: clip(f"**{self.name}**: {outcome}: {message}")})),
                 ("count the metrics lost", lambda: self._count_lost(
                     f"**{self.name}**: {outcome}: {message}"))]
        if not interrupted and not store_cause:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            steps.append(("log the traceback",
                          lambda: self.client.log_text(self.run_id, text, "error/traceback.txt")))
        steps.append(("close the run", lambda: self.client.set_terminated(
            self.run_id, "KILLED" if interrupted else "FAILED")))
        for what, step in steps:
            try:
                step()
            except Exception as err:
                log.warning("could not %s of run %s: %s", what, self.run_id, err,
                            exc_info=True)
                if what == "close the run":
                    return False
        return True

    def _tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        for i in range(0, len(items), TAGS_PER_CALL):
            self.client.log_batch(self.run_id, tags=items[i:i + TAGS_PER_CALL])

    def _artifacts(self, r) -> None:
        """History CSV, Hydra's files, the resolved config, plots: written to one folder,
        logged in one call."""
        import yaml
        with tempfile.TemporaryDirectory(prefix="ffexp-run-") as tmp:
            tmp = Path(tmp)
            _write_history(r.train, tmp / "history.csv")
            (tmp / "config").mkdir()
            with open(tmp / "config" / "resolved.yaml", "w") as f:  # as client.log_dict writes it
                yaml.dump(self.context.config, f, indent=2, default_flow_style=False)
            hydra_dir = Path(self.context.output_dir or ".") / ".hydra"
            if hydra_dir.is_dir():
                shutil.copytree(hydra_dir, tmp / "hydra")
            if self.settings.tracking.log_plots:
                from ffexp.plots.figures import write_plots
                plots = tmp / "plots"
                plots.mkdir()
                write_plots(r.train, plots, r.net, r.dataset, self.identity,
                            self.settings.train.epoch_gradients)
                if self.context.output_dir:   # also beside the job's log: <output dir>/plots/
                    shutil.copytree(plots, Path(self.context.output_dir) / "plots",
                                    dirs_exist_ok=True)
            self.client.log_artifacts(self.run_id, str(tmp))


def _linked(metrics: list, model_id: str | None) -> list:
    """The metrics, linked to the LoggedModel ``model_id`` (when there is one)."""
    if model_id is None:
        return metrics
    from mlflow.entities import Metric
    return [Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id) for m in metrics]


def _write_history(train, path: Path) -> None:
    cols = train.columns()
    names = list(cols)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for i in range(len(cols["epoch"])):
            w.writerow(["" if math.isnan(cols[k][i]) else repr(cols[k][i]) for k in names])


def _log_params(client, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param
    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), PARAMS_PER_CALL):
        client.log_batch(run_id, params=items[i:i + PARAMS_PER_CALL])


def _end_leaked_fluent_run() -> None:
    """A reused joblib worker may still hold MLflow's active run of an earlier job."""
    import mlflow
    while mlflow.active_run() is not None:
        mlflow.end_run("KILLED")


def _target(settings, context):
    """(client, uri, experiment_id, sweep) for this job; sweep is the parent's SweepTarget or
    None (a single run, or a sweep without the callback)."""
    sweep = handoff.read(context.sweep_dir, context.sweep_uid) \
        if context.mode == "multirun" else None
    if sweep is not None:
        return store.client(sweep.tracking_uri), sweep.tracking_uri, sweep.experiment_id, sweep
    uri = store.resolve_uri(settings.tracking.uri)
    client, experiment_id = store.open_store(uri, experiment_name(settings),
                                             experiment_tags(settings.dataset.task))
    return client, uri, experiment_id, None


def _same_user(any_user: bool) -> str:
    """The search filter's clause that keeps the user's own runs (none with ``any_user``)."""
    if any_user:
        return ""
    return f" and tags.`{USER}` = '{current_user().replace(chr(39), chr(39) * 2)}'"


def existing_run_id(settings, context) -> str | None:
    """With ``tracking.skip_existing``: the id of a FINISHED run of the same experiment whose
    config hash (the resolved config without tracking settings) equals this job's, made by the
    same user (tag ``mlflow.user``; any user's with ``tracking.skip_existing_any_user``), else
    None."""
    if not settings.tracking.skip_existing:
        return None
    client, _, experiment_id, _ = _target(settings, context)
    for digest in config_hashes(context.config):
        found = client.search_runs([experiment_id], f"tags.`ffexp.config_hash` = '{digest}' "
                                   f"and attributes.status = 'FINISHED'"
                                   + _same_user(settings.tracking.skip_existing_any_user),
                                   max_results=1)
        if found:
            return found[0].info.run_id
    return None


#: the most runs ``finished_configs`` reads (MLflow's limit for one search)
MAX_RUNS = 50_000


def finished_configs(client, experiment_id: str, any_user: bool = False) -> dict[str, str]:
    """{config hash: run id} of the experiment's FINISHED job runs (the user's own unless
    ``any_user``), in one search: what a resumed sweep need not run (one run per
    hash when there are several: the newest, as ``existing_run_id`` finds it)."""
    runs = client.search_runs([experiment_id], "attributes.status = 'FINISHED'"
                              + _same_user(any_user), max_results=MAX_RUNS,
                              order_by=["attributes.start_time DESC"])
    found: dict[str, str] = {}
    for r in runs:
        if "ffexp.config_hash" in r.data.tags and r.data.tags.get("ffexp.kind") != "sweep":
            found.setdefault(r.data.tags["ffexp.config_hash"], r.info.run_id)
    return found


def earlier_attempts(client, experiment_id: str, settings, context) -> list[str]:
    """Ids of the unfinished runs (FAILED, KILLED, or RUNNING but stale, which are closed as
    such here) with this job's config hash: the job reruns them. A RUNNING run that still
    shows signs of life is not an earlier attempt (and is not skipped either)."""
    found = [run for digest in config_hashes(context.config)
             for run in client.search_runs([experiment_id],
                                           f"tags.`ffexp.config_hash` = '{digest}' "
                                           f"and attributes.status != 'FINISHED'"
                                           + _same_user(settings.tracking.skip_existing_any_user),
                                           max_results=1000)]
    ids = []
    for run in found:
        if run.info.status == "RUNNING":
            reason = why_stale(run, settings.tracking.stale_seconds)
            if reason is None or not mark_stale(client, run, reason):
                continue
        ids.append(run.info.run_id)
    return sorted(ids)


def open_run(settings, job, context) -> Recorder:
    # the job's client journals its run and spools it if the store goes away (spool.py)
    client, uri, experiment_id, sweep = spool.target(
        _target, settings, context, experiment_name(settings),
        experiment_tags(settings.dataset.task))
    tags = run_tags(context.config, context.overrides,
                    sweep.sweep_id if sweep else context.sweep_dir)
    tags.update(process_tags())
    if sweep:
        tags["mlflow.parentRunId"] = sweep.parent_run_id
        tags["ffexp.sweep_uid"] = sweep.sweep_uid
    tags[RUN_KEY] = run_key(sweep.sweep_uid if sweep else None, context.job_num)
    rerun_of = (earlier_attempts(client, experiment_id, settings, context)
                if settings.tracking.skip_existing else [])
    if rerun_of:
        tags["ffexp.rerun_of"] = clip(",".join(rerun_of))
    name = run_name(settings, context.overrides, sweep.varied if sweep else ())
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    prime_artifacts(client, run_id, run.info.artifact_uri)  # no read of the run to upload
    try:
        _log_params(client, run_id, run_params(settings, context.config, job))
        if job is not None:
            from .inputs import log_dataset
            log_dataset(client, run_id, job.dataset, job.task)
    except BaseException as exc:
        try:
            client.set_terminated(run_id, "FAILED")
            closed = True
        except Exception:
            closed = False
        faults.escalate(exc, uri, run_id, closed)
        raise
    recorder = Recorder(client, run_id, uri, experiment_id, settings, context, name, job)
    recorder.rerun_of = rerun_of
    return recorder


@contextmanager
def record_job(settings, job, context):
    """Open the job's MLflow run; close it FINISHED / FAILED / KILLED (see the module doc)."""
    _end_leaked_fluent_run()
    with sigterm_raises():
        try:
            recorder = open_run(settings, job, context)
        except Exception as exc:  # a store failure before the run exists: StoreFault
            faults.escalate(exc, store.resolve_uri(settings.tracking.uri), None, False)
            raise
        try:
            yield recorder
        except BaseException as exc:
            with deferred_sigterm():
                closed = recorder.close_broken(exc)
            faults.escalate(exc, recorder.uri, recorder.run_id, closed)
            raise
        else:
            with deferred_sigterm():
                try:
                    recorder.close_finished()
                except BaseException as exc:
                    closed = recorder.close_broken(exc)
                    faults.escalate(exc, recorder.uri, recorder.run_id, closed)
                    raise
