"""``train.stack=true``: a sweep's jobs of one shape trained as one stacked computation, one
launcher task per group, each job still its own job (ffexp.job.stacked, ffexp.tracking.stacked).

In the launching process (``launch``, called by ffexp's sweeper for each batch): the batch's
jobs are grouped by their overrides of keys that may change a network's shapes, the data or
anything else a stack must share (every key but ``STACKABLE``); jobs equal in those are one
group, in job order. Each group is one task for the configured launcher (basic, joblib,
submitit): the overrides of its first job plus

- ``hydra.sweep.subdir=.stack/<n>`` and ``hydra.output_subdir=null``: the task's own folder
  (``<sweep dir>/.stack/<n>``, n its first job's number) holds its members (``members.json``,
  written here before the launch) and its log, and no ``.hydra`` record: it is not a job;
- ``+hydra.job.env_set.FFEXP_STACK=<n>``: what tells ffexp's task function that it runs a
  group (``is_group``).

In the task (``run_group``, called by ffexp.launch.main.run): each member's config is composed
as the launcher composes a job's (the sweep's master hydra overrides and the member's
overrides, with the sweep's composition memo, ffexp._compat.hydra_compose), numbered
(``hydra.job.num``: its number in the sweep, as without stacking), and given its output
folder (``hydra.sweep.subdir``), its ``.hydra`` record and its log; then each member is
prepared and checked as ``run`` does (a member whose settings or data are refused, or whose
config already has a FINISHED run with ``tracking.skip_existing=true``, gets its status and
job line and leaves the group); the rest are trained as stacks of equal
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


def launch(launcher, config, batch: Sequence[Sequence[str]], first: int, loader) -> list:
    """Launch a batch of jobs (numbered from ``first``) as one task per group; the launcher's
    results (one per task)."""
    from ffexp._compat import hydra_compose
    sweep_dir = Path(str(config.hydra.sweep.dir))
    tasks = []
    for members in groups(config, batch):
        n = first + members[0]
        folder = sweep_dir / STACK_DIR / str(n)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PLAN).write_text(json.dumps({
            "config_name": str(config.hydra.job.config_name),
            "hydra_overrides": list(config.hydra.overrides.hydra),
            "compose": hydra_compose.handle(loader),
            "members": [[first + i, list(batch[i])] for i in members]}, indent=1) + "\n")
        tasks.append([*batch[members[0]], "hydra.output_subdir=null",
                      f"hydra.sweep.subdir={STACK_DIR}/{n}",
                      f"+hydra.job.env_set.{STACK_ENV}={n}"])
    return launcher.launch(tasks, initial_job_idx=first)


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


def _compose(plan: dict, hc) -> list[tuple[int, Any]]:
    """Every member's full config (hydra node included) as the launcher composes a job's,
    its number and id set and its output folder made, with its ``.hydra`` record."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from ffexp._compat import hydra_compose
    loader = hydra_compose.rejoin(GlobalHydra.instance().config_loader(), plan["compose"])
    master = OmegaConf.create({"hydra": {"overrides": {"hydra": plan["hydra_overrides"]},
                                         "job": {"config_name": plan["config_name"]}}})
    sweep_dir = str(hc.sweep.dir)
    task_hydra = HydraConfig.instance().cfg
    out = []
    try:
        for num, overrides in plan["members"]:
            t0 = time.perf_counter()
            cfg = loader.load_sweep_config(master, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = _member_job_id(hc, num)
                cfg.hydra.job.num = num
            HydraConfig.instance().set_config(cfg)   # for ${hydra:...} in the subdir
            subdir = str(OmegaConf.select(cfg, "hydra.sweep.subdir"))
            with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
                cfg.hydra.runtime.output_dir = os.path.abspath(os.path.join(sweep_dir, subdir))
            HydraConfig.instance().set_config(cfg)
            _save_record(cfg, HydraConfig.instance().cfg)
            out.append((num, cfg, time.perf_counter() - t0))
    finally:
        HydraConfig.instance().cfg = task_hydra
    return out


def _save_record(cfg, hydra_cfg) -> None:
    """The member's output folder and its ``.hydra`` record, as Hydra's ``run_job`` writes
    them: config.yaml (the task's config), hydra.yaml, overrides.yaml."""
    out = Path(cfg.hydra.runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.hydra.output_subdir is None:
        return
    record = out / str(cfg.hydra.output_subdir)
    record.mkdir(parents=True, exist_ok=True)
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    for name, node in (("config.yaml", task), ("hydra.yaml", hydra_cfg),
                       ("overrides.yaml", cfg.hydra.overrides.task)):
        (record / name).write_text(OmegaConf.to_yaml(node), encoding="utf-8")


def _context(cfg, sweep_dir: str):
    """(the member's task config, its RunContext), as Hydra and ``run_context`` make a job's."""
    from hydra.core.hydra_config import HydraConfig

    from ffexp.launch.main import run_context
    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    try:
        context = run_context(task, HydraConfig.get())
    finally:
        HydraConfig.instance().cfg = saved
    return task, dataclasses.replace(context, sweep_dir=str(Path(sweep_dir).resolve()))


def run_group(hc) -> None:
    """Run the group of stacked jobs whose task this is (the module's docstring)."""
    from threadpoolctl import threadpool_limits

    from ffexp.job.app import prepare
    from ffexp.job.progress import epoch_callbacks, job_line, print_job_line
    from ffexp.job.stacked import stack_groups
    from ffexp.launch import main as app
    from ffexp.launch.config import to_settings
    from ffexp.tracking import check_store
    from ffexp.tracking.faults import as_fault
    from ffexp.tracking.signals import TimeLimit
    from ffexp.tracking.stacked import record_stacked
    from ffexp.tracking.store import resolve_uri

    plan = json.loads((Path(str(hc.runtime.output_dir)) / PLAN).read_text())
    members: list[_Member] = []
    for num, cfg, seconds in _compose(plan, hc):
        t0 = time.perf_counter()
        task, context = _context(cfg, str(hc.sweep.dir))
        m = _Member(num, context, Path(context.output_dir) / f"{cfg.hydra.job.name}.log",
                    t0 - seconds)
        with _logging_to([m.log_file]):
            try:
                m.settings = to_settings(task)
                m.job = prepare(m.settings)
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
                app._write_status(m.context, "ok", seconds, result.train.outcome, metric,
                                  metrics=result.metrics, run_id=recorder.run_id,
                                  rerun_of=rerun_of, run_name=getattr(recorder, "name", None))
                print_job_line(job_line(
                    m.num, m.context.overrides, result.train.outcome, seconds, metric,
                    error=f"(rerun of {', '.join(rerun_of)})" if rerun_of else ""))
    return None
