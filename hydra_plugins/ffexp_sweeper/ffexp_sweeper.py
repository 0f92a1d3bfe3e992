"""``hydra/sweeper=ffexp``: ffexp's sweeper as a Hydra plugin (Hydra instantiates plugins from
the ``hydra_plugins`` package only). The sweep itself is ffexp.launch.sweeper.GridSweeper."""

# no ``from __future__ import annotations``: Hydra's plugin scan executes this module before
# it is in sys.modules, where dataclasses look string annotations up
from dataclasses import dataclass
from typing import Dict, Optional

from ffexp.launch.sweeper import FFEXP_SWEEPER, GridSweeper


@dataclass
class FfexpSweeperConf:
    """``hydra/sweeper=ffexp``: the keys of Hydra's basic sweeper."""
    _target_: str = FFEXP_SWEEPER
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


class FfexpSweeper(GridSweeper):
    """ffexp.launch.sweeper.GridSweeper under the name Hydra's plugins must have."""


def store_config() -> None:
    """``hydra/sweeper=ffexp`` in Hydra's ConfigStore, as this module's ``FfexpSweeperConf``:
    Hydra's plugin scan executes this module again, and a config must name the class that
    ``pickle`` finds under its name (a joblib or SLURM job is pickled with its config)."""
    import inspect

    from hydra.core.config_store import ConfigStore
    store = ConfigStore.instance()
    replace = {"replace": True} if "replace" in inspect.signature(store.store).parameters else {}
    store.store(group="hydra/sweeper", name="ffexp", node=FfexpSweeperConf, provider="ffexp",
                **replace)


# Hydra's plugin scan (or its entry point) imports this module: the config goes with the class
store_config()
