"""The job's typed settings: frozen dataclasses, one per config group (no Hydra, no OmegaConf).

They serve twice. ffexp.launch.config registers them in Hydra's ConfigStore as the schemas the
YAML files in conf/ extend (``defaults: [/schema/<group>@_here_, _self_]``), so a wrong type
(``optimizer.lr=abc``) or a misspelled key fails at startup with Hydra's message; and
ffexp.launch.config.to_settings converts the composed config into them once, so the rest of
ffexp receives typed, frozen values: only the composition root holds a DictConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

#: OmegaConf's marker of a value the config must set (``omegaconf.MISSING``)
MISSING: Any = "???"

# ---- schemas = settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSettings:
    """A dataset of ffexp.job.data.DATASETS; ``params`` are its generator knobs (n_samples, noise…).

    ``task`` describes the data (from ffexp.job.data); for ``classification`` it follows
    ``params.n_classes``. ``val_fraction=0``: no validation split. ``standardize``: features
    scaled to mean 0, variance 1 on the training split (false: the raw features)."""
    name: str = MISSING
    task: str = MISSING
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    standardize: bool = True
    standardize_targets: bool = True
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSettings:
    """Hidden layer sizes n[1..L-1]; ``activations``: one hidden activation per hidden layer,
    overriding ``activation.name`` (null: that one for all); the output activation g[L]
    (``auto``: from the task) and its β (softmax β, a = softmax(βz); a sigmoid output's
    σ(βz) is the softmax of β over (z, 0)).

    ``depth`` and ``width``: a shorthand for ``depth`` equal hidden layers of ``width`` units,
    hidden_sizes = [width] * depth (null: from hidden_sizes); one of them alone keeps the
    other from hidden_sizes. ffexp.launch.config.to_settings applies it."""
    hidden_sizes: tuple[int, ...] = (16, 16)
    depth: Optional[int] = None
    width: Optional[int] = None
    activations: Optional[tuple[str, ...]] = None
    output_activation: str = "auto"
    beta: float = 1.0
    dtype: str = "float64"


@dataclass(frozen=True)
class ActivationSettings:
    """The hidden layers' g; ``slope`` is the c of linear / leaky_relu (null: the default)."""
    name: str = MISSING
    slope: Optional[float] = None


@dataclass(frozen=True)
class InitSettings:
    """Weight initialization; ``scale`` is the standard deviation of ``random``, ``bias`` the
    constant of every b[l], ``output_gain`` the factor W[L] is multiplied by after the draw."""
    name: str = MISSING
    distribution: str = "normal"
    scale: float = 0.01
    bias: float = 0.0
    output_gain: float = 1.0


@dataclass(frozen=True)
class LossSettings:
    """The cost: auto (from the task), mse, bce or cce."""
    name: str = MISSING


@dataclass(frozen=True)
class OptimizerSettings:
    """Gradient descent: batch, sgd or minibatch (``batch_size`` used by minibatch only)."""
    name: str = MISSING
    lr: float = MISSING
    batch_size: int = 32


@dataclass(frozen=True)
class TrainSettings:
    """At most ``epochs`` passes; with ``tol``, stop once the ``tol_on`` change stays below it
    for ``patience`` epochs."""
    epochs: int = 200
    tol: Optional[float] = None
    tol_on: str = "cost"
    patience: int = 1
    epoch_gradients: str = "full"
    #: the task's validation metrics every that many epochs and at the last (val/cost: every)
    eval_every: int = 1
    #: BLAS threads while training: ffexp's matrices are small, so extra threads cost more
    #: than they give (10x slower on a busy 2-core machine) and oversubscribe parallel sweeps;
    #: null leaves the BLAS library's default
    blas_threads: Optional[int] = 1
    #: in a sweep of ffexp's grid sweeper: jobs that differ only in values that keep the
    #: network's shapes (seed, init, activation, lr, epochs...) trained as one stacked
    #: computation per group, each still its own job and run (ffexp.launch.stacked)
    stack: bool = False


@dataclass(frozen=True)
class TrackingSettings:
    """MLflow recording (ffexp.tracking)."""
    enabled: bool = True
    uri: Optional[str] = None
    experiment: Optional[str] = None
    log_model: bool = True
    log_plots: bool = True
    #: epochs at which the decision boundary and gradient flow are logged as step images
    snapshots: int = 10
    flush_seconds: float = 5.0
    skip_existing: bool = False
    #: with skip_existing: adopt other users' FINISHED runs too (default: only the user's own)
    skip_existing_any_user: bool = False
    #: a RUNNING run silent for longer than this is stale (ffexp.tracking.stale)
    stale_seconds: float = 300.0


@dataclass(frozen=True)
class Settings:
    """The whole job's configuration, typed; the root schema of conf/config.yaml."""
    dataset: DatasetSettings = MISSING
    model: ModelSettings = field(default_factory=ModelSettings)
    activation: ActivationSettings = MISSING
    init: InitSettings = MISSING
    loss: LossSettings = MISSING
    optimizer: OptimizerSettings = MISSING
    train: TrainSettings = field(default_factory=TrainSettings)
    tracking: TrackingSettings = MISSING
    seed: int = 0


def activation_label(settings: Settings) -> str:
    """The hidden activations as a person reads them: ``relu``, or with ``model.activations``
    the per-layer list, ``tanh,relu``."""
    acts = settings.model.activations
    return ",".join(acts) if acts is not None else settings.activation.name


# ---- where and how the job runs -------------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    """What the tracking and progress code need to know about the job's place in a run.

    ``config`` is the resolved config as plain containers, without the hydra node."""
    mode: str                      # "run" | "multirun"
    overrides: list[str]           # the job's task overrides, e.g. ["activation=tanh"]
    output_dir: str
    sweep_dir: Optional[str]       # the multirun's directory; None for a single run
    job_num: int
    job_id: str
    command_line: str
    config: dict = field(default_factory=dict)
    sweep_uid: Optional[str] = None  # the sweep's unique id (ffexp.tracking.handoff)
    #: the keys the sweep gives several values (a job's console line shows only those)
    varied: tuple[str, ...] = ()
