"""``hydra/sweeper: ffexp``, ffexp's default sweeper: Hydra's basic sweeper, the same keys
(``max_batch_size``, ``params``) and the same jobs, whose check that the jobs compose composes
a few of them (ffexp.sweeper, which says which and why that suffices) before anything
is written, instead of every job, batch by batch, after writing ``multirun.yaml``."""

# no ``from __future__ import annotations``: Hydra's plugin scan executes this module before
# it is in sys.modules, where dataclasses look string annotations up
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf.errors import OmegaConfBaseException


@dataclass
class FfexpSweeperConf:
    _target_: str = "hydra_plugins.ffexp_sweeper.ffexp_sweeper.FfexpSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


# ``ffexp`` names it; ``basic`` (Hydra's default choice, in its hydra/config) makes it the
# default. An ``override hydra/sweeper: ffexp`` in conf/config.yaml would do that too, but the
# first override of a group in the defaults tree wins, and the primary config's come before
# those of a config added on the command line: +hparams_search=optuna could no longer choose
# Optuna. Hydra's own class stays available through hydra.sweeper._target_ (docs/sweeps.md).
for _name in ("ffexp", "basic"):
    ConfigStore.instance().store(group="hydra/sweeper", name=_name, node=FfexpSweeperConf,
                                 provider="ffexp")


def _is_ffexp(config) -> bool:
    """Whether the app is ffexp (its primary config is ffexp.conf): the plugin scan registers
    this sweeper as ``basic`` for every Hydra app of the environment, and another app keeps
    Hydra's own behaviour."""
    sources = config.hydra.runtime.get("config_sources") or ()
    return any(s.get("provider") == "main" and str(s.get("path")) == "ffexp.conf"
               for s in sources)


class FfexpSweeper(BasicSweeper):
    """The basic sweeper; ``sweep`` checks the whole sweep once (every batch, before the
    first), so the per-batch check is not needed. Another Hydra app gets Hydra's own sweep."""

    #: whether ``sweep`` checked the whole sweep (ffexp's app), so the batches need not be
    checked = False

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        """Hydra's setup; in ffexp, the launcher composes the jobs with ffexp.compose's loader,
        which composes each combination of group choices once per process (the one the
        tracking callback's check composed with, if it ran)."""
        if _is_ffexp(config):
            from hydra.types import HydraContext

            from ffexp.compose import SweepLoader, for_sweep
            loader = for_sweep(config) or SweepLoader.of(hydra_context.config_loader, config)
            hydra_context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        assert self.hydra_context is not None and self.config is not None
        if not _is_ffexp(self.config):
            return super().sweep(arguments)
        from ffexp import workers
        from ffexp.sweeper import JobDoesNotCompose, check
        loader = self.hydra_context.config_loader
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(
            self._parse_config() + list(arguments))
        try:
            check(self.config, self.split_arguments(parsed, None)[0], loader)
            self.checked = True
            loader.share()
            workers.wait()   # the joblib workers the check started (ffexp.workers)
            return super().sweep(arguments)
        except (ConfigCompositionException, OmegaConfBaseException) as err:
            if not self.checked:
                raise
            raise JobDoesNotCompose(err, str(self.config.hydra.sweep.dir)) from None
        finally:
            loader.close()

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Done for the whole sweep by ``sweep`` in ffexp; Hydra's check for another app."""
        if not self.checked:
            super().validate_batch_is_legal(batch)
