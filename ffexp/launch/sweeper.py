"""``hydra/sweeper=ffexp``, ffexp's default sweeper, and its check that a sweep's configs compose,
by composing a few of its jobs before any job runs.

``FfexpSweeper`` is written on Hydra's public ``Sweeper`` plugin API and expands a sweep as
Hydra's basic sweeper does (the same keys, ``max_batch_size`` and ``params``, the same jobs in
the same order). Hydra's basic sweeper composes the config of every job in the launching
process before it launches them (``validate_batch_is_legal``), and the launcher then composes
each job again where it runs. ffexp's sweeper composes instead, before anything is written,
the jobs ``plan`` picks, through ``check``; the
tracking callback (ffexp.launch.mlflow_sweep) calls ``check`` too, before it writes the store, and
the sweeper does not compose them again: a sweep composes each of them once, tracked or not.

``plan`` picks real jobs of the sweep (so a config it composes is one a job composes: a valid
sweep is never refused) until they cover

- every distinct combination of config-group choices (``activation=tanh init=he``; overrides
  of ``hydra.*``, of a group with a package and of a group the repository knows count as
  group choices), and
- every distinct value of every other override (``seed=3``, ``optimizer.lr=abc``),

composing, per combination, the job that covers the most values not yet covered, then jobs in
order for the values left. A 5 x 4 x 5 sweep (two groups and the seed) composes 20 configs.

Why this refuses what composing every job refused. What a composition can refuse is decided
by the defaults list and the schema: an unknown option (``activation=tanhh``), a group or
config that does not exist, and a malformed override are errors of one override, whatever
the others are; Hydra's defaults list interpolates only group choices, so the group choices
alone decide which files are merged and therefore the schema, the keys that exist, their
types. Each combination of choices is composed once, with a value of every swept key (a
basic sweep is a product: every job sets every key), so a key that does not exist under some
combination (``dataset=moons,iris dataset.params.noise=0.1,0.2``) fails there; each value is
composed once, so a value of the wrong type or a misspelled key (``optimizer.lr=0.1,abc``,
``train.epochs=3,2.5``) fails too. In ffexp every option of a group extends the group's one
schema (ffexp.job.settings), so a value's type does not even depend on the combination.

What it cannot refuse: a pair of overrides that compose separately but not together, e.g.
``++model.extra=null,1 +model.extra=[1],2``: ``+model.extra=2`` appends to a null key (fine)
but not to ``1``, and that one pair is the job no other choice forces ``plan`` to compose (a
value that is legal under one combination and not under another is the same case). Such a job
fails where the launcher composes it: the launching process gets the composition's error
(basic launcher: raised in the process; joblib: re-raised from the worker, with the worker's
traceback chained, and no further job is started), which the sweeper raises as
``JobDoesNotCompose`` and ``main`` prints as one ``ffexp: error: a job of the sweep does not
compose: ...`` line, exit status 2; the jobs before it have run, those after it do not.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.errors import ConfigCompositionException, HydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger(__name__)

#: ffexp's sweeper (hydra_plugins/ffexp_sweeper: Hydra takes plugins from there only), and
#: Hydra's basic sweeper: the two that expand a sweep as a product
FFEXP_SWEEPER = "hydra_plugins.ffexp_sweeper.ffexp_sweeper.FfexpSweeper"
BASIC_SWEEPERS = (FFEXP_SWEEPER, "hydra._internal.core_plugins.basic_sweeper.BasicSweeper")


def register() -> None:
    """ffexp's sweeper among Hydra's plugins, with ``hydra/sweeper=ffexp`` in the ConfigStore
    (idempotent). Hydra's plugin scan misses a package installed in editable mode (an import
    hook, not a directory), so the entry point registers it, by the name its config gives:
    the plugin module imports this one, not the reverse."""
    from hydra.core.plugins import Plugins
    from hydra.utils import get_class
    plugin = get_class(FFEXP_SWEEPER)   # importing it stores hydra/sweeper=ffexp
    Plugins.instance().register(plugin)
#: the sweeps this process has checked: (hydra overrides, jobs)
_CHECKED: set[tuple] = set()


def split_arguments(overrides, max_batch_size: int | None) -> list[list[list[str]]]:
    """The jobs of parsed overrides as Hydra's basic sweeper makes them: the cartesian product
    of every override's values, in command-line order, in batches of ``max_batch_size``."""
    lists: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise HydraException(f"ffexp's sweeper does not support sweep type: "
                                     f"{override.value_type.name} ({override.input_line}); "
                                     f"hydra/sweeper=optuna searches intervals")
            lists[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            lists[key] = [f"{key}={override.get_value_element_as_str()}"]
    jobs = [list(job) for job in itertools.product(*lists.values())]
    if max_batch_size is None or max_batch_size == -1:
        return [jobs]
    if max_batch_size < 1:
        raise HydraException(f"hydra.sweeper.max_batch_size={max_batch_size}: a batch holds at "
                             f"least one job (or null: the whole sweep)")
    return [jobs[i:i + max_batch_size] for i in range(0, len(jobs), max_batch_size)]


def expand(config, loader=None) -> list[list[str]]:
    """Every job's overrides, as the basic sweeper expands them (``hydra.sweeper.params``, then
    the command line's task overrides), in launch order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=loader)
    parsed = parser.parse_overrides(params + list(config.hydra.overrides.task))
    return split_arguments(parsed, None)[0]


def group_test(config, loader) -> Callable[[str], bool]:
    """Whether an override's key (``activation``, ``+experiment``, ``seed``) is a group choice:
    a group the master config chose (``hydra.runtime.choices``) or the repository knows, a
    package override (``dataset@x``), or anything under ``hydra``. When unsure, a group: that
    costs a composition, never a check."""
    choices = set(config.hydra.runtime.get("choices") or {})
    repository = getattr(loader, "repository", None)
    known: dict[str, bool] = {}

    def is_group(key: str) -> bool:
        if key not in known:
            name, at, _ = key.lstrip("+~").partition("@")
            try:
                exists = repository is None or bool(repository.group_exists(name))
            except Exception:
                exists = True
            known[key] = bool(at) or name == "hydra" or name.startswith(("hydra.", "hydra/")) \
                or name in choices or exists
        return known[key]

    return is_group


def plan(jobs: Sequence[Sequence[str]], is_group: Callable[[str], bool]) -> list[int]:
    """The indices (in order) of jobs that cover every combination of group choices and every
    override value not common to all jobs (the module's docstring says why that suffices)."""
    if not jobs:
        return []
    key = lambda override: override.split("=", 1)[0]
    common = set(jobs[0]).intersection(*map(set, jobs[1:]))
    uncovered = {o for job in jobs for o in job if o not in common and not is_group(key(o))}
    combos: dict[tuple[str, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        combos.setdefault(tuple(o for o in job if is_group(key(o))), []).append(i)
    chosen: set[int] = set()
    for members in combos.values():
        best = max(members, key=lambda i: len(uncovered.intersection(jobs[i])))
        chosen.add(best)
        uncovered.difference_update(jobs[best])
    for i, job in enumerate(jobs):  # more values of a key than combinations
        if not uncovered:
            break
        if uncovered.intersection(job):
            chosen.add(i)
            uncovered.difference_update(job)
    return sorted(chosen)


def check(config, jobs: Sequence[Sequence[str]], loader=None) -> int:
    """Compose the jobs ``plan`` picks, unless this process checked the same sweep already;
    raises the first composition's error (Hydra's or OmegaConf's exception). Returns how
    many configs it composed; the count is logged at debug level (``hydra.verbose=
    ffexp.launch.sweeper`` shows it), out of the console like Hydra's own line about its check."""
    key = (tuple(config.hydra.overrides.hydra), tuple(tuple(job) for job in jobs))
    if key in _CHECKED:
        return 0
    if str(config.hydra.sweeper.get("_target_")) == FFEXP_SWEEPER:  # it waits for them
        from ffexp._compat import joblib_workers as workers
        from ffexp.launch import stacked
        size = config.hydra.sweeper.get("max_batch_size") or -1
        batches = [jobs] if size < 1 else [jobs[i:i + size] for i in range(0, len(jobs), size)]
        if not stacked.in_process(config, batches):   # a stacked sweep of one task: none
            workers.start(config)
    if loader is None:      # the tracking callback's, before the sweeper is set up
        from hydra.core.global_hydra import GlobalHydra

        from ffexp._compat import hydra_compose
        loader = hydra_compose.sweep_loader(GlobalHydra.instance().config_loader(), config) \
            or GlobalHydra.instance().config_loader()
    t0 = time.perf_counter()
    picked = plan(jobs, group_test(config, loader))
    for i in picked:
        loader.load_sweep_config(config, list(jobs[i]))
    _CHECKED.add(key)
    log.debug("checked the configs of the sweep's %d jobs by composing %d of them in %.2f s",
              len(jobs), len(picked), time.perf_counter() - t0)
    return len(picked)


class JobDoesNotCompose(HydraException):
    """A job's config failed to compose where the launcher composed it, after ``check``
    passed: a combination of values ``plan`` did not compose. One line for ``main``."""

    def __init__(self, err: BaseException, sweep_dir: str) -> None:
        from ffexp.launch.config import hydra_error_line
        super().__init__(
            f"a job of the sweep does not compose: {hydra_error_line(err)} (the sweep's check "
            f"composes every value and every combination of groups, not every pair of values; "
            f"the jobs launched before it ran, outputs in {sweep_dir})")


def is_basic(config: Any) -> bool:
    """Whether the sweep's sweeper expands jobs as Hydra's basic sweeper does (ffexp's or
    Hydra's basic); False for Optuna and other sweepers."""
    return str(config.hydra.sweeper.get("_target_", "")) in BASIC_SWEEPERS


class GridSweeper(Sweeper):
    """ffexp's sweeper (``hydra/sweeper=ffexp``: hydra_plugins.ffexp_sweeper, since Hydra takes
    plugins from ``hydra_plugins`` only). Every combination of the swept values (Hydra's basic sweeper's jobs, in its order),
    launched in batches by the configured launcher; the whole sweep is checked once, before
    anything is written (``check``), instead of every job batch by batch."""

    def __init__(self, max_batch_size: Optional[int] = None,
                 params: Optional[Dict[str, str]] = None) -> None:
        self.max_batch_size, self.params = max_batch_size, dict(params or {})
        self.hydra_context: Any = None
        self.config: Any = None
        self.launcher: Any = None
        self.task_function: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        """The launcher composes the jobs with ffexp._compat.hydra_compose's loader where the
        installed Hydra is one its tests cover (each combination of group choices composed
        once per process); with Hydra's own loader otherwise."""
        from hydra.core.plugins import Plugins
        from hydra.types import HydraContext

        from ffexp._compat import hydra_compose
        loader = hydra_compose.sweep_loader(hydra_context.config_loader, config)
        if loader is not None:
            hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        self.hydra_context, self.config, self.task_function = hydra_context, config, task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def _watch(self, sweep_dir: Path):
        """While a launcher that runs the jobs elsewhere (submitit: SLURM, or its local
        executor) waits, each job's line on the console as it ends (ffexp.launch.watch)."""
        from contextlib import nullcontext

        from ffexp.launch.watch import Watcher, uses_remote_jobs
        return Watcher(sweep_dir) if uses_remote_jobs(self.launcher) else nullcontext()

    def sweep(self, arguments: List[str]) -> Any:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        from ffexp._compat import joblib_workers
        loader = self.hydra_context.config_loader
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(
            [f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        batches = split_arguments(parsed, self.max_batch_size)
        checked = False
        try:
            check(self.config, [job for batch in batches for job in batch], loader)
            checked = True
            getattr(loader, "share", lambda: None)()
            joblib_workers.wait()   # the joblib workers the check started
            sweep_dir = Path(self.config.hydra.sweep.dir)
            sweep_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            from ffexp.launch.resume import sift
            batches, _ = sift(self.config, loader, batches, sweep_dir)  # skip_existing
            returns, first = [], 0
            from ffexp.launch import stacked   # train.stack: one task per group of jobs
            stack = stacked.enabled(self.config, [job for batch in batches for job in batch])
            launcher = self.launcher
            if stack and stacked.in_process(self.config, batches):   # no worker processes
                launcher = stacked.local_launcher(self.hydra_context, self.task_function,
                                                  self.config)
            with self._watch(sweep_dir):
                for batch in batches:
                    results = stacked.launch(launcher, self.config, batch, first, loader) \
                        if stack else launcher.launch(batch, initial_job_idx=first)
                    for r in results:
                        _ = r.return_value   # raises a job's exception, as Hydra's sweeper does
                    first += len(batch)
                    returns.append(results)
            return returns
        except (ConfigCompositionException, OmegaConfBaseException) as err:
            if not checked:
                raise
            raise JobDoesNotCompose(err, str(self.config.hydra.sweep.dir)) from None
        finally:
            getattr(loader, "close", lambda: None)()
