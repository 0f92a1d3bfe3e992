"""The ``ffexp`` command (and ``python -m ffexp``): the one composition root.

Hydra composes conf/ into a DictConfig; ``run`` converts it once into typed Settings, prepares
the job (every check before training), records it (ffexp.tracking.record_job) around
``execute`` and prints a short summary. Nothing else in ffexp sees a DictConfig.

Errors:

- a user's mistake (ValueError from the settings or ``prepare``) in a single run: one line
  ``ffexp: error: <message>`` on stderr, exit status 2, and no run is recorded;
- in a multirun, a failing job does not stop the others: its traceback goes to the job's log,
  its outcome to ``<job dir>/ffexp_status.json``, and ``main`` exits 1 after the sweep,
  naming the failed jobs. Status files (not Hydra's return values) carry this, so it works
  with launchers that run jobs in other processes (hydra/launcher=joblib);
- an unusable tracking store (no server at tracking.uri, a directory that cannot be written)
  is a user's mistake too, found before training (ffexp.tracking.check_store).

Resume: with ``tracking.skip_existing=true`` a job whose config already has a FINISHED run in
the experiment is skipped (status ``skipped``, with that run's id; it counts as a success); the
others run, and those that rerun a failed, killed or stale attempt say so (``rerun_of``).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits

from ffexp._compat import joblib_workers as workers
from ffexp.launch import cli, interrupted, lifeline, stacked
from ffexp.job.app import Job, JobResult, execute, prepare
from ffexp.job.settings import RunContext, Settings, activation_label
from ffexp.launch.config import (hydra_error_line, hydra_main_kwargs, register_schemas,
                                 to_settings)
from ffexp.job.progress import epoch_callbacks, job_line, print_job_line
from ffexp.launch.optuna_search import register as register_optuna
from ffexp.launch.optuna_search import trial_callbacks
from ffexp.launch.search import recorded_value, register_resolver
from ffexp.launch.sweeper import register as register_sweeper
from ffexp.launch.status import (STATUS_FILE, SWEEP_UID_ENV, USAGE_EXIT, SweepStatus, report_sweep,
                                 sweep_failures, sweep_records, varied_keys)
from ffexp.tracking import (check_store, existing_run_id, job_ended, note_skipped, record_job,
                            spooled)
from ffexp.tracking.faults import as_fault, refused_line, run_id_of
from ffexp.tracking.run import experiment_name
from ffexp.tracking.store import resolve_uri
from ffexp.tracking.signals import Terminated, TimeLimit, on_sigterm, sigterm_raises

log = logging.getLogger("ffexp")

#: the user's command line, handed to jobs that run in other processes
COMMAND_ENV = "FFEXP_COMMAND_LINE"


def register() -> None:
    """Everything ffexp's app needs in Hydra's singletons, explicitly and idempotently: the
    schemas (ConfigStore group ``schema``), the help template's and the search's resolvers,
    and ffexp's sweeper (``hydra/sweeper=ffexp``). The entry point calls it; importing ffexp
    registers nothing."""
    register_schemas()
    cli.register_help()
    register_resolver()
    register_sweeper()
    register_optuna()


# ---- the job --------------------------------------------------------------------------------


def run_context(cfg: DictConfig, hc: DictConfig) -> RunContext:
    """Where this job runs, from Hydra's config node."""
    multirun = hc.mode == RunMode.MULTIRUN
    return RunContext(
        mode="multirun" if multirun else "run",
        overrides=list(hc.overrides.task),
        output_dir=str(hc.runtime.output_dir),
        sweep_dir=str(Path(hc.sweep.dir).resolve()) if multirun else None,
        job_num=int(OmegaConf.select(hc, "job.num", default=0) or 0),
        job_id=str(OmegaConf.select(hc, "job.id", default="") or ""),
        command_line=os.environ.get(COMMAND_ENV) or shlex.join(sys.argv),
        config=OmegaConf.to_container(cfg, resolve=True),
        sweep_uid=OmegaConf.select(hc, f"job.env_set.{SWEEP_UID_ENV}") if multirun else None,
        varied=tuple(sorted(varied_keys(os.environ.get(COMMAND_ENV, ""),
                                        OmegaConf.select(hc, "sweeper.params")))) if multirun else ())


def _write_status(context: RunContext, status: str, seconds: float, outcome: str = "",
                  metric: tuple[str, float] | None = None, error: str = "",
                  metrics: dict[str, float] | None = None, run_id: str | None = None,
                  rerun_of: list[str] | None = None, spool: str | None = None,
                  run_name: str | None = None, signal_name: str | None = None,
                  count: bool = True) -> None:
    """``<output dir>/ffexp_status.json``: the job's verdict, read by ``main`` after a sweep.

    ``status``: ok | failed | killed (Ctrl-C, SIGTERM: ``signal`` names it) | skipped
    (``run_id`` is then the earlier FINISHED run) | spooled (the store was unreachable: the
    record is in ``spool``, ``run_id`` is the run created before the outage, if any); ``pid``:
    the process that ran the job (a joblib worker, or this process); ``run_name``: the name
    of the run ``run_id`` when the job made it (the sweep's tally need not read it back).
    ``count``: recount the sweep onto its parent run."""
    record = {"job_num": context.job_num, "job_id": context.job_id,
              "overrides": context.overrides, "status": status, "outcome": outcome,
              "metric": metric[0] if metric else None, "value": metric[1] if metric else None,
              "error": error, "seconds": round(seconds, 3), "metrics": metrics or {},
              "run_id": run_id, "rerun_of": rerun_of or [], "pid": os.getpid()}
    if spool:
        record["spool"] = spool
    if run_name is not None:
        record["run_name"] = run_name
    if signal_name:
        record["signal"] = signal_name
    path = Path(context.output_dir, STATUS_FILE)
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)  # whole or absent: the watcher and the tally read it meanwhile
    if count:
        job_ended(context)  # the sweep's parent counts it (ffexp.tracking.tally)


def _train_and_record(settings: Settings, job: Job, context: RunContext):
    """(result, recorder): the recorder tells the run's id and what it reruns."""
    with record_job(settings, job, context) as recorder, \
            threadpool_limits(limits=settings.train.blas_threads, user_api="blas"):
        callbacks = [*trial_callbacks(job, recorder),  # an Optuna trial: pruning
                     *epoch_callbacks(context.mode, job.main_metric), *recorder.callbacks]
        result = execute(job, callbacks)
        recorder.finish(result)
    return result, recorder


def _skip(settings: Settings, context: RunContext, t0: float) -> str | None:
    """With tracking.skip_existing: skip the job if its config has a FINISHED run (its id)."""
    run_id = existing_run_id(settings, context)
    if run_id is None:
        return None
    seconds = time.perf_counter() - t0
    note_skipped(context, run_id)
    _write_status(context, "skipped", seconds, "skipped", run_id=run_id)
    log.info("skipped: run %s already finished this config", run_id)
    if context.mode == "run":
        print(f"ffexp: skipped: run {run_id} already finished this config "
              f"(tracking.skip_existing=true)", flush=True)
    else:
        print_job_line(job_line(context.job_num, context.overrides, "skipped", seconds,
                                error=f"run {run_id} finished it before",
                                varied=context.varied))
    return run_id


def _fmt_metrics(metrics: dict[str, float], split: str) -> str:
    return "  ".join(f"{k.split('/', 1)[1]} {v:.4g}" for k, v in metrics.items()
                     if k.startswith(f"{split}/"))


def summary(job: Job, result: JobResult, context: RunContext) -> str:
    """The few lines a single run prints."""
    s, d, t = job.settings, job.dataset, result.train
    auto = lambda chosen, resolved: resolved if chosen == resolved else f"{resolved} ({chosen})"
    sizes = f"{d.X_train.shape[1]}/{d.X_val.shape[1]}/{d.X_test.shape[1]}"
    return "\n".join([
        f"ffexp: dataset={d.name} ({job.task}, train/val/test {sizes})  "
        f"activation={activation_label(s)}  init={s.init.name}  "
        f"loss={auto(s.loss.name, job.loss)}  optimizer={s.optimizer.name} "
        f"(lr={s.optimizer.lr:g}, batch_size={s.optimizer.batch_size})",
        f"  val   {_fmt_metrics(result.metrics, 'val')}" if d.has_validation else
        f"  train {_fmt_metrics(result.metrics, 'train')}  (no validation split: "
        f"dataset.val_fraction=0)",
        f"  test  {_fmt_metrics(result.metrics, 'test')}",
        f"  {t.outcome}: {t.message} ({t.epochs} epochs, {t.updates} updates) in "
        f"{result.seconds:.2f} s; outputs in {context.output_dir}",
    ])


def _main_metric(job: Job, result: JobResult) -> tuple[str, float] | None:
    key = job.main_key   # val/<metric>; train/<metric> with dataset.val_fraction=0
    return (key, result.metrics[key]) if key in result.metrics else None


def _job_failed(context: RunContext, err: BaseException, t0: float, stage: str,
                outcome: str = "failed") -> None:
    """A sweep job's failure: traceback to its log, a status file and one console line."""
    seconds = time.perf_counter() - t0
    from ffexp.tracking.tags import short_error  # no SQL text in the job's line
    text = (str(err).strip().splitlines() or [""])[0]  # the rest (SQL, ...) is in the log
    message = short_error(f"{type(err).__name__}: {text}" if stage == "train" else text)
    when = {"train": "while training", "prepare": "while preparing"}.get(stage, f"({stage})")
    log.error("job failed %s: %s", when, message, exc_info=stage in ("train", "store"))
    _write_status(context, "failed", seconds, outcome=outcome, error=message,
                  run_id=run_id_of(err))
    print_job_line(job_line(context.job_num, context.overrides, outcome.upper(), seconds,
                            error=message, varied=context.varied))


def _interrupted(context: RunContext, settings: Settings | None, err: BaseException,
                 t0: float) -> None:
    """A job stopped by Ctrl-C or SIGTERM (its run is closed KILLED): its status file, and one
    line: a single run's says which run and its state (ffexp.launch.interrupted); a sweep job's
    is its job line. A joblib worker then holds until its launcher ends it (it would take the
    sweep's next job; ffexp.launch.lifeline)."""
    seconds, run_id = time.perf_counter() - t0, run_id_of(err)
    reason = f"interrupted ({interrupted.what(err)})"
    try:
        _write_status(context, "killed", seconds, outcome="killed", error=reason, run_id=run_id,
                      signal_name="SIGTERM" if isinstance(err, Terminated) else "SIGINT")
    except Exception:  # noqa: BLE001 - the signal may have cut an import short (mlflow half
        # initialized): the parent's count fails, the status file is written; the job ends
        # by its signal, not by this
        log.warning("could not count the interrupted job on the sweep's parent",
                    exc_info=True)
    if context.mode == "run":
        uri = resolve_uri(settings.tracking.uri) if settings.tracking.enabled else None
        print(interrupted.run_line(err, uri, run_id, context.output_dir), file=sys.stderr,
              flush=True)
        err.ffexp_reported = True
        return
    print_job_line(job_line(context.job_num, context.overrides, "KILLED", seconds,
                            error=reason))
    if lifeline.in_worker() and lifeline.launcher_stopping(context.sweep_dir):
        lifeline.hold()


def _discard_output(out: Path) -> None:
    """A refused single run leaves no folder: Hydra creates ``outputs/<date>/<time>/`` (its
    ``.hydra`` record, the log) before ffexp can check anything, so ffexp removes what Hydra put
    there, and the folders above it that this leaves empty (up to the working directory)."""
    from ffexp.tracking.handoff import remove_empty
    shutil.rmtree(out / ".hydra", ignore_errors=True)
    (out / "ffexp.log").unlink(missing_ok=True)
    remove_empty(out)  # and outputs/<date>/ if empty; never the user's files


@hydra.main(config_path="pkg://ffexp.conf", config_name="config", **hydra_main_kwargs())
def run(cfg: DictConfig) -> float | None:
    """One job: compose -> Settings -> prepare -> record(execute) -> summary.

    Returns the main validation metric (for sweepers that optimize: a skipped job's recorded
    value), None if unavailable or the training diverged (Optuna counts a FAIL trial)."""
    t0 = time.perf_counter()
    if stacked.is_group(HydraConfig.get()):   # train.stack: a group of jobs (ffexp.launch.stacked)
        return stacked.run_group(HydraConfig.get())
    context = run_context(cfg, HydraConfig.get())
    if context.mode != "multirun":
        return _job(cfg, context, t0)
    if lifeline.in_worker():
        lifeline.watch_parent()  # ends this worker if its launcher is killed
        workers.settle()  # the modules out of the garbage collector's way
    # a sweep job: SIGTERM (scancel, a node's shutdown) raises from its first line to its
    # last, not only while its run is open (submitit's own handler ignores it until SLURM's
    # SIGKILL), and its status file is written the moment it arrives
    status, early = Path(context.output_dir, STATUS_FILE), []

    def at_signal(signum: int) -> None:
        if not status.exists():  # (a job that ended keeps its verdict)
            _status_at_signal(context, t0, signum)
            early.append(signum)

    with sigterm_raises(), on_sigterm(at_signal):
        try:
            return _job(cfg, context, t0)
        except (KeyboardInterrupt, Terminated) as err:
            if not getattr(err, "ffexp_status", False) and (early or not status.exists()):
                _interrupted(context, None, err, t0)  # stopped before its run was opened
            raise
        except TimeLimit as err:
            _job_failed(context, err, t0, "timeout", outcome="timeout")
            return None


def _status_at_signal(context: RunContext, t0: float, signum: int) -> None:
    """A sweep job's status file as SIGTERM arrives (``killed``, the signal, no run id yet;
    the parent is not updated here): what counts it if SIGKILL follows before the job ends
    (``_interrupted`` rewrites it with the run's id and updates the parent)."""
    name = signal.Signals(signum).name
    _write_status(context, "killed", time.perf_counter() - t0, outcome="killed",
                  error=f"interrupted ({name})", signal_name=name, count=False)


def _job(cfg: DictConfig, context: RunContext, t0: float) -> float | None:
    """``run`` past the stacked groups: settings, prepare, skip or train and record."""
    try:
        settings = to_settings(cfg, context.overrides)
        job = prepare(settings)
        check_store(settings, context)
    except ValueError as err:
        if context.mode == "run":
            _discard_output(Path(context.output_dir))
            print(f"ffexp: error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(USAGE_EXIT) from None
        _job_failed(context, err, t0, "prepare")
        return None
    log.info("settings: %s", settings)
    try:
        skipped = _skip(settings, context, t0)
        if skipped:
            return recorded_value(context.sweep_dir, skipped, f"val/{job.main_metric}")
        result, recorder = _train_and_record(settings, job, context)
    except TimeLimit as err:  # the run closed as KILLED (ffexp.outcome=timeout); the sweep goes on
        if context.mode == "run":
            raise
        _job_failed(context, err, t0, "timeout", outcome="timeout")
        return None
    except (KeyboardInterrupt, Terminated) as err:  # the run closed as KILLED
        _interrupted(context, settings, err, t0)
        err.ffexp_status = True
        raise
    except Exception as err:  # a sweep goes on; a single run lets Hydra report it
        fault = as_fault(err, resolve_uri(settings.tracking.uri))
        if context.mode == "run":
            refusal = refused_line(err, resolve_uri(settings.tracking.uri),
                                   experiment_name(settings))
            if refusal is not None:  # the server's accounts (HTTP 401/403): the user's to
                # sort out, as a preflight refusal is; the run was not created
                log.error("%s", refusal, exc_info=err)
                _discard_output(Path(context.output_dir))
                print(f"ffexp: error: {refusal}", file=sys.stderr, flush=True)
                raise SystemExit(USAGE_EXIT) from None
            if fault is None:
                raise
            log.error("%s", fault, exc_info=err)
            _write_status(context, "failed", time.perf_counter() - t0, "failed",
                          error=str(fault), run_id=fault.run_id)
            print(f"ffexp: error: {fault}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        _job_failed(context, fault or err, t0, "store" if fault else "train")
        return None
    metric = _main_metric(job, result)
    seconds = time.perf_counter() - t0
    log.info("%s: %s; metrics %s", result.train.outcome, result.train.message, result.metrics)
    rerun_of = getattr(recorder, "rerun_of", [])
    spool = spooled(recorder)
    if spool is not None:   # the store was unreachable: the record waits in the job's folder
        return _spooled(context, job, result, spool, metric, seconds)
    _write_status(context, "ok", seconds, result.train.outcome, metric,
                  metrics=result.metrics, run_id=recorder.run_id, rerun_of=rerun_of,
                  run_name=getattr(recorder, "name", None))
    lost = getattr(recorder, "metrics_lost", 0)
    lost_text = (f"{lost} metric value(s) of run {recorder.run_id} could not be stored (the "
                 f"metrics helper stopped; tag ffexp.metrics_lost={lost})") if lost else ""
    if context.mode == "run":
        print(summary(job, result, context), flush=True)
        if lost:
            print(f"ffexp: warning: {lost_text}", file=sys.stderr, flush=True)
        if recorder.hint:
            print(recorder.hint, flush=True)
    else:
        notes = [f"(rerun of {', '.join(rerun_of)})" if rerun_of else "", lost_text]
        print_job_line(job_line(context.job_num, context.overrides, result.train.outcome,
                                seconds, metric, error="; ".join(n for n in notes if n),
                                varied=context.varied))
    return metric[1] if metric and result.train.outcome != "diverged" else None


def _spooled(context: RunContext, job: Job, result: JobResult, spool, metric,
             seconds: float) -> float | None:
    """A job that trained while its store was unreachable: status ``spooled`` (with the
    spool's folder), one line saying where the record is and the command that uploads it.
    Not a failure: the training is done and its record is safe; ffexp-sync (or a resume with
    tracking.skip_existing=true) uploads it."""
    where = context.sweep_dir if context.mode == "multirun" else context.output_dir
    text = (f"the MLflow store was unreachable ({spool.reason}); the record is in "
            f"{spool.folder}; upload it with: ffexp-sync {shlex.quote(str(where))}")
    log.warning("spooled: %s", text)
    _write_status(context, "spooled", seconds, result.train.outcome, metric,
                  metrics=result.metrics, run_id=spool.created_run_id,
                  spool=str(spool.folder))
    if context.mode == "run":
        print(summary(job, result, context), flush=True)
        print(f"ffexp: warning: {text}", file=sys.stderr, flush=True)
    else:
        print_job_line(job_line(context.job_num, context.overrides, "spooled", seconds, metric,
                                error=f"(store unreachable: record in {spool.folder})",
                                varied=context.varied))
    return metric[1] if metric and result.train.outcome != "diverged" else None


def main() -> int:
    """The console script: Hydra's command line, then a sweep's verdict as the exit status.

    Hydra's own errors (a wrong type, an unknown option) come back as one line and exit status
    2, like ffexp's; HYDRA_FULL_ERROR=1 shows Hydra's full report instead."""
    from ffexp.tracking import handoff
    try:
        code = _main()
    except BrokenPipeError:  # `ffexp --help | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        handoff.release()  # the sweep directory's lock (claim_sweep_dir)
        workers.stop()     # those started for a sweep refused before its launch
    if code == interrupted.CTRL_C:
        interrupted.quiet_exit_by_sigint()  # the line is printed; end by SIGINT
    return code


def _main() -> int:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if "--version" in sys.argv[1:]:
        print(cli.version_text(), flush=True)
        return 0
    problem = cli.flag_problem(sys.argv[1:], dict(os.environ))
    if problem:
        print(f"ffexp: error: {problem}", file=sys.stderr, flush=True)
        return USAGE_EXIT
    os.environ.setdefault(COMMAND_ENV, shlex.join(["ffexp", *sys.argv[1:]]))
    sys.argv[1:] = cli.flags_first(sys.argv[1:])  # `ffexp seed=1 -m ...` as `ffexp -m seed=1 ...`
    register()
    SweepStatus.sweep_dir = None
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing: we print
    try:
        run()
    except (KeyboardInterrupt, Terminated) as err:  # one line, no traceback; runs KILLED
        if SweepStatus.sweep_dir is not None:
            print(interrupted.sweep_line(err, SweepStatus.sweep_dir), file=sys.stderr,
                  flush=True)
        elif not getattr(err, "ffexp_reported", False):
            print(f"ffexp: interrupted ({interrupted.what(err)}) before the run started; "
                  f"nothing was recorded", file=sys.stderr, flush=True)
        return interrupted.exit_code(err)
    except (HydraException, OmegaConfBaseException) as err:
        if full_error:
            raise
        print(f"ffexp: error: {hydra_error_line(err)}", file=sys.stderr, flush=True)
        return USAGE_EXIT
    except Exception as err:
        if SweepStatus.sweep_dir is None or full_error:
            raise  # a single run's failure keeps its traceback
        if not _lost_jobs(err):
            # a programming error (ffexp's or a library's): a resume cannot help, the
            # traceback is what a bug report needs
            print(f"ffexp: internal error: the sweep stopped on {type(err).__name__} (a bug, "
                  f"not a mistake in the command; outputs in {SweepStatus.sweep_dir}); the "
                  f"traceback follows", file=sys.stderr, flush=True)
            raise
        # the launcher lost jobs (joblib lost a worker to SIGKILL, SLURM cancelled a task):
        # the finished runs are kept; the same command with skip_existing finishes the sweep
        # (submitit's "Job 3_1 ... with path ..." / "has not produced any output (state:
        # CANCELLED ...)": its first two lines, which name the SLURM task and its state)
        lines = str(err).strip().splitlines() or [""]
        reason = " ".join(lines[:2] if type(err).__name__ == "UncompletedJobError" else lines[:1])
        print(f"ffexp: error: the sweep stopped: {type(err).__name__}: {reason} (outputs in "
              f"{SweepStatus.sweep_dir}); rerun the same command with "
              f"tracking.skip_existing=true to finish it", file=sys.stderr, flush=True)
        return 1
    if SweepStatus.sweep_dir is None:
        return 0
    return report_sweep(Path(SweepStatus.sweep_dir))


#: the exceptions by which a launcher says it lost jobs (not a bug): loky's dead worker and
#: broken pool, submitit's cancelled or failed SLURM task, a job process killed by a signal
_LOST_JOBS = ("TerminatedWorkerError", "BrokenProcessPool", "UncompletedJobError",
              "FailedJobError", "BrokenExecutor")


def _lost_jobs(err: BaseException) -> bool:
    """Whether ``err`` (raised by the launcher) says jobs were lost rather than a bug."""
    return any(type(e).__name__ in _LOST_JOBS for e in (err, err.__cause__, err.__context__)
               if e is not None)
