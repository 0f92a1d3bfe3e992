"""ffexp: an experiment-tracking research harness for feedforward neural networks."""

from importlib import metadata

from .job import blas
from .nn import (ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, TASKS, Callback, EpochStats,
                 Network, TrainResult)
from .nn import train as _train
from .nn import train_stacked as _train_stacked

__version__ = metadata.version("ffexp")

__all__ = ["ACTIVATIONS", "INITIALIZERS", "LOSSES", "OPTIMIZERS", "TASKS", "Callback",
           "EpochStats", "Network", "TrainResult", "train", "train_stacked", "__version__"]


def train(net: Network, X, Y, loss="bce", *, blas_threads: int | None = 1,
          **kwargs) -> TrainResult:
    """``ffexp.nn.train(net, X, Y, loss, **kwargs)`` with the BLAS libraries limited to
    ``blas_threads`` threads while it runs: 1 by default, like the ``ffexp`` command
    (``train.blas_threads``), since extra threads slow down matrices this small; None leaves
    the library's default. Every other argument is ``ffexp.nn.train``'s (``help(ffexp.nn.train)``);
    ``ffexp.nn.train`` itself (numpy only) sets no limit."""
    with blas.limit(blas_threads):
        return _train(net, X, Y, loss, **kwargs)


def train_stacked(nets, X, Y, loss="bce", *, blas_threads: int | None = 1,
                  **kwargs) -> list[TrainResult]:
    """``ffexp.nn.train_stacked(nets, X, Y, loss, **kwargs)`` (K networks of one shape trained
    as one computation, each exactly as ``ffexp.train`` trains it) with the BLAS libraries
    limited to ``blas_threads`` threads while it runs, as ``ffexp.train``."""
    with blas.limit(blas_threads):
        return _train_stacked(nets, X, Y, loss, **kwargs)
