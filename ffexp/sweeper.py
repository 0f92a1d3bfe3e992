"""A sweep's configs checked before any job runs, by composing a few of its jobs (issue 15).

Hydra's basic sweeper composes the config of every job in the launching process before it
launches them (``validate_batch_is_legal``), and the launcher then composes each job again
where it runs: about 0.1 s per job, 12 s before the first job of a 100-job sweep. ffexp's
sweeper (hydra_plugins/ffexp_sweeper: the default, ``hydra/sweeper: basic`` or ``ffexp``)
composes instead, before anything is written, the jobs ``plan`` picks, through ``check``; the
tracking callback (ffexp.tracking.sweep) calls ``check`` too, before it writes the store, and
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
schema (ffexp.config), so a value's type does not even depend on the combination.

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

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from hydra.errors import HydraException

log = logging.getLogger(__name__)

#: ffexp's sweeper (hydra_plugins/ffexp_sweeper)
FFEXP_SWEEPER = "hydra_plugins.ffexp_sweeper.ffexp_sweeper.FfexpSweeper"
#: the sweeps this process has checked: (hydra overrides, jobs)
_CHECKED: set[tuple] = set()


def expand(config, loader=None) -> list[list[str]]:
    """Every job's overrides, as the basic sweeper expands them (``hydra.sweeper.params``, then
    the command line's task overrides), in launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=loader)
    parsed = parser.parse_overrides(params + list(config.hydra.overrides.task))
    return BasicSweeper.split_arguments(parsed, None)[0]


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
    ffexp.sweeper`` shows it), out of the console like Hydra's own line about its check."""
    key = (tuple(config.hydra.overrides.hydra), tuple(tuple(job) for job in jobs))
    if key in _CHECKED:
        return 0
    if str(config.hydra.sweeper.get("_target_")) == FFEXP_SWEEPER:  # it waits for them
        from ffexp import workers
        workers.start(config)
    if loader is None:      # the tracking callback's, before the sweeper is set up
        from hydra.core.global_hydra import GlobalHydra

        from ffexp.compose import SweepLoader, for_sweep
        loader = for_sweep(config) or SweepLoader.of(GlobalHydra.instance().config_loader(),
                                                     config)
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
        from ffexp.config import hydra_error_line
        super().__init__(
            f"a job of the sweep does not compose: {hydra_error_line(err)} (the sweep's check "
            f"composes every value and every combination of groups, not every pair of values; "
            f"the jobs launched before it ran, outputs in {sweep_dir})")


def is_basic(config: Any) -> bool:
    """Whether the sweep's sweeper expands jobs as Hydra's basic sweeper does (it or a
    subclass, as ffexp's); False for Optuna and other sweepers, or if it cannot be told."""
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.utils import get_class
        return issubclass(get_class(str(config.hydra.sweeper.get("_target_", ""))),
                          BasicSweeper)
    except Exception:
        return False


def register() -> bool:
    """Make ``hydra/sweeper: ffexp`` (and ``basic``) ffexp's sweeper (idempotent); False when
    the plugin cannot be imported (an editable install made before it existed: ``pip install
    -e .`` again), and Hydra's basic sweeper stays the default. Hydra finds plugins by
    scanning the ``hydra_plugins`` package, which misses a package installed in editable mode
    (an import hook, not a directory), so the entry point registers it.

    The plugin is imported after Hydra's scan: the scan executes the modules it finds again,
    BasicSweeper's among them, and a subclass of the class it replaced would not be one of
    the new class (``super(BasicSweeper, self)`` fails)."""
    from hydra.core.plugins import Plugins
    plugins = Plugins.instance()
    try:
        from hydra_plugins.ffexp_sweeper.ffexp_sweeper import FfexpSweeper  # stores the config
    except ImportError:
        return False
    plugins.register(FfexpSweeper)
    return True


#: why a sweep runs with Hydra's own sweeper (``register`` could not import ffexp's)
NOT_INSTALLED = ("ffexp: warning: ffexp's sweeper (hydra_plugins.ffexp_sweeper) is not "
                 "installed, so Hydra's composes every job before the first; pip install -e . "
                 "again in the checkout")
