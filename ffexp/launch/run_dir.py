"""A single run's output directory, its own: two runs never write into one folder.

Hydra's default ``hydra.run.dir`` is ``outputs/<date>/<time>``, to the second, and Hydra
creates it with ``exist_ok``: two runs started in the same second (a script, a scheduler)
would share the folder, its ``.hydra`` record, its ``ffexp.log`` and ``ffexp_status.json``,
and each run's artifacts would mix them. ``RunDir`` (a Hydra callback, run in the launching
process before the job) takes the directory first:

- the default one (or a config file's) by creating it exclusively: a directory that exists
  already, whoever made it, is left to its owner and this run takes the first free
  ``<dir>-2``, ``<dir>-3``, ... (as a sweep does, ffexp.launch.status.claim_sweep_dir);
- one the user chose with ``hydra.run.dir`` by its lock (ffexp.tracking.handoff.claim, held
  until the process ends): a directory a live run or sweep holds is refused in one line, exit
  status 2; a finished run's directory is reused, as the user asked.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import open_dict, read_write

from ffexp.launch.status import USAGE_EXIT


def _chosen(config) -> bool:
    """Whether the user set hydra.run.dir on the command line."""
    return any(str(o).lstrip("+~").startswith("hydra.run.dir=")
               for o in config.hydra.overrides.hydra)


def _take_new(base: Path) -> Path:
    """Create the first of ``base``, ``base-2``, ``base-3``, ... that does not exist."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate  # a refused run removes it again (ffexp.launch.main)
    raise AssertionError("unreachable")


def claim_run_dir(config) -> Path:
    """Take this run's output directory (the module doc) and make it ``hydra.run.dir``."""
    from ffexp.tracking import handoff
    base = Path(str(config.hydra.run.dir))
    if _chosen(config):
        holder = handoff.claim(base, handoff.new_uid())
        if holder is not None:
            print(f"ffexp: error: hydra.run.dir={base}: another ffexp process is writing "
                  f"there ({holder}); choose another one with hydra.run.dir=<dir>, or wait "
                  f"until it ends", file=sys.stderr, flush=True)
            raise SystemExit(USAGE_EXIT)
        return base
    run_dir = _take_new(base)
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.run.dir = str(run_dir)
    return run_dir


class RunDir(Callback):
    """Registered in conf/config.yaml under ``hydra.callbacks``."""

    def on_run_start(self, config, **kwargs: Any) -> None:
        claim_run_dir(config)
