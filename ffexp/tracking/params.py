"""MLflow params: the headline choices under short names, plus the rest of the resolved config
flattened to dotted keys, within MLflow's limits (key ≤ 250 characters, value ≤ 6000).

Each value is logged once: a dotted key that only repeats a short name (``activation.name``,
``optimizer.lr``, ``train.epochs``…) is left out, so the compare view's parallel coordinates
start on the choices. A dotted key stays when it carries another value: ``loss.name=auto``
beside the resolved ``loss=bce``, ``dataset.params.noise``, ``init.scale``. The full resolved
config is the artifact ``config/resolved.yaml``."""

from __future__ import annotations

import json
from typing import Any, Mapping

MAX_KEY = 250
MAX_VALUE = 6000
#: top-level config groups that describe where results go, not the experiment itself
NOT_PARAMS = ("hydra",)


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        text = "[" + ",".join(_text(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, default=str)
    elif value is None:
        text = "null"
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"optimizer": {"lr": 0.1}} -> {"optimizer.lr": "0.1"}; lists stay one value."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        elif len(name) <= MAX_KEY:
            out[name] = _text(value)
    return out


def headline(settings, job=None) -> dict[str, str]:
    """The choices a person sorts and filters the runs table by; with the prepared job, the
    task and loss as resolved (``loss=auto`` shows as the cost actually used)."""
    from ffexp.job.settings import activation_label
    s = settings
    return {
        "dataset": s.dataset.name, "task": job.task if job else s.dataset.task,
        "activation": activation_label(s), "init": s.init.name,
        "loss": job.loss if job else s.loss.name, "optimizer": s.optimizer.name,
        "lr": _text(s.optimizer.lr), "batch_size": _text(s.optimizer.batch_size),
        "hidden_sizes": _text(list(s.model.hidden_sizes)), "epochs": _text(s.train.epochs),
        "seed": _text(s.seed),
    }


#: short name -> the dotted config key it shows (dropped from the params when equal)
ALIASES = {"dataset": "dataset.name", "task": "dataset.task", "activation": "activation.name",
           "init": "init.name", "loss": "loss.name", "optimizer": "optimizer.name",
           "lr": "optimizer.lr", "batch_size": "optimizer.batch_size",
           "hidden_sizes": "model.hidden_sizes", "epochs": "train.epochs"}


def run_params(settings, config: Mapping[str, Any], job=None) -> dict[str, str]:
    """Headline params and the flattened config (without the tracking group, which says where
    results go), each value once: a dotted alias equal to its short name is dropped."""
    body = {k: v for k, v in config.items() if k not in NOT_PARAMS and k != "tracking"}
    short = {k: _text(v) for k, v in headline(settings, job).items()}
    flat = flatten(body)
    for name, dotted in ALIASES.items():
        if flat.get(dotted) == short[name]:
            del flat[dotted]
    return {**flat, **short}
