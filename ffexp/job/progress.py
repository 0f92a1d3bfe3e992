"""Progress for people watching: a per-epoch bar for a single run on a terminal, one line per
finished job in a sweep, and nothing per epoch when stdout is a log file or a pipe."""

from __future__ import annotations

import sys
from typing import Collection, Sequence, TextIO

from ffexp.nn import Callback, EpochStats, Network, TrainResult


class EpochBar(Callback):
    """A tqdm bar over the epochs, its postfix the training cost and the main val metric."""

    def __init__(self, main_metric: str, file: TextIO | None = None, mininterval: float = 0.1):
        self.key = f"val/{main_metric}"
        self.file = file or sys.stdout
        self.mininterval = mininterval  # seconds between redraws
        self.bar = None

    def on_train_begin(self, net: Network, info: dict) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=info["epochs"], unit="epoch", file=self.file, leave=False,
                        dynamic_ncols=True, mininterval=self.mininterval)

    def on_epoch_end(self, net: Network, stats: EpochStats) -> None:
        postfix = {"cost": f"{stats.cost:.4g}"}
        if self.key in stats.metrics:
            postfix[self.key] = f"{stats.metrics[self.key]:.4f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1 if stats.epoch else 0)   # step 0 (at initialization) is no epoch

    def on_train_end(self, net: Network, result: TrainResult) -> None:
        if self.bar is not None:
            self.bar.close()


def epoch_callbacks(mode: str, main_metric: str, file: TextIO | None = None) -> list[Callback]:
    """The per-epoch progress callbacks: a bar for a single run on a TTY, else none."""
    file = file or sys.stdout
    if mode == "run" and file.isatty():
        return [EpochBar(main_metric, file)]
    return []


def job_line(job_num: int, overrides: Sequence[str], outcome: str, seconds: float,
             metric: tuple[str, float] | None = None, error: str = "",
             varied: Collection[str] | None = None) -> str:
    """One line for a finished sweep job, e.g.
    ``[job 3] activation=tanh seed=1: finished  val/accuracy=0.9750  (1.2 s)``; with
    ``varied`` (the keys the sweep gives several values) only those overrides are shown, the
    ones common to every job left out."""
    if varied:
        overrides = [o for o in overrides if o.partition("=")[0].lstrip("+~") in varied]
    what = " ".join(overrides) or "(defaults)"
    detail = f"  {metric[0]}={metric[1]:.4f}" if metric else ""
    if error:
        detail += f"  {error}"
    return f"[job {job_num}] {what}: {outcome}{detail}  ({seconds:.2f} s)"


def print_job_line(line: str, file: TextIO | None = None) -> None:
    file = file or sys.stdout
    print(line, file=file, flush=True)
