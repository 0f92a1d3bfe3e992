"""ffexp: an experiment-tracking research harness for feedforward neural networks."""

from .nn import (ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, TASKS, Callback, EpochStats,
                 Network, TrainResult, train)

__version__ = "0.1.0"

__all__ = ["ACTIVATIONS", "INITIALIZERS", "LOSSES", "OPTIMIZERS", "TASKS", "Callback",
           "EpochStats", "Network", "TrainResult", "train", "__version__"]
