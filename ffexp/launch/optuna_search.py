"""ffexp's Optuna search: the study behind ``hydra/sweeper: optuna`` (hydra_plugins/ffexp_optuna)
and the training callback that prunes a trial from its learning curve.

The search space is ``hydra.sweeper.params`` and the command line's sweeps (a key on the
command line replaces the config's space for that key), in Hydra's override syntax:

- ``choice(a, b, ...)`` or ``a,b,...``: categorical (lists such as ``[8,8]`` are kept as their
  override text);
- ``range(start, stop[, step])``: the integers (or floats) start, start+step, ... < stop, as
  Hydra's range; ``tag(log, range(1, n))``: log-uniform over the integers (step 1);
- ``interval(a, b)``: uniform in [a, b]; ``tag(log, interval(a, b))``: log-uniform, a > 0;
- anything else (``train.epochs=3``): passed to every trial as it is.

Objectives: ``hydra.sweeper.objectives`` (metric names, e.g. ``[val/accuracy, val/cost]``),
else the task's main metric ``val/<MAIN_METRIC[task]>``; each objective's direction follows
from its name: minimize a cost-like metric (…cost, …loss, mse, mae, hamming_loss), maximize the
others. A trial's value is the job's final metric (ffexp_status.json, what the run recorded).

A study lives in ``hydra.sweeper.storage`` (an RDB URL; by default ``optuna.db`` next to the
MLflow SQLite store, else in the working directory) under ``hydra.sweeper.study_name`` (by
default ``<experiment>-<8 hex digits>``, a hash of the search space, the objectives and the
command line's other overrides except ``tracking.*``, so the same command names the same
study). Trials counted toward ``hydra.sweeper.n_trials`` are the study's complete, pruned and
in-flight ones and those whose job failed; a sweep asks trials, ``n_jobs`` at a time, until the
study holds ``n_trials`` of them, so rerunning a command resumes its study and several sweeping
processes on one storage finish one study between them (trials are taken in the order of their
numbers; one asked beyond ``n_trials`` by a concurrent process is told FAIL at once, user attr
``ffexp_outcome=surplus``). A trial in flight whose sweeping process died stops sending
heartbeats and is told FAIL by the next sweep (after GRACE_SECONDS); a sweep interrupted by
Ctrl-C or SIGTERM tells its own trials in flight FAIL (``ffexp_outcome=interrupted``; the
signals wait while a trial is being asked, so none is left RUNNING). Neither counts.

Pruning: the job of trial N gets ``$FFEXP_OPTUNA_TRIAL=N`` and the sweep's
``$FFEXP_OPTUNA_STUDY`` (JSON: storage URL, study name, pruner), through
``hydra.job.env_set`` (so in a joblib worker or a SLURM task alike); its
``Pruning`` callback reports the validation main metric ``val/<main>`` at every epoch e ≥ 1 it
is measured (every ``train.eval_every`` epochs and the last) as the trial's intermediate value
at step e, and stops the training when the study's pruner says so. That run ends FINISHED with
``ffexp.outcome=pruned`` and ``ffexp.pruned_epoch=e``; the sweep tells the trial PRUNED (its
value: the last reported one). A diverged or failed job is a FAIL trial. Several objectives:
no intermediate values (Optuna prunes single-objective studies only; pruner must be ``none``).

MLflow: each trial's run (a child of the sweep's parent) is named by its sampled values and
tagged ``ffexp.optuna.study``, ``ffexp.optuna.trial`` (its number) and, once told,
``ffexp.optuna.state`` (COMPLETE | PRUNED | FAIL); the trial's user attrs hold ``ffexp_run_id``
and ``ffexp_outcome``. After the sweep the parent gets ``record_study``'s tags, metrics and the
artifact ``optuna/trials.csv``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.errors import HydraException

from ffexp.nn.history import Callback

log = logging.getLogger("ffexp")

#: the study a sweep's jobs report to (JSON: storage, study, pruner) and the trial a job runs
#: (its number), set through hydra.job.env_set
STUDY_ENV = "FFEXP_OPTUNA_STUDY"
TRIAL_ENV = "FFEXP_OPTUNA_TRIAL"
SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("median", "halving", "hyperband", "none")
#: the plugin's class, as ``hydra.sweeper._target_`` names it
SWEEPER = "hydra_plugins.ffexp_optuna.ffexp_optuna.OptunaSweeper"
#: heartbeats of trials in flight (seconds apart); a RUNNING trial without one for
#: GRACE_SECONDS is stale (its sweeping process died) and told FAIL by the next sweep
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
#: user attr ffexp_outcome values of FAIL trials that count toward n_trials
COUNTED_FAILS = ("failed", "diverged")


class SearchError(HydraException):
    """A search the sweeper cannot run (one line: the key, the value, what is accepted)."""


# ---- the search space -----------------------------------------------------------------------


def _name(override) -> str:
    """An override's key without its ``+``/``++``/``~`` prefix (``optimizer.lr``)."""
    return override.get_key_element().lstrip("+~")


def _choice_value(x: Any) -> Any:
    """A choice as Optuna keeps it: a number or bool as it is, anything else (a string, a
    list ``[8,8]``, null) as its override text."""
    from hydra.core.override_parser.types import Transformer
    if isinstance(x, (bool, int, float)):
        return x
    return Transformer.str(x)


def _range_values(sweep) -> list:
    """Hydra's range: start, start + step, ... before stop."""
    values, n = [], 0
    x = sweep.start
    while (x < sweep.stop) if sweep.step > 0 else (x > sweep.stop):
        values.append(x)
        n += 1
        x = sweep.start + n * sweep.step
    return values


def distribution(override):
    """The Optuna distribution of one sweep override (see the module's docstring)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)
    value, key = override.value(), _name(override)
    log_scale = "log" in (getattr(value, "tags", None) or ())
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        items = value.list if isinstance(value, ChoiceSweep) else _range_values(value)
        choices = list(dict.fromkeys(_choice_value(x) for x in items))
        if not choices:
            raise SearchError(f"{override.input_line}: no value to choose from")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        values = _range_values(value)
        if not values:
            raise SearchError(f"{override.input_line}: the range is empty")
        if all(isinstance(v, int) for v in (value.start, value.step)):
            if log_scale and value.step != 1:
                raise SearchError(f"{override.input_line}: tag(log, range(...)) takes step 1")
            return IntDistribution(values[0], values[-1], log=log_scale,
                                   step=1 if log_scale else int(value.step))
        if log_scale:
            raise SearchError(f"{override.input_line}: tag(log, ...) takes an integer range "
                              f"or an interval")
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if isinstance(value, IntervalSweep):
        low, high = float(value.start), float(value.end)
        if not low <= high or (log_scale and low <= 0):
            raise SearchError(f"{override.input_line}: an interval(a, b) needs a <= b"
                              f"{' and a > 0 on a log scale' if log_scale else ''}")
        return FloatDistribution(low, high, log=log_scale)
    raise SearchError(f"{key}: {override.input_line!r} is not a search space; accepted: "
                      f"choice(...), range(...), interval(a,b), tag(log, interval(a,b))")


def parse_space(params: Mapping[str, Any] | None, arguments: Sequence[str]):
    """(entries, space): every override by key, in order (``hydra.sweeper.params``, then the
    command line, which replaces a key's earlier entry), and the distributions of the swept
    keys. Raises Hydra's OverrideParseException for malformed syntax."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    entries: dict[str, Any] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        entries[_name(override)] = override
    space = {key: distribution(o) for key, o in entries.items() if o.is_sweep_override()}
    return entries, space


def encode(value: Any) -> str:
    """A sampled value as override text (a categorical choice is already text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def trial_overrides(entries: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    """A trial's job overrides: sampled values for the swept keys, the rest as given."""
    return [f"{o.get_key_element()}={encode(params[key])}" if key in params else o.input_line
            for key, o in entries.items()]


def searched_keys(config) -> tuple[str, ...]:
    """The keys a search varies (those of its sampled values), for the runs' names:
    ``hydra.sweeper.params`` and the command line's sweeps."""
    try:
        entries, _ = parse_space(config.hydra.sweeper.get("params"),
                                 list(config.hydra.overrides.task))
        return tuple(k for k, o in entries.items() if o.is_sweep_override())
    except Exception:   # the sweeper reports a malformed space itself
        return tuple(str(k).lstrip("+~") for k in config.hydra.sweeper.get("params") or {})


# ---- settings of a search ---------------------------------------------------------------------


def _choice(value: Any) -> str:
    return str(getattr(value, "name", value))


def objectives(config) -> list[str]:
    """``hydra.sweeper.objectives``, else the task's main validation metric."""
    chosen = config.hydra.sweeper.get("objectives")
    if chosen:
        names = [str(m) for m in chosen]
        for name in names:
            if name.split("/", 1)[0] not in ("train", "val", "test") or "/" not in name:
                raise SearchError(f"hydra.sweeper.objectives={name}: not a metric; accepted: "
                                  f"metric names such as val/accuracy, val/cost, val/r2")
        return names
    from ffexp.job.metrics import MAIN_METRIC
    task = str(config.dataset.task)
    if task not in MAIN_METRIC:
        raise SearchError(f"dataset.task={task}: no main metric; accepted: "
                          f"{', '.join(MAIN_METRIC)}")
    return [f"val/{MAIN_METRIC[task]}"]


def directions(metrics: Sequence[str]) -> list[str]:
    from ffexp.job.metrics import lower_is_better
    return ["minimize" if lower_is_better(m) else "maximize" for m in metrics]


def default_storage(config) -> str:
    """``optuna.db`` next to the MLflow SQLite file, else in the working directory."""
    from ffexp.tracking.store import resolve_uri, sqlite_path
    db = sqlite_path(resolve_uri(config.tracking.get("uri"), base=Path.cwd()))
    folder = db.parent if db is not None else Path.cwd()
    return f"sqlite:///{folder / 'optuna.db'}"


def storage_url(config) -> str:
    """``hydra.sweeper.storage`` (a relative SQLite path made absolute), else the default."""
    from ffexp.tracking.store import resolve_uri
    url = config.hydra.sweeper.get("storage")
    if not url:
        return default_storage(config)
    url = str(url)
    if "://" not in url:
        raise SearchError(f"hydra.sweeper.storage={url}: not a database URL; accepted: an RDB "
                          f"URL such as sqlite:///optuna.db or postgresql://user@host/db")
    return resolve_uri(url, base=Path.cwd())


def study_name(config, metrics: Sequence[str]) -> str:
    """``hydra.sweeper.study_name``, else ``<experiment>-<hash>`` (the module's docstring)."""
    if config.hydra.sweeper.get("study_name"):
        return str(config.hydra.sweeper.study_name)
    params = config.hydra.sweeper.get("params") or {}
    task = [o for o in config.hydra.overrides.task
            if not str(o).lstrip("+~").startswith("tracking.")]
    identity = json.dumps({"params": sorted(f"{k}={v}" for k, v in params.items()),
                           "overrides": sorted(map(str, task)), "objectives": list(metrics)})
    experiment = config.tracking.get("experiment") or config.dataset.name
    return f"{experiment}-{hashlib.sha1(identity.encode()).hexdigest()[:8]}"


def check(config):
    """The search's settings checked (SearchError, one line) and a few jobs whose configs
    cover every categorical choice and both ends of every numeric range, for ffexp.launch.sweeper's
    check to compose (a misspelled choice fails before anything is written); None when the
    sweeper is not this one."""
    sweeper = config.hydra.sweeper
    if str(sweeper.get("_target_")) != SWEEPER:
        return None
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise SearchError("hydra/sweeper=optuna needs Optuna: pip install 'ffexp[optuna]'") \
            from None
    for key in ("n_trials", "n_jobs"):
        if int(sweeper.get(key)) < 1:
            raise SearchError(f"hydra.sweeper.{key}={sweeper.get(key)}: accepted: an integer "
                              f">= 1")
    metrics = objectives(config)
    sampler, pruner = _choice(sweeper.sampler), _choice(sweeper.pruner)
    if len(metrics) > 1 and pruner != "none":
        raise SearchError(f"hydra.sweeper.pruner={pruner}: Optuna prunes single-objective "
                          f"studies only ({len(metrics)} objectives); accepted: none")
    if len(metrics) > 1 and sampler == "cmaes":
        raise SearchError("hydra.sweeper.sampler=cmaes: one objective only; accepted with "
                          "several objectives: tpe, random, grid, nsga2")
    entries, space = parse_space(sweeper.get("params"), list(config.hydra.overrides.task))
    if not space:
        raise SearchError("hydra.sweeper.params: no search space; accepted: choice(...), "
                          "range(...), interval(a,b) in hydra.sweeper.params or on the "
                          "command line")
    if sampler == "grid":
        grid_space(space)
    probe = {k: _ends(d)[0] for k, d in space.items()}
    jobs = []
    for key, dist in space.items():
        for value in _ends(dist):
            jobs.append(trial_overrides(entries, {**probe, key: value}))
    return jobs


def _ends(dist) -> list:
    from optuna.distributions import CategoricalDistribution
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high] if dist.low != dist.high else [dist.low]


def grid_space(space: Mapping[str, Any]) -> dict[str, list]:
    """Every value of every key (a grid takes choices and ranges, not intervals)."""
    from optuna.distributions import CategoricalDistribution
    out = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            out[key] = list(dist.choices)
        elif getattr(dist, "step", None):
            n = int(round((dist.high - dist.low) / dist.step)) + 1
            out[key] = [dist.low + i * dist.step for i in range(n)]
        else:
            raise SearchError(f"hydra.sweeper.sampler=grid: {key} is an interval; accepted "
                              f"with grid: choice(...) and range(...)")
    return out


def make_sampler(name: str, seed: int | None, space: Mapping[str, Any], n_objectives: int):
    import optuna
    s = optuna.samplers
    if name == "tpe":
        return s.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return s.RandomSampler(seed=seed)
    if name == "grid":
        return s.GridSampler(grid_space(space), seed=seed)
    if name == "cmaes":
        return s.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "nsga2":
        return s.NSGAIISampler(seed=seed)
    raise SearchError(f"hydra.sweeper.sampler={name}: accepted: {', '.join(SAMPLERS)}")


def make_pruner(spec: Mapping[str, Any]):
    """The pruner ``spec`` names (``pruner``, ``startup_trials``, ``warmup_epochs``); the same
    in the sweeping process and in the job's (a study's pruner is not in its storage)."""
    import optuna
    p, name = optuna.pruners, spec["pruner"]
    warmup = int(spec.get("warmup_epochs", 0))
    if name == "median":
        return p.MedianPruner(n_startup_trials=int(spec.get("startup_trials", 5)),
                              n_warmup_steps=warmup)
    if name == "halving":
        return p.SuccessiveHalvingPruner(min_resource=max(1, warmup) if warmup else "auto")
    if name == "hyperband":
        return p.HyperbandPruner(min_resource=max(1, warmup))
    if name == "none":
        return p.NopPruner()
    raise SearchError(f"hydra.sweeper.pruner={name}: accepted: {', '.join(PRUNERS)}")


def rdb_storage(url: str, heartbeat: bool = False):
    """An RDBStorage for ``url`` (SQLite waits up to 60 s for another process's write)."""
    import optuna
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    extra = {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS} \
        if heartbeat else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, **extra)


# ---- the study ----------------------------------------------------------------------------------


def counts(trial) -> bool:
    """Whether a trial counts toward n_trials (the module's docstring)."""
    from optuna.trial import TrialState
    if trial.state == TrialState.FAIL:
        return trial.user_attrs.get("ffexp_outcome") in COUNTED_FAILS
    return True


class _Heartbeats:
    """Records a heartbeat of every trial in flight every HEARTBEAT_SECONDS (a thread)."""

    def __init__(self, storage, study_id: int):
        self.storage, self.study_id = storage, study_id
        self.ids: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="optuna-heartbeat")

    def _beat(self) -> None:
        while not self.stop.is_set():
            for trial_id in list(self.ids):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as err:   # a missed beat; the next one may pass
                    log.debug("heartbeat of trial %s: %s", trial_id, err)
            self.stop.wait(HEARTBEAT_SECONDS)

    def add(self, number: int) -> None:
        """Beat for trial ``number`` from now on (a first beat at once)."""
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        self.storage.record_heartbeat(trial_id)
        self.ids.append(trial_id)
        if not self.thread.is_alive():
            self.thread.start()


def _status(ret) -> dict:
    """The job's ffexp_status.json (``{}`` if it wrote none)."""
    try:
        out = Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
        return json.loads((out / "ffexp_status.json").read_text())
    except Exception:
        return {}


def _values(status: dict, ret, metrics: Sequence[str]) -> list[float] | None:
    """The trial's objective values, or None (failed, diverged, a metric missing)."""
    if status.get("status") == "skipped":
        if len(metrics) == 1:
            value = ret.return_value if ret.status.name == "COMPLETED" else None
            return [float(value)] if value is not None and math.isfinite(value) else None
        return None
    if status.get("status") != "ok" or status.get("outcome") == "diverged":
        return None
    found = [status.get("metrics", {}).get(m) for m in metrics]
    if any(v is None or not math.isfinite(v) for v in found):
        return None
    return [float(v) for v in found]


def _tag_child(client, run_id: str | None, tags: Mapping[str, str]) -> None:
    if client is None or not run_id:
        return
    from mlflow.entities import RunTag
    try:
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    except Exception as err:   # a tag less; the trial is told anyway
        log.warning("could not tag run %s: %s", run_id, err)


@contextmanager
def _signals_held():
    """Within the block (asking a trial: it exists in the storage before ``ask`` returns),
    SIGTERM and SIGINT wait; at its end they are delivered again to the handlers they had."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda s, f: received.append(s))
                for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for signum in dict.fromkeys(received):
        signal.raise_signal(signum)


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _hand_to_jobs(config, spec: Mapping[str, Any]) -> None:
    """$FFEXP_OPTUNA_STUDY in every job's config (the launcher composes each job from the
    sweep's Hydra overrides and the job's own)."""
    from omegaconf import open_dict, read_write
    text = json.dumps(dict(spec))
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.overrides.hydra.append(f"++hydra.job.env_set.{STUDY_ENV}={_quoted(text)}")
        config.hydra.job.env_set[STUDY_ENV] = text


def run_search(sweeper, arguments: Sequence[str]) -> None:
    """The sweep of ``sweeper`` (the plugin: ``config``, ``launcher``, its keys): ask trials
    ``n_jobs`` at a time, launch them, tell their outcomes, until the study holds
    ``n_trials``; then the study on the parent run."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    from ffexp._compat.hydra_compose import for_sweep
    from ffexp.launch.sweeper import check as compose_check
    from ffexp.tracking import handoff, store

    config = sweeper.config
    compose_check(config, check(config))   # once per sweep: the tracking callback's, if it ran
    loader = for_sweep(config)
    if loader is not None:
        loader.close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metrics = objectives(config)
    entries, space = parse_space(config.hydra.sweeper.get("params"), list(arguments))
    sampler_name, pruner_name = _choice(sweeper.sampler), _choice(sweeper.pruner)
    n_trials = int(sweeper.n_trials)
    if sampler_name == "grid":
        n_trials = min(n_trials, math.prod(len(v) for v in grid_space(space).values()))
    url, name = storage_url(config), study_name(config, metrics)
    pruner_spec = {"pruner": pruner_name, "startup_trials": int(sweeper.startup_trials),
                   "warmup_epochs": int(sweeper.warmup_epochs)}
    storage = rdb_storage(url)
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                directions=directions(metrics),
                                sampler=make_sampler(sampler_name, sweeper.seed, space,
                                                     len(metrics)),
                                pruner=make_pruner(pruner_spec))
    if [d.name.lower() for d in study.directions] != directions(metrics):
        raise SearchError(f"hydra.sweeper.study_name={name}: the study in {url} "
                          f"{'/'.join(d.name.lower() for d in study.directions)}s, this search "
                          f"{'/'.join(directions(metrics))}s {', '.join(metrics)}; choose "
                          f"another study_name")
    with warnings.catch_warnings():   # heartbeats are "experimental" in Optuna 4 and 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        beating = rdb_storage(url, heartbeat=True)
        beating_study = optuna.load_study(study_name=name, storage=beating)

    def fail_stale() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(beating_study)

    fail_stale()
    study_id = beating.get_study_id_from_name(name)
    heartbeats = _Heartbeats(beating, study_id)
    sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
    target = handoff.read(sweep_dir)
    client = store.client(target.tracking_uri) if target is not None else None
    before = sum(counts(t) for t in study.get_trials(deepcopy=False))
    print(f"ffexp: optuna study {name} in {url} holds {before} of its {n_trials} trials; "
          f"sampler {sampler_name}, pruner {pruner_name}, "
          f"{' and '.join(f'{d} {m}' for d, m in zip(directions(metrics), metrics))}",
          flush=True)
    _hand_to_jobs(config, {"storage": url, "study": name, "report": len(metrics) == 1,
                           **pruner_spec})
    job_idx = 0
    in_flight: list = []
    skip = bool((config.get("tracking") or {}).get("skip_existing")) and target is not None
    from ffexp.launch import resume
    finished_before = resume.finished_before if skip else None
    try:
        while True:
            fail_stale()   # a dead sweep's trials in flight, GRACE_SECONDS after its last beat
            held = sum(counts(t) for t in study.get_trials(deepcopy=False))
            batch = min(int(sweeper.n_jobs), n_trials - held)
            if batch <= 0:
                break
            in_flight = []
            for _ in range(batch):
                with _signals_held():   # an asked trial is in flight, never lost
                    in_flight.append(study.ask(space))
                    trial = in_flight[-1]
                    heartbeats.add(trial.number)
                ahead = sum(counts(t) for t in study.get_trials(deepcopy=False)
                            if t.number < trial.number)
                if ahead >= n_trials:   # another process took the last ones
                    trial.set_user_attr("ffexp_outcome", "surplus")
                    study.tell(trial, state=TrialState.FAIL)
                    in_flight.pop()
                    heartbeats.ids.pop()
                    break
            if not in_flight:
                break
            if finished_before is not None:   # tracking.skip_existing: one query a batch
                in_flight, job_idx = _skip_finished(study, in_flight, entries, metrics,
                                                    sweeper, target, job_idx,
                                                    finished_before(config, target))
                heartbeats.ids = [t.number for t in in_flight]
                if not in_flight:
                    continue
            overrides = [[*trial_overrides(entries, t.params),
                          f"++hydra.job.env_set.{TRIAL_ENV}={t.number}"] for t in in_flight]
            returns = sweeper.launcher.launch(overrides, initial_job_idx=job_idx)
            job_idx += len(returns)
            for trial, ret in zip(in_flight, returns):
                _tell(study, trial, ret, metrics, client)
            in_flight = []
            heartbeats.ids = []
    finally:
        heartbeats.stop.set()
        for trial in in_flight:   # interrupted: the trials in flight do not count
            try:
                trial.set_user_attr("ffexp_outcome", "interrupted")
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            except Exception as err:
                log.warning("could not fail trial %d: %s", trial.number, err)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if client is not None:
            record_study(client, target.parent_run_id, study, metrics)
    write_results(sweep_dir, study, metrics)


def _skip_finished(study, trials: list, entries, metrics: Sequence[str], sweeper, target,
                   job_idx: int, finished: dict[str, str]) -> tuple[list, int]:
    """With ``tracking.skip_existing``: the asked ``trials`` whose config has a FINISHED run
    (``finished``: ffexp.launch.resume.finished_before, one query) are not launched. Each is
    told that run's objective values (COMPLETE; PRUNED if the run was pruned; FAIL if it
    diverged or lacks a value), with ``ffexp_run_id`` and ``ffexp_outcome=skipped``, and
    recorded as a skipped job (its status file, its line, the parent's count), numbered from
    ``job_idx``. Returns (the trials to launch, the next job number)."""
    from optuna.trial import TrialState

    from ffexp.launch import resume
    from ffexp.tracking import store
    if not finished:
        return trials, job_idx
    loader = sweeper.hydra_context.config_loader
    launch, skipped = [], []
    client = store.client(target.tracking_uri)
    for trial in trials:
        job = trial_overrides(entries, trial.params)
        run_id = resume.finished_run(loader, sweeper.config, job, finished)
        if run_id is None:
            launch.append(trial)
            continue
        run = client.get_run(run_id)
        values = [run.data.metrics.get(m) for m in metrics]
        trial.set_user_attr("ffexp_run_id", run_id)
        trial.set_user_attr("ffexp_outcome", "skipped")
        if run.data.tags.get("ffexp.outcome") == "pruned":
            _told(study, trial, state=TrialState.PRUNED)
        elif any(v is None or not math.isfinite(v) for v in values) or \
                run.data.tags.get("ffexp.outcome") == "diverged":
            _told(study, trial, state=TrialState.FAIL)
        else:
            _told(study, trial, values[0] if len(values) == 1 else values)
        skipped.append((job_idx, job, run_id))
        job_idx += 1
    if skipped:
        sweep_dir = Path(str(sweeper.config.hydra.sweep.dir)).resolve()
        resume.record_skipped(sweep_dir, skipped, target)
    return launch, job_idx


def _tell(study, trial, ret, metrics: Sequence[str], client) -> None:
    """Tell one trial its outcome (from the job's status file) and tag its run."""
    from optuna.trial import TrialState
    status = _status(ret)
    run_id = status.get("run_id")
    if run_id:
        trial.set_user_attr("ffexp_run_id", run_id)
    values = _values(status, ret, metrics)
    outcome = status.get("outcome") or "failed"
    if status.get("status") == "ok" and outcome == "pruned":
        trial.set_user_attr("ffexp_outcome", "pruned")
        frozen = _told(study, trial, state=TrialState.PRUNED)
    elif values is not None:
        trial.set_user_attr("ffexp_outcome", outcome)
        frozen = _told(study, trial, values[0] if len(values) == 1 else values)
    else:
        trial.set_user_attr("ffexp_outcome", "diverged" if outcome == "diverged" else "failed")
        frozen = _told(study, trial, state=TrialState.FAIL)
    _tag_child(client, run_id, {"ffexp.optuna.state": frozen.state.name})


def _told(study, trial, values=None, state=None):
    """``study.tell``; the grid sampler's "Study.stop ... inside an objective" once its grid is
    done comes after the trial is stored, and is ignored (n_trials is capped to the grid)."""
    try:
        return study.tell(trial, values, state=state)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise
        return next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)


# ---- the study on the parent run ---------------------------------------------------------------


def best_trials(study) -> list:
    """The best complete trials: all those sharing the best value (one objective), the Pareto
    front (several); in number order."""
    from optuna.trial import TrialState
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return []
    if len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.number)
    pick = max if study.direction.name == "MAXIMIZE" else min
    best = pick(t.value for t in done)
    return [t for t in done if t.value == best]


def record_study(client, parent_run_id: str, study, metrics: Sequence[str]) -> None:
    """The parent run's tags ``ffexp.optuna.study``, ``.direction`` (``maximize``, or one per
    objective joined by ``,``), ``.objectives``, ``.n_trials``, ``.best_trial``,
    ``.best_params``, ``.best_run_id`` (ties and a Pareto front: every best trial, ``,``- and
    `` | ``-separated, in number order); metrics ``optuna/best_value`` (one objective),
    ``optuna/trials_complete``, ``optuna/trials_pruned``, ``optuna/trials_failed``; and the
    artifact ``optuna/trials.csv`` (``study.trials_dataframe()``: every trial of the study,
    those of earlier or concurrent sweeps too)."""
    from mlflow.entities import Metric, RunTag
    from optuna.trial import TrialState

    from ffexp.tracking.tags import clip
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    tags = {"ffexp.optuna.study": study.study_name,
            "ffexp.optuna.direction": ",".join(d.name.lower() for d in study.directions),
            "ffexp.optuna.objectives": ",".join(metrics),
            "ffexp.optuna.n_trials": str(len(trials))}
    values = {"optuna/trials_complete": states.count(TrialState.COMPLETE),
              "optuna/trials_pruned": states.count(TrialState.PRUNED),
              "optuna/trials_failed": states.count(TrialState.FAIL)}
    best = best_trials(study)
    if best:
        tags["ffexp.optuna.best_trial"] = ",".join(str(t.number) for t in best)
        tags["ffexp.optuna.best_params"] = clip(" | ".join(
            " ".join(f"{k}={v}" for k, v in t.params.items()) for t in best))
        ids = [t.user_attrs.get("ffexp_run_id") for t in best]
        if all(ids):
            tags["ffexp.optuna.best_run_id"] = clip(",".join(ids))
        if len(study.directions) == 1:
            values["optuna/best_value"] = best[0].value
    now = int(time.time() * 1000)
    client.log_batch(parent_run_id,
                     metrics=[Metric(k, float(v), now, 0) for k, v in values.items()
                              if math.isfinite(v)],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    client.log_text(parent_run_id, study.trials_dataframe().to_csv(index=False),
                    "optuna/trials.csv")


def write_results(sweep_dir: Path, study, metrics: Sequence[str]) -> None:
    """``<sweep dir>/optimization_results.yaml``: the study, its counts and best trial(s)."""
    from omegaconf import OmegaConf
    from optuna.trial import TrialState
    states = [t.state for t in study.get_trials(deepcopy=False)]
    best = best_trials(study)
    summary = {"study": study.study_name, "objectives": list(metrics),
               "directions": [d.name.lower() for d in study.directions],
               "trials": {s.name.lower(): states.count(s) for s in
                          (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)},
               "best": [{"trial": t.number, "values": list(t.values), "params": dict(t.params),
                         "run_id": t.user_attrs.get("ffexp_run_id")} for t in best]}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "optimization_results.yaml").write_text(OmegaConf.to_yaml(summary))
    if best:
        shown = " | ".join(" ".join(f"{k}={encode(v)}" for k, v in t.params.items())
                           for t in best)
        print(f"ffexp: optuna study {study.study_name}: {states.count(TrialState.COMPLETE)} "
              f"complete, {states.count(TrialState.PRUNED)} pruned, "
              f"{states.count(TrialState.FAIL)} failed; best trial "
              f"{','.join(str(t.number) for t in best)}: "
              f"{', '.join(f'{m}={v:.4g}' for m, v in zip(metrics, best[0].values))} "
              f"({shown})", flush=True)


# ---- pruning in the job ---------------------------------------------------------------------------


class Pruning(Callback):
    """Reports ``key`` (the validation main metric) to the job's trial at every epoch ≥ 1
    where it is measured and stops the training when the pruner prunes the trial; the
    training's outcome becomes ``pruned`` (a FINISHED run with ``ffexp.pruned_epoch``). With
    several objectives it only tags the run."""

    def __init__(self, spec: Mapping[str, Any], key: str, recorder=None):
        self.spec, self.key, self.recorder = dict(spec), key, recorder
        self.trial = None
        self.pruned_at: int | None = None
        self.value = math.nan

    def on_train_begin(self, net, info: dict) -> None:
        if not self.spec.get("report", True):
            return
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = rdb_storage(self.spec["storage"])
        study = optuna.load_study(study_name=self.spec["study"], storage=storage,
                                  sampler=optuna.samplers.RandomSampler(),
                                  pruner=make_pruner(self.spec))
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(self.spec["study"]), int(self.spec["trial"]))
        self.trial = optuna.trial.Trial(study, trial_id)

    def on_epoch_end(self, net, stats) -> bool | None:
        if self.trial is None or stats.epoch < 1 or self.key not in stats.metrics:
            return None
        value = float(stats.metrics[self.key])
        if not math.isfinite(value):
            return None
        self.trial.report(value, stats.epoch)
        if self.trial.should_prune():
            self.pruned_at, self.value = stats.epoch, value
            return True
        return None

    def on_train_end(self, net, result) -> None:
        tags = {"ffexp.optuna.study": self.spec["study"],
                "ffexp.optuna.trial": str(self.spec["trial"])}
        if self.pruned_at is not None and result.outcome == "stopped":
            result.outcome = "pruned"
            result.message = (f"pruned by Optuna's {self.spec['pruner']} pruner at epoch "
                              f"{self.pruned_at} ({self.key} {self.value:.4g})")
            tags["ffexp.pruned_epoch"] = str(self.pruned_at)
        client = getattr(self.recorder, "client", None)
        run_id = getattr(self.recorder, "run_id", None)
        _tag_child(client, run_id, tags)


def trial_callbacks(job, recorder) -> list[Callback]:
    """The training callbacks of a job that is an Optuna trial ($FFEXP_OPTUNA_STUDY and
    $FFEXP_OPTUNA_TRIAL), else
    none; first in the list, so the others see a pruned outcome."""
    study, trial = os.environ.get(STUDY_ENV), os.environ.get(TRIAL_ENV)
    if not (study and trial):
        return []
    return [Pruning({**json.loads(study), "trial": int(trial)}, job.main_key, recorder)]


# ---- the plugin ---------------------------------------------------------------------------------


def register() -> bool:
    """Make ``hydra/sweeper: optuna`` ffexp's Optuna sweeper (idempotent); False when the
    plugin cannot be imported (an editable install made before it existed). Hydra's plugin
    scan misses ``hydra_plugins`` in an editable install (an import hook, not a directory),
    so the entry point registers it, as ffexp.launch.sweeper.register does ffexp's sweeper."""
    from hydra.core.plugins import Plugins
    from hydra.utils import get_class
    try:   # by the name its config gives (importing it stores hydra/sweeper=optuna)
        plugin = get_class("hydra_plugins.ffexp_optuna.ffexp_optuna.OptunaSweeper")
    except ImportError:
        return False
    Plugins.instance().register(plugin)
    return True
