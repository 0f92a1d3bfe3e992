"""A sweep's jobs composed once per combination of config-group choices.

Hydra composes every job of a sweep from scratch where it runs (``load_sweep_config``): it
builds the defaults list (which files, in which packages), then loads, merges and validates
those files, about 0.1 s a job of ffexp, more than a job of the default sweep takes to train.
Both steps depend only on the group choices (``activation=tanh init=he``, ``hydra/...``), not
on the values a job sets (``seed=3``, ``optimizer.lr=0.01``), which Hydra applies afterwards
to the composed config. ``SweepLoader`` is Hydra's config loader that remembers the two steps'
results per process and sweep:

- the defaults list, keyed by the config sources, the primary config and the overrides that
  are not value overrides (Hydra's own split, ``hydra._internal.defaults_list.Overrides``); a
  job gets it with its own value overrides;
- the config composed from a defaults list, keyed by the sources and the list; a job gets a
  deep copy (Hydra then applies the job's overrides to it and the launcher sets its output
  directory), the remembered one is never handed out;
- the config files read for a new combination (where the search path is known to be
  unchanged): another combination reads a deep copy instead of the file.

Private parts: ``ConfigLoaderImpl`` subclassed (``_parse_overrides_and_create_caching_repo``,
``_load_configuration_impl``, ``_compose_config_from_defaults_list``), ``create_defaults_list``
of ``hydra._internal.config_loader_impl`` replaced while a SweepLoader composes, and
``CachingConfigRepository``; gated on hydra-core 1.3 (``sweep_loader``), Hydra's own loader
elsewhere (hydra-core 1.4 changed the first method's arguments).

Everything after them is Hydra's, unchanged: a job's config is the one Hydra composes
(tests/app/test_compose.py compares every job of a sweep). ffexp's sweeper
(hydra_plugins/ffexp_sweeper) gives it to the launcher for ffexp's app only; the launcher
pickles it to the workers with each job (joblib, SLURM), so a worker process remembers for
the jobs it runs, and the basic launcher reuses what the sweeper's check (ffexp.launch.sweeper)
composed. A sweep has a token; a loader of another sweep in the same process starts afresh,
since config files may have changed in between.
"""

from __future__ import annotations

import copy
import os
import pickle
import tempfile
import uuid
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser

from ffexp._compat.gate import supported

#: the hydra-core series whose private loader ``SweepLoader`` is tested against
TESTED = ((1, 3),)

try:
    import hydra._internal.config_loader_impl as _impl
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.config_repository import CachingConfigRepository
    from hydra._internal.defaults_list import DefaultsList, Overrides
except ImportError:  # a Hydra without these modules: the gate refuses it anyway
    _impl = None
    ConfigLoaderImpl = CachingConfigRepository = object


def sweep_loader(loader, config):
    """The loader a sweep's jobs compose with: the sweep's ``SweepLoader`` over ``loader``
    (the one made for this master config, if any) where the installed hydra-core is a tested
    series; None otherwise, and Hydra's own ``loader`` composes every job (warned once)."""
    if _impl is None or not supported("the sweep's composition memo", "hydra-core", TESTED):
        return None
    return for_sweep(config) or SweepLoader.of(loader, config)


#: what this process remembers, for one sweep (``token``)
_MEMO: dict[str, Any] = {"token": None}
_KINDS = ("parsed", "searchpath", "defaults", "configs")

#: the sweep being launched in this process: (its master config, its loader)
_CURRENT: list = [None, None]


def _memo(loader: SweepLoader) -> dict[str, Any]:
    if _MEMO["token"] != loader.token:
        _MEMO.update(token=loader.token, parsed={}, searchpath=set(), defaults={}, configs={},
                     files={})
        if loader.shared:
            try:
                with open(loader.shared, "rb") as f:
                    _MEMO.update(pickle.load(f))
            except Exception:  # noqa: BLE001 - a memo is never needed: compose afresh
                pass
    return _MEMO


def forget() -> None:
    """Drop what this process remembers (the memo of a sweep, the current sweep)."""
    _MEMO.clear()
    _MEMO["token"] = None
    _CURRENT[:] = [None, None]


def for_sweep(config) -> SweepLoader | None:
    """The loader of the sweep whose master config is ``config``, if this process made one
    (the tracking callback's check makes it, before Hydra sets up the sweeper)."""
    return _CURRENT[1] if _CURRENT[0] is config else None


def _sources(repo) -> tuple:
    return tuple((s.provider, s.path) for s in repo.get_sources())


#: the defaults lists a composition of this thread remembers, while a SweepLoader composes
_ACTIVE: ContextVar[dict | None] = ContextVar("ffexp_compose_defaults", default=None)
_CREATE_DEFAULTS_LIST = getattr(_impl, "create_defaults_list", None)


def _create_defaults_list(repo, config_name, overrides_list, prepend_hydra, skip_missing):
    """Hydra's ``create_defaults_list``, remembered while a SweepLoader composes (in this
    thread); Hydra's own call otherwise. ``_load_configuration_impl`` calls it by its
    module's name, where ``SweepLoader`` puts this (once, for the process: a swap per
    composition would race between two threads of a joblib threading backend)."""
    memo = _ACTIVE.get()
    if memo is None:
        return _CREATE_DEFAULTS_LIST(repo=repo, config_name=config_name,
                                     overrides_list=overrides_list,
                                     prepend_hydra=prepend_hydra, skip_missing=skip_missing)
    values = Overrides(repo=repo, overrides_list=overrides_list).config_overrides
    ids = {id(v) for v in values}
    others = [o for o in overrides_list if id(o) not in ids]
    key = (_sources(repo), config_name, prepend_hydra, skip_missing,
           tuple(o.input_line for o in others))
    known = memo.get(key)
    if known is None:
        known = memo[key] = _CREATE_DEFAULTS_LIST(repo=repo, config_name=config_name,
                                                  overrides_list=others,
                                                  prepend_hydra=prepend_hydra,
                                                  skip_missing=skip_missing)
    return DefaultsList(defaults=known.defaults, defaults_tree=known.defaults_tree,
                        config_overrides=values, overrides=known.overrides)


class _SharedFiles(CachingConfigRepository):
    """Hydra's repository of one composition over ``delegate`` (the loader's own, not a deep
    copy: no search path is set), whose config files are read once for the sweep: ``files``,
    the sweep's loaded files, of which the composition gets deep copies (Hydra's composition
    changes the files it loaded, e.g. where a ``+key=value`` override lands)."""

    def __init__(self, delegate, files: dict):
        self.delegate, self.cache, self.files = delegate, {}, files

    def load_config(self, config_path: str):
        key = f"config_path={config_path}"
        if key not in self.cache:
            if key not in self.files:
                self.files[key] = self.delegate.load_config(config_path=config_path)
            self.cache[key] = copy.deepcopy(self.files[key])
        return self.cache[key]


class SweepLoader(ConfigLoaderImpl):
    """Hydra's config loader for the jobs of one sweep (``token``), remembering per process
    the defaults list and the composed config of each combination of group choices."""

    token: str
    #: a file with what the launching process composed, which a worker reads once
    shared: str | None = None

    @classmethod
    def of(cls, loader: ConfigLoaderImpl, config=None) -> SweepLoader:
        """``loader`` (its search path and repository) for a new sweep, whose master config
        is ``config``."""
        sweep = cls.__new__(cls)
        sweep.__dict__.update(vars(loader))
        sweep.token = uuid.uuid4().hex
        _CURRENT[:] = [config, sweep]
        return sweep

    def share(self) -> None:
        """Write what this process composed (the sweeper's check: every combination of group
        choices) to a temporary file, which each worker on this machine reads once instead
        of composing them again (on another machine, a worker composes them)."""
        fd, path = tempfile.mkstemp(prefix="ffexp-compose-", suffix=".pickle")
        with os.fdopen(fd, "wb") as f:
            pickle.dump({kind: _memo(self)[kind] for kind in _KINDS}, f)
        self.shared = path

    def close(self) -> None:
        """The sweep is over: its file is removed and it is no longer current."""
        if self.shared:
            Path(self.shared).unlink(missing_ok=True)
            self.shared = None
        if _CURRENT[1] is self:
            _CURRENT[:] = [None, None]

    def _parse_overrides_and_create_caching_repo(self, config_name, overrides):
        """Hydra's: the overrides parsed, and a repository for one composition whose search
        path the primary config and the overrides set (``hydra.searchpath``); each override
        is parsed once, and a search path found to be unchanged is not looked up again."""
        memo = _memo(self)
        parsed = memo["parsed"]
        new = [line for line in dict.fromkeys(overrides) if line not in parsed]
        if new:
            parsed.update(zip(new, OverridesParser.create().parse_overrides(overrides=new)))
        overrides = [parsed[line] for line in overrides]
        key = (_sources(self.repository), config_name,
               tuple(o.input_line for o in overrides if o.get_key_element() == "hydra.searchpath"))
        if key in memo["searchpath"]:
            # Hydra's repository copies this loader's (a deep copy, ~10 ms) so that setting
            # the search path does not change it; here none is set: the copy is not needed,
            # and the files another composition of the sweep read are not read again
            return overrides, _SharedFiles(self.repository, memo["files"].setdefault(key, {}))
        repo = CachingConfigRepository(self.repository)
        self._process_config_searchpath(config_name, overrides, repo)
        if _sources(repo) == key[0]:
            memo["searchpath"].add(key)
        return overrides, repo

    def _load_configuration_impl(self, *args, **kwargs):
        _impl.create_defaults_list = _create_defaults_list
        active = _ACTIVE.set(_memo(self)["defaults"])
        try:
            return super()._load_configuration_impl(*args, **kwargs)
        finally:
            _ACTIVE.reset(active)

    def _compose_config_from_defaults_list(self, defaults, repo):
        key = (_sources(repo), tuple((d.config_path, d.parent, d.package, d.is_self, d.primary,
                                      d.override_key) for d in defaults))
        configs = _memo(self)["configs"]
        if key in configs:
            return copy.deepcopy(configs[key])
        cfg = super()._compose_config_from_defaults_list(defaults, repo)
        configs[key] = copy.deepcopy(cfg)
        return cfg


def handle(loader) -> tuple[str, str | None] | None:
    """What another process needs to compose with ``loader``'s memo (``rejoin``): its sweep's
    token and shared file; None for a loader that is not a SweepLoader (Hydra's own)."""
    return (loader.token, loader.shared) if isinstance(loader, SweepLoader) else None


def rejoin(loader, handle_: tuple[str, str | None] | None):
    """``loader`` (Hydra's, this process's) composing as the sweep's SweepLoader whose
    ``handle`` this is: the same memo where this process has one (the basic launcher's
    process, a joblib worker that composed the sweep's jobs), its shared file otherwise.
    Hydra's ``loader`` itself when ``handle_`` is None or the installed Hydra is not a tested
    series. The sweep's current loader (``for_sweep``) is left as it is."""
    if handle_ is None or _impl is None or not supported(
            "the sweep's composition memo", "hydra-core", TESTED):
        return loader
    sweep = SweepLoader.__new__(SweepLoader)
    sweep.__dict__.update({k: v for k, v in vars(loader).items() if k not in ("token", "shared")})
    sweep.token, sweep.shared = handle_
    return sweep


# ---- a job's config derived by value from another job's (ffexp.launch.stacked) -------------

#: the fields of a sweep job's config that Hydra and its launcher set per job, besides the
#: values its overrides set: what ``derive`` sets (``hydra.runtime.output_dir`` is set where
#: the job runs, as Hydra's ``run_job`` sets it)
PER_JOB = ("hydra.overrides.task", "hydra.job.override_dirname", "hydra.job.id", "hydra.job.num")


def derivable() -> bool:
    """Whether ``derive`` may be used (a tested hydra-core series)."""
    return _impl is not None and supported("a stack's configs derived by value", "hydra-core",
                                           TESTED)


#: overrides parsed by ``derive`` in this process, by line
_PARSED: dict[str, Any] = {}


def _parsed(lines: list[str]) -> list:
    new = [line for line in dict.fromkeys(lines) if line not in _PARSED]
    if new:
        _PARSED.update(zip(new, OverridesParser.create().parse_overrides(overrides=new)))
    return [_PARSED[line] for line in lines]


def derive(cfgs, hydra_nodes, overrides: list[str], values: list[str], job_id, job_num: int,
           before: list[str] = ()) -> None:
    """Make a job's composed config another job's of the same sweep, in place: the other job's
    ``overrides`` set the same keys as the first job's, by value (``key=value`` or
    ``++key=value``, none a config group; the same hydra overrides). ``cfgs``: the job's config
    with or without its ``hydra`` node (the same config in several copies), whose values the
    overrides set as Hydra's ``_apply_overrides_to_config`` sets them after composing;
    ``hydra_nodes``: its ``hydra`` nodes (of ``cfgs`` and others, e.g. ``HydraConfig``'s
    copy), whose per-job fields (``PER_JOB``) are set as ``_load_configuration_impl`` and the
    launcher set them. ``values``: those of the ``overrides`` that set values (the others,
    config groups and hydra overrides, equal the first job's); ``before``: the value overrides
    the configs hold now, which need not be applied again. ``key=v2`` applied over ``key=v1``
    gives what ``key=v2`` alone gives: both replace the value (tests/app/test_derive.py
    compares every job with Hydra's)."""
    from omegaconf import open_dict, read_write
    app = [o for o in _parsed(list(overrides)) if not o.is_hydra_override()]
    held = set(before)
    apply = _parsed([line for line in values if line not in held])
    for cfg in cfgs:
        if apply:
            with read_write(cfg), open_dict(cfg):
                ConfigLoaderImpl._apply_overrides_to_config(apply, cfg)
    lines = [o.input_line for o in app]
    for node in hydra_nodes:
        with read_write(node), open_dict(node):
            job, task = node.job, node.overrides.task
            if len(task) == len(lines):
                for i, line in enumerate(lines):
                    if task[i] != line:
                        task[i] = line
            else:
                node.overrides.task = lines
            job.override_dirname = _impl.get_overrides_dirname(
                overrides=app, kv_sep=job.config.override_dirname.kv_sep,
                item_sep=job.config.override_dirname.item_sep,
                exclude_keys=job.config.override_dirname.exclude_keys)
            job.id, job.num = job_id, job_num
