"""Run tags: provenance (git commit and dirtiness of ffexp's working tree, version, config hash,
Hydra overrides, sweep id) and a readable run name.

MLflow records neither the commit nor the dirtiness reliably for a console script, so we ask
git ourselves (once per process) in the checkout ffexp is imported from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any, Mapping

MAX_TAG = 5000
SEP = "·"
#: groups left out of the config hash: where results go, not what was computed
UNHASHED = ("tracking", "hydra")


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


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable 12-hex-digit hash of the resolved config without the tracking settings: two
    runs with the same hash computed the same thing (same code aside)."""
    body = {k: v for k, v in config.items() if k not in UNHASHED}
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def clip(text: str, limit: int = MAX_TAG) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


#: override keys the run name always shows
NAMED = ("dataset", "activation", "init", "optimizer", "seed")


def run_name(settings, overrides=(), varied=()) -> str:
    """``moons·relu·he·minibatch·s0``: what a person reads in the runs table; in a sweep, the
    other varied overrides follow (``moons·relu·he·minibatch·s0·lr=0.5``), so that no two jobs
    of a sweep share a name."""
    from ffexp.config import activation_label
    s = settings
    parts = [s.dataset.name, activation_label(s), s.init.name, s.optimizer.name, f"s{s.seed}"]
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key in varied and key not in NAMED:
            parts.append(f"{key.rsplit('.', 1)[-1]}={value}")
    return SEP.join(parts)


def run_tags(config: Mapping[str, Any], overrides, sweep_id: str | None) -> dict[str, str]:
    """Tags set when the run is created (the outcome and diagnoses come at the end)."""
    from ffexp import __version__
    commit, dirty = git_state()
    tags = {
        "ffexp.git_commit": commit, "ffexp.git_dirty": dirty,
        "ffexp.overrides": clip(" ".join(overrides or ())),
        "ffexp.config_hash": config_hash(config), "ffexp.version": __version__,
        "mlflow.source.name": "ffexp", "mlflow.source.type": "LOCAL",
    }
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    if sweep_id:
        tags["ffexp.sweep_id"] = sweep_id
    return tags
