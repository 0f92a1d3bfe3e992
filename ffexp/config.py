"""The typed configuration: dataclass schemas for Hydra, and the Settings built from them once.

The dataclasses below serve twice. Registered in Hydra's ConfigStore (``register_schemas``) they
are the schemas that the YAML files in conf/ extend (``defaults: [/schema/<group>@_here_, _self_]``), so a
wrong type (``optimizer.lr=abc``) or a misspelled key fails at startup with Hydra's message.
Converted by ``to_settings`` they are the frozen, typed Settings that the rest of ffexp receives:
only the composition root (ffexp.__main__) ever holds a DictConfig.

Frozen dataclasses make a read-only OmegaConf node, which the YAML files could not extend, so
the schemas are stored as structured DictConfigs with the read-only flag cleared.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, is_dataclass, replace
from typing import Any, Optional, get_type_hints

from omegaconf import MISSING, DictConfig, Node, OmegaConf, open_dict, read_write

# ---- schemas = settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSettings:
    """A dataset of ffexp.data.DATASETS; ``params`` are its generator knobs (n_samples, noise…).

    ``task`` describes the data (from ffexp.data); for ``classification`` it follows
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
    σ(βz) is the softmax of β over (z, 0))."""
    hidden_sizes: tuple[int, ...] = (16, 16)
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


#: ConfigStore name in group ``schema`` -> schema. A group's YAML file extends its schema with
#: ``defaults: [/schema/<group>@_here_, _self_]``; a separate group keeps the schemas out of the
#: options Hydra lists for ``activation=<typo>``.
SCHEMAS: dict[str, type] = {
    "config": Settings,
    "dataset": DatasetSettings,
    "activation": ActivationSettings,
    "init": InitSettings,
    "loss": LossSettings,
    "optimizer": OptimizerSettings,
    "tracking": TrackingSettings,
}


def _writable(schema: type) -> DictConfig:
    """The structured config of a frozen dataclass, with every read-only flag cleared."""
    node = OmegaConf.structured(schema)

    def clear(n: Node) -> None:
        n._set_flag("readonly", None)
        if isinstance(n, DictConfig) and not n._is_missing() and not n._is_none():
            for key in n:
                clear(n._get_node(key))

    clear(node)
    return node


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        cs.store(group="schema", name=name, node=_writable(schema))


def _refuse_unknown_keys(cfg: DictConfig, schema: type, prefix: str = "") -> None:
    """ValueError for keys the schema does not know (Hydra lets ``+key=value`` add them)."""
    types = get_type_hints(schema)
    for key in cfg:
        if key not in types:
            raise ValueError(f"{prefix}{key}: unknown config key; accepted keys"
                             f"{' of ' + prefix[:-1] if prefix else ''}: {sorted(types)}")
        node = cfg._get_node(key)
        sub = types[key]
        if isinstance(node, DictConfig) and is_dataclass(sub):
            _refuse_unknown_keys(node, sub, f"{prefix}{key}.")


def to_settings(cfg: DictConfig) -> Settings:
    """The composed config (with or without its ``hydra`` node) as typed, frozen Settings."""
    if "hydra" in cfg:
        cfg = copy.deepcopy(cfg)  # keeps the schema's type, which masked_copy would drop
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
    _refuse_unknown_keys(cfg, Settings)
    settings = OmegaConf.to_object(cfg)
    if not isinstance(settings, Settings):
        raise TypeError(f"the config's schema is {type(settings).__name__}, not Settings; "
                        f"does conf/config.yaml list /schema/config@_here_ in its defaults?")
    acts = settings.model.activations
    model = replace(settings.model, hidden_sizes=tuple(settings.model.hidden_sizes),
                    activations=None if acts is None else tuple(acts))
    dataset = replace(settings.dataset, params=dict(settings.dataset.params))
    return replace(settings, model=model, dataset=dataset)


def hydra_error_line(err: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line message (a wrong type, an unknown option) as one line:
    the override, the reason, the key and the accepted options; no search path, no types, and
    not the traceback that joblib chains to an error it re-raises from a worker."""
    text = str(err)
    cause = str(err.__cause__) if err.__cause__ is not None else ""
    if cause not in text and "Traceback (most recent call last)" not in cause:
        text += "\n" + cause
    parts: list[str] = []
    for line in text.splitlines():
        if line.startswith("Config search path"):
            break
        item = line.strip()
        if not item or item.startswith(("reference_type=", "object_type=", "Set the env")):
            continue
        if line[:1] in ("\t", " ") and parts and not item.startswith("full_key"):
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + item
        else:
            parts.append(item)
    return "; ".join(parts)


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
