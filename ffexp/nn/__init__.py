"""The numerical core of ffexp: numpy only (no Hydra, MLflow, pandas or scikit-learn)."""

from .activations import ACTIVATIONS, HIDDEN_ACTIVATIONS, Activation, make_activation
from .history import OUTCOMES, Callback, EpochStats, TrainResult
from .initializers import INITIALIZERS
from .losses import LOSSES, Loss, make_loss
from .network import Network
from .optim import OPTIMIZERS, Schedule, train
from .rng import stream
from .stack import train_stacked
from .tasks import TASKS, Task, get_task

__all__ = ["ACTIVATIONS", "HIDDEN_ACTIVATIONS", "INITIALIZERS", "LOSSES", "OPTIMIZERS", "OUTCOMES",
           "TASKS", "Activation", "Callback", "EpochStats", "Loss", "Network", "Schedule", "Task",
           "TrainResult", "get_task", "make_activation", "make_loss", "stream", "train",
           "train_stacked"]
