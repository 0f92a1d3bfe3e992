"""Run tags: provenance (git commit, as MLflow's own ``mlflow.source.git.commit``, and
dirtiness of ffexp's working tree, version, config hash, Hydra overrides, sweep id) and a
readable run name.

MLflow records neither the commit nor the dirtiness reliably for a console script, so we ask
git ourselves (once per process) in the checkout ffexp is imported from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any, Mapping

MAX_TAG = 5000
SEP = "·"
#: groups left out of the config hash: where results go, not what was computed
UNHASHED = ("tracking", "hydra")
#: keys left out of the config hash (group, key): how a job was computed, not what
#: (``train.stack``: a stacked network's numbers equal its separate run's)
UNHASHED_KEYS = (("train", "stack"),)


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, str]:
    """(commit, dirty) of ffexp's checkout; ("unknown", "unknown") outside a git tree."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return "unknown", "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, "unknown" if status is None else str(bool(status)).lower()


def _canonical(value: Any) -> Any:
    """A config value as the hash sees it: a float that is a whole number as that integer
    (``noise=1`` and ``noise=1.0`` compute the same thing), containers element by element;
    booleans, other floats (NaN, ±inf included) and strings as they are."""
    if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _digest(body: Any) -> str:
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _hashed(config: Mapping[str, Any]) -> dict:
    """The resolved config without the tracking settings and ``UNHASHED_KEYS``."""
    body = {k: v for k, v in config.items() if k not in UNHASHED}
    for group, key in UNHASHED_KEYS:
        if isinstance(body.get(group), Mapping) and key in body[group]:
            body[group] = {k: v for k, v in body[group].items() if k != key}
    return body


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable 12-hex-digit hash of the resolved config without the tracking settings and
    ``UNHASHED_KEYS``: two runs with the same hash computed the same thing (same code aside).
    Numerically equal values hash alike (``1`` and ``1.0``: ``_canonical``)."""
    return _digest(_canonical(_hashed(config)))


def config_hashes(config: Mapping[str, Any]) -> list[str]:
    """The hashes a run of this config may carry in ``ffexp.config_hash``: ``config_hash``,
    then (when it differs) the hash ffexp 0.1 gave it before values were made canonical, so
    that ``tracking.skip_existing`` still finds runs recorded before."""
    legacy = _digest(_hashed(config))
    current = config_hash(config)
    return [current] if legacy == current else [current, legacy]


def clip(text: str, limit: int = MAX_TAG) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


#: what SQLAlchemy appends to a store error: the statement, its parameters, a help link
_SQL_NOISE = re.compile(r"\s*(\[SQL: .*?\]|\[parameters: .*?\]|\(Background on this error at: "
                        r"[^)]*\))", re.S)


def short_error(text: str) -> str:
    """An error message for one console line or a tag: SQLAlchemy's statement text, its
    parameters and help link removed, whitespace collapsed (the traceback keeps them)."""
    return " ".join(_SQL_NOISE.sub("", text).split())


#: config groups whose chosen option a run name shows by its value alone (``relu``, not
#: ``activation=relu``)
GROUPS = ("dataset", "activation", "init", "loss", "optimizer")


def _short_value(value: str) -> str:
    """A number as the runs table can show it (``0.0123456789`` -> ``0.01235``)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if len(value) <= 6 or not math.isfinite(number) else f"{number:.4g}"


def _label(key: str, value: str, keys) -> str:
    """One varied override in a run name: ``relu``, ``s1``, ``lr=0.5``."""
    if key in GROUPS or (key.endswith(".name") and key.split(".")[0] in GROUPS):
        return value
    if key == "seed":
        return f"s{value}"
    last = key.rsplit(".", 1)[-1]
    clash = sum(1 for k in keys if k.rsplit(".", 1)[-1] == last) > 1
    return f"{key if clash else last}={_short_value(value)}"


def run_name(settings, overrides=(), varied=()) -> str:
    """What a person reads in the runs table, what varies first.

    In a sweep, the varied overrides only, in command-line order and the seed last
    (``lr=0.5·relu·s1``; no two jobs share a name); the dataset is in the experiment and the
    params. A single run (or a sweep that varies nothing) shows its headline choices,
    ``relu·he·minibatch·s0``, led by the dataset when the experiment is not named after it."""
    s = settings
    pairs = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key in varied:
            pairs.append((key, value))
    if pairs:
        keys = [k for k, _ in pairs]
        pairs.sort(key=lambda kv: kv[0] == "seed")
        return SEP.join(_label(k, v, keys) for k, v in pairs)
    from ffexp.job.settings import activation_label
    parts = [activation_label(s), s.init.name, s.optimizer.name, f"s{s.seed}"]
    if s.tracking.experiment and s.tracking.experiment != s.dataset.name:
        parts.insert(0, s.dataset.name)
    return SEP.join(parts)


#: MLflow 3 opens an experiment with this kind on its runs (model training), not on the GenAI
#: overview (traces, latency, tokens)
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
PRIMARY_METRIC = "mlflow.experiment.primaryMetric.name"
#: a run's own key, made before it is created: a create retried after a lost answer finds the
#: run by it instead of creating a second one (ffexp.tracking.retry)
RUN_KEY = "ffexp.run_key"


#: MLflow's own tag for who made a run (the UI's "User" column)
USER = "mlflow.user"


def current_user() -> str:
    """Who records: ``MLFLOW_TRACKING_USERNAME`` (the name an authenticated tracking server
    knows the user by), else the login name (as MLflow's fluent API records it)."""
    import getpass
    import os
    name = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if name:
        return name
    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return "unknown"


def run_key(sweep_uid: str | None = None, job_num: int | None = None) -> str:
    """``<sweep uid>/<job number>`` for a job of a sweep (``<sweep uid>/parent`` for its parent
    run: ``job_num`` None), a random ``single/<32 hex>`` for a run outside a sweep."""
    if sweep_uid:
        return f"{sweep_uid}/{'parent' if job_num is None else job_num}"
    import uuid
    return f"single/{uuid.uuid4().hex}"


def experiment_tags(task: str | None = None) -> dict[str, str]:
    """Tags of an experiment ffexp creates: its kind, and with the task the primary metric
    (the task's main validation metric, higher is better: the compare view charts it first)."""
    tags = dict(EXPERIMENT_KIND)
    if task:
        from ffexp.job.metrics import MAIN_METRIC
        if task in MAIN_METRIC:
            tags[PRIMARY_METRIC] = f"val/{MAIN_METRIC[task]}"
            tags["mlflow.experiment.primaryMetric.greaterIsBetter"] = "True"
    return tags


def run_tags(config: Mapping[str, Any], overrides, sweep_id: str | None) -> dict[str, str]:
    """Tags set when the run is created (the outcome and diagnoses come at the end), with the
    numeric environment (``ffexp.env.*``, numeric_env.py)."""
    from importlib.metadata import version
    __version__ = version("ffexp")
    commit, dirty = git_state()
    tags = {
        "ffexp.git_dirty": dirty,
        "ffexp.overrides": clip(" ".join(overrides or ())),
        "ffexp.config_hash": config_hash(config), "ffexp.version": __version__,
        "mlflow.source.name": "ffexp", "mlflow.source.type": "LOCAL",
        USER: current_user(),
    }
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    if sweep_id:
        tags["ffexp.sweep_id"] = sweep_id
    from .numeric_env import tags as env_tags
    model = config.get("model") or {}
    tags.update(env_tags(model.get("dtype", "float64")))
    return tags
