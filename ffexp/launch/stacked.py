"""``train.stack=true``: a sweep's jobs of one shape trained as one stacked computation, one
launcher task per group, each job still its own job (ffexp.job.stacked, ffexp.tracking.stacked).

In the launching process (``launch``, called by ffexp's sweeper for each batch): the batch's
jobs are grouped by their overrides of keys that may change a network's shapes, the data or
anything else a stack must share (every key but ``STACKABLE``); jobs equal in those are one
group, in job order. Where a batch has fewer groups than the launcher runs tasks at once
(joblib's ``n_jobs``; ``workers``), each group is cut into consecutive sub-stacks of near-equal
size, at least ``MIN_STACK`` jobs each, so that every worker trains (``tasks``). Each task
goes to the configured launcher (basic, joblib, submitit) as the overrides of its first job
plus

- ``hydra.sweep.subdir=.stack/<n>`` and ``hydra.output_subdir=null``: the task's own folder
  (``<sweep dir>/.stack/<n>``, n its first job's number) holds its members (``members.json``,
  written here before the launch) and its log, and no ``.hydra`` record: it is not a job;
- ``+hydra.job.env_set.FFEXP_STACK=<n>``: what tells ffexp's task function that it runs a
  group (``is_group``).

A sweep whose every batch is one task is launched with Hydra's basic launcher instead of
joblib's (``in_process``): it runs in the launching process, and no joblib worker is started
(ffexp._compat.joblib_workers starts none for it either), as no second worker would train.

In the task (``run_group``, called by ffexp.launch.main.run): each member's config is composed
as the launcher composes a job's (``_compose``): the first member of each combination of the
overrides that are not values (config groups, hydra overrides, ``+`` and ``~``) by Hydra
(the sweep's master hydra overrides and the member's overrides, with the sweep's composition
memo, ffexp._compat.hydra_compose), the next members of that combination from it by value
(their values and Hydra's per-job fields set in place, ``hydra_compose.derive``; equal to
Hydra's composition, tests/app/test_derive.py); each is numbered (``hydra.job.num``: its number
in the sweep, as without stacking) and given its output folder (``hydra.sweep.subdir``), its
``.hydra`` record (the text Hydra writes, ffexp._compat.omegaconf_yaml) and its log; then each
member is prepared and checked as ``run`` does (members with equal ``dataset`` settings share
one loaded and split dataset; a member whose settings or data are refused, or whose config
already has a FINISHED run with ``tracking.skip_existing=true``, gets its status and job line
and leaves the group); the rest are trained as stacks of equal
ffexp.job.stacked.stack_key (the overrides' grouping is a guess by key; the prepared jobs'
shapes decide) through ffexp.tracking.stacked.record_stacked, and each member's status file
and job line are written as ``run`` writes them. A member's ``seconds`` are its own
composition and preparation plus its stack's training and recording (all members together).

Outside ffexp's grid sweeper (Optuna samples one job at a time) and in a single run,
``train.stack`` changes nothing. ``train.stack`` is a param of the run but not part of its
config hash (ffexp.tracking.tags): a stacked run computes what a separate one computes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

from omegaconf import OmegaConf, open_dict, read_write

log = logging.getLogger("ffexp")

#: the hidden key of a group's task (``hydra.job.env_set``): the number of its first job
STACK_ENV = "FFEXP_STACK"
#: a group task's folder under the sweep directory, and its list of members
STACK_DIR, PLAN = ".stack", "members.json"
#: override keys whose values jobs of one stack may differ in (the group keys ``activation``
#: and ``init`` with their own keys ``activation.*``, ``init.*``): none changes the network's
#: shapes, the optimizer, the loss or the training set's shape (ffexp.job.stacked.STACK_KEYS)
STACKABLE = ("seed", "activation", "init", "optimizer.lr", "train.epochs", "train.tol",
             "train.tol_on", "train.patience", "train.eval_every", "dataset.seed")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def stackable(override: str) -> bool:
    """Whether jobs differing in this override may train in one stack."""
    key = _key(override)
    return key in STACKABLE or key.startswith(("activation.", "init."))


def _stacks(config, job: Sequence[str]) -> bool:
    """``train.stack`` for this job: its override's value if it sets one, else the sweep's."""
    values = [o.split("=", 1)[1] for o in job if _key(o) == "train.stack"]
    if values:
        return values[-1].strip().lower() == "true"
    return bool(OmegaConf.select(config, "train.stack", default=False))


def groups(config, jobs: Sequence[Sequence[str]]) -> list[list[int]]:
    """The jobs' indices in groups: with ``train.stack`` true, jobs whose overrides of keys
    not ``STACKABLE`` are equal, in job order, groups in the order of their first job; a job
    with ``train.stack`` false is a group alone."""
    out: dict[Any, list[int]] = {}
    for i, job in enumerate(jobs):
        key = tuple(o for o in job if not stackable(o)) if _stacks(config, job) else ("alone", i)
        out.setdefault(key, []).append(i)
    return list(out.values())


def enabled(config, jobs: Sequence[Sequence[str]]) -> bool:
    """Whether any job of the sweep asks for stacking."""
    return any(_stacks(config, job) for job in jobs)


#: Hydra's joblib launcher, and its basic launcher (runs the tasks in the launching process)
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
#: a group is split into sub-stacks of at least this many jobs, one per idle worker
MIN_STACK = 10


def workers(config) -> int:
    """How many tasks the sweep's launcher runs at once: joblib's ``n_jobs`` (-1: one per
    CPU), 1 for any other launcher (basic: one after the other; submitit: its tasks are not
    split)."""
    launcher = config.hydra.get("launcher") or {}
    if launcher.get("_target_") != JOBLIB:
        return 1
    from joblib import effective_n_jobs
    try:
        return max(1, int(effective_n_jobs(launcher.get("n_jobs"))))
    except Exception:   # noqa: BLE001 - the launcher refuses it itself
        return 1


def tasks(config, jobs: Sequence[Sequence[str]]) -> list[list[int]]:
    """The batch's tasks (job indices, in job order): its ``groups``, and where there are
    fewer groups than the launcher's ``workers``, each group cut into up to
    ``ceil(workers / groups)`` sub-stacks of near-equal size, none below ``MIN_STACK`` jobs
    (consecutive jobs), so that every worker trains."""
    found = groups(config, jobs)
    n = workers(config)
    if len(found) >= n:
        return found
    out = []
    for members in found:
        parts = max(1, min(-(-n // len(found)), len(members) // MIN_STACK))
        size, extra = divmod(len(members), parts)
        start = 0
        for p in range(parts):
            end = start + size + (p < extra)
            out.append(members[start:end])
            start = end
    return out


def in_process(config, batches: Sequence[Sequence[Sequence[str]]]) -> bool:
    """Whether the stacked sweep runs in the launching process: every batch is one task and
    the launcher is joblib's, which would start worker processes for it (the basic launcher
    runs it there anyway; submitit's tasks stay SLURM's)."""
    launcher = config.hydra.get("launcher") or {}
    jobs = [job for batch in batches for job in batch]
    return bool(jobs) and launcher.get("_target_") == JOBLIB and enabled(config, jobs) and \
        all(len(tasks(config, batch)) <= 1 for batch in batches)


def local_launcher(hydra_context, task_function, config):
    """Hydra's basic launcher for the sweep (through Hydra's ``Launcher`` plugin interface):
    the tasks run one after the other in this process."""
    from hydra.utils import get_class
    launcher = get_class(BASIC_LAUNCHER)()
    launcher.setup(hydra_context=hydra_context, task_function=task_function, config=config)
    return launcher


def launch(launcher, config, batch: Sequence[Sequence[str]], first: int, loader) -> list:
    """Launch a batch of jobs (numbered from ``first``) as one task per group or sub-stack
    (``tasks``); the launcher's results (one per task)."""
    from ffexp._compat import hydra_compose
    sweep_dir = Path(str(config.hydra.sweep.dir))
    hydra_overrides = OmegaConf.to_container(config.hydra.overrides.hydra)
    handle = hydra_compose.handle(loader)
    launched = []
    for members in tasks(config, batch):
        n = first + members[0]
        folder = sweep_dir / STACK_DIR / str(n)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PLAN).write_text(json.dumps({
            "config_name": str(config.hydra.job.config_name),
            "hydra_overrides": hydra_overrides, "compose": handle,
            "members": [[first + i, list(batch[i])] for i in members]}, indent=1) + "\n")
        launched.append([*batch[members[0]], "hydra.output_subdir=null",
                         f"hydra.sweep.subdir={STACK_DIR}/{n}",
                         f"+hydra.job.env_set.{STACK_ENV}={n}"])
    return launcher.launch(launched, initial_job_idx=first)


def is_group(hc) -> bool:
    """Whether the task Hydra runs (its hydra node ``hc``) is a group of stacked jobs."""
    return OmegaConf.select(hc, f"job.env_set.{STACK_ENV}", default=None) is not None


# ---- in the task ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Member:
    num: int
    context: Any
    log_file: Path
    t0: float
    own: float = 0.0          # seconds of its own composition and preparation
    settings: Any = None
    job: Any = None


@contextmanager
def _logging_to(paths: Sequence[Path]):
    """The ffexp log's records also to each of ``paths`` (the members' ``ffexp.log``), in the
    format of the task's own log file."""
    root = logging.getLogger()
    fmt = next((h.formatter for h in root.handlers if isinstance(h, logging.FileHandler)), None)
    handlers = []
    for path in paths:
        handler = logging.FileHandler(path, encoding="utf-8")
        if fmt is not None:
            handler.setFormatter(fmt)
        root.addHandler(handler)
        handlers.append(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


def _member_job_id(hc, num: int) -> str:
    """The member's ``hydra.job.id`` as the launcher would give it: the basic launcher's
    number, joblib's ``<name>_<number>``; another launcher's id (a SLURM task's) unchanged."""
    task_id, task_num = str(hc.job.id), str(hc.job.num)
    if task_id == task_num:
        return str(num)
    if task_id.endswith(f"_{task_num}"):
        return f"{task_id[:-len(task_num)]}{num}"
    return task_id


def _by_value(override: str, is_group) -> bool:
    """Whether an override sets a value that ``derive`` may set over another job's value of
    the same key: ``key=value`` or ``++key=value`` of a key that is no config group, not
    under ``hydra``."""
    if override.startswith("~") or (override.startswith("+") and not override.startswith("++")):
        return False
    return "=" in override and not is_group(_key(override))


class _Template:
    """One combination of a group's overrides that are not by value: the config Hydra composed
    for its first member, made every next member's by value in place (``hydra_compose.derive``):
    ``cfg`` (the whole config), ``task`` (without its hydra node: what the job gets),
    ``hydra`` (HydraConfig's copy of the hydra node, its parent ``cfg``), ``keys`` (the keys
    of the first member's overrides by value, in order), ``held`` (the overrides by value the
    configs hold now)."""

    def __init__(self, cfg, keys: list[str]):
        from hydra.core.hydra_config import HydraConfig
        self.cfg, self.keys, self.held = cfg, keys, []
        self.task = copy.deepcopy(cfg)
        with read_write(self.task), open_dict(self.task):
            del self.task["hydra"]
        HydraConfig.instance().set_config(cfg)
        self.hydra = HydraConfig.instance().cfg


def _compose(plan: dict, hc):
    """Each member's (number, task config, seconds of its composition), in plan order, its
    output folder made with its ``.hydra`` record, ``HydraConfig`` set to its hydra node while
    the caller holds it (the configs are the next member's after). The first member of each
    combination of overrides not by value (``_by_value``) is composed as the launcher
    composes a job's (the sweep's master hydra overrides and the member's overrides, with the
    sweep's composition memo, ffexp._compat.hydra_compose); the next members of that
    combination get its config with their own values and per-job fields set
    (``hydra_compose.derive``; tests/app/test_derive.py: equal to Hydra's composition)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from ffexp._compat import hydra_compose
    from ffexp.launch.sweeper import group_test
    loader = hydra_compose.rejoin(GlobalHydra.instance().config_loader(), plan["compose"])
    master = OmegaConf.create({"hydra": {"overrides": {"hydra": plan["hydra_overrides"]},
                                         "job": {"config_name": plan["config_name"]}}})
    sweep_dir = str(hc.sweep.dir)
    task_hydra = HydraConfig.instance().cfg
    derivable = hydra_compose.derivable()
    templates: dict[tuple, _Template] = {}
    is_group = None
    try:
        for num, overrides in plan["members"]:
            t0 = time.perf_counter()
            job_id = _member_job_id(hc, num)
            key = values = None
            if is_group is not None:
                key = tuple(o for o in overrides if not _by_value(o, is_group))
                values = [_key(o) for o in overrides if _by_value(o, is_group)]
            template = templates.get(key) if derivable else None
            if template is not None and template.keys == values:
                lines = [o for o in overrides if _by_value(o, is_group)]
                hydra_compose.derive([template.cfg, template.task],
                                     [template.cfg.hydra, template.hydra.hydra],
                                     list(overrides), lines, job_id, num, template.held)
                template.held = lines
                HydraConfig.instance().cfg = template.hydra
            else:
                cfg = loader.load_sweep_config(master, list(overrides))
                with open_dict(cfg):
                    cfg.hydra.job.id = job_id
                    cfg.hydra.job.num = num
                if is_group is None:
                    is_group = group_test(cfg, loader)
                    key = tuple(o for o in overrides if not _by_value(o, is_group))
                    values = [_key(o) for o in overrides if _by_value(o, is_group)]
                template = templates[key] = _Template(cfg, values)
                template.held = [o for o in overrides if _by_value(o, is_group)]
            cfg = template.cfg
            subdir = str(OmegaConf.select(cfg, "hydra.sweep.subdir"))   # ${hydra.job.num} ...
            out = os.path.abspath(os.path.join(sweep_dir, subdir))
            for node in (cfg.hydra, template.hydra.hydra):
                with read_write(node.runtime), open_dict(node.runtime):
                    node.runtime.output_dir = out
            _save_record(cfg, template.task, template.hydra)
            yield num, template.task, time.perf_counter() - t0
    finally:
        HydraConfig.instance().cfg = task_hydra


def _save_record(cfg, task, hydra_cfg) -> None:
    """The member's output folder and its ``.hydra`` record, as Hydra's ``run_job`` writes
    them: config.yaml (the task's config), hydra.yaml, overrides.yaml (YAML text equal to
    ``OmegaConf.to_yaml``'s, ffexp._compat.omegaconf_yaml)."""
    from ffexp._compat.omegaconf_yaml import to_yaml
    out = Path(cfg.hydra.runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.hydra.output_subdir is None:
        return
    record = out / str(cfg.hydra.output_subdir)
    record.mkdir(parents=True, exist_ok=True)
    for name, node in (("config.yaml", task), ("hydra.yaml", hydra_cfg),
                       ("overrides.yaml", cfg.hydra.overrides.task)):
        (record / name).write_text(to_yaml(node), encoding="utf-8")


def _context(task, sweep_dir: str):
    """The member's RunContext, as ``run_context`` makes a job's (``HydraConfig`` holds the
    member's hydra node)."""
    from hydra.core.hydra_config import HydraConfig

    from ffexp.launch.main import run_context
    context = run_context(task, HydraConfig.get())
    return dataclasses.replace(context, sweep_dir=str(Path(sweep_dir).resolve()))


def run_group(hc) -> None:
    """Run the group of stacked jobs whose task this is (the module's docstring)."""
    from hydra.core.hydra_config import HydraConfig
    from threadpoolctl import threadpool_limits

    from ffexp.job.app import prepare
    from ffexp.job.progress import epoch_callbacks, job_line, print_job_line
    from ffexp.job.stacked import stack_groups
    from ffexp.launch import main as app
    from ffexp.launch.config import to_settings
    from ffexp.tracking import check_store, spooled
    from ffexp.tracking.faults import as_fault
    from ffexp.tracking.signals import TimeLimit
    from ffexp.tracking.stacked import record_stacked
    from ffexp.tracking.store import resolve_uri

    plan = json.loads((Path(str(hc.runtime.output_dir)) / PLAN).read_text())
    members: list[_Member] = []
    datasets: dict = {}   # one load and split per dataset settings (prepare's memo)
    for num, task, seconds in _compose(plan, hc):
        t0 = time.perf_counter()
        context = _context(task, str(hc.sweep.dir))
        m = _Member(num, context, Path(context.output_dir) / f"{HydraConfig.get().job.name}.log",
                    t0 - seconds)
        with _logging_to([m.log_file]):
            try:
                m.settings = to_settings(task, context.overrides)
                m.job = prepare(m.settings, datasets)
                check_store(m.settings, context)
            except ValueError as err:
                app._job_failed(context, err, m.t0, "prepare")
                continue
            log.info("settings: %s", m.settings)
            try:
                if app._skip(m.settings, context, m.t0):
                    continue
            except Exception as err:
                fault = as_fault(err, resolve_uri(m.settings.tracking.uri))
                app._job_failed(context, fault or err, m.t0, "store" if fault else "train")
                continue
        m.own = time.perf_counter() - m.t0
        members.append(m)

    for indices in stack_groups([m.job for m in members]):
        stack = [members[i] for i in indices]
        t0 = time.perf_counter()
        with _logging_to([m.log_file for m in stack]):
            log.info("trained as one stack of %d networks: jobs %s", len(stack),
                     ", ".join(str(m.num) for m in stack))
            try:
                with threadpool_limits(limits=stack[0].settings.train.blas_threads,
                                       user_api="blas"):
                    recorded = record_stacked(
                        [(m.settings, m.job, m.context) for m in stack],
                        [epoch_callbacks(m.context.mode, m.job.main_metric) for m in stack])
            except TimeLimit as err:   # every run closed KILLED; the sweep goes on
                shared = time.perf_counter() - t0
                for m in stack:
                    app._job_failed(m.context, err, time.perf_counter() - m.own - shared,
                                    "timeout", outcome="timeout")
                continue
        shared = time.perf_counter() - t0
        for m, (result, recorder, err) in zip(stack, recorded):
            start = time.perf_counter() - m.own - shared
            with _logging_to([m.log_file]):
                if err is not None:
                    fault = as_fault(err, resolve_uri(m.settings.tracking.uri))
                    app._job_failed(m.context, fault or err, start,
                                    "store" if fault else "train")
                    continue
                metric = app._main_metric(m.job, result)
                log.info("%s: %s; metrics %s", result.train.outcome, result.train.message,
                         result.metrics)
                rerun_of = getattr(recorder, "rerun_of", [])
                seconds = m.own + shared
                spool = spooled(recorder)
                if spool is not None:   # the store was unreachable (ffexp.tracking.spool)
                    app._spooled(m.context, m.job, result, spool, metric, seconds)
                    continue
                app._write_status(m.context, "ok", seconds, result.train.outcome, metric,
                                  metrics=result.metrics, run_id=recorder.run_id,
                                  rerun_of=rerun_of, run_name=getattr(recorder, "name", None))
                print_job_line(job_line(
                    m.num, m.context.overrides, result.train.outcome, seconds, metric,
                    error=f"(rerun of {', '.join(rerun_of)})" if rerun_of else "",
                    varied=m.context.varied))
    return None
