"""``hydra/sweeper: optuna``: ffexp's Optuna search on Hydra's public Sweeper API. The keys
below; what they do, the search space's syntax and the study's storage: ffexp.launch.
optuna_search (imported when a sweep starts: this module, which Hydra's plugin scan imports in
every Hydra app, imports neither Optuna nor ffexp)."""

# no ``from __future__ import annotations``: Hydra's plugin scan executes this module before
# it is in sys.modules, where dataclasses look string annotations up
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper


class Sampler(Enum):
    tpe = "tpe"
    random = "random"
    grid = "grid"
    cmaes = "cmaes"
    nsga2 = "nsga2"


class Pruner(Enum):
    median = "median"
    halving = "halving"
    hyperband = "hyperband"
    none = "none"


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.ffexp_optuna.ffexp_optuna.OptunaSweeper"
    #: trials the study holds when the sweep ends (complete, pruned, failed; see the search)
    n_trials: int = 20
    #: trials in flight at once (a batch handed to the launcher)
    n_jobs: int = 1
    sampler: Sampler = Sampler.tpe
    pruner: Pruner = Pruner.median
    #: the sampler's seed (null: a random one)
    seed: Optional[int] = None
    #: metric names (val/accuracy, val/cost, ...); null: the task's main validation metric
    objectives: Optional[List[str]] = None
    #: an RDB URL; null: optuna.db next to the MLflow SQLite store
    storage: Optional[str] = None
    #: null: <experiment>-<hash of the search>
    study_name: Optional[str] = None
    #: median pruner: trials that complete before it prunes any
    startup_trials: int = 5
    #: epochs before the pruner may prune (median; halving and Hyperband's minimum resource)
    warmup_epochs: int = 0
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf,
                             provider="ffexp")


class OptunaSweeper(Sweeper):
    """Asks the study for trials, launches them through the configured launcher, tells it
    their outcomes (ffexp.launch.optuna_search.run_search)."""

    def __init__(self, **keys: Any) -> None:
        keys.pop("_target_", None)
        for name, value in keys.items():
            setattr(self, name, value.value if isinstance(value, Enum) else value)
        self.config = self.launcher = self.hydra_context = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def sweep(self, arguments: List[str]) -> Any:
        from ffexp.launch.optuna_search import run_search
        return run_search(self, arguments)
