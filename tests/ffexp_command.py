"""The one way the tests run the real command: ``run(cwd, *args, ...)`` (or ``start`` for a
process a test signals), with the environment built by ``command_env``. The folders' helpers
(tests/app/conftest.py, tests/faults/faults_helpers.py, tests/tracking/helpers_tracking.py,
tests/scale/helpers_scale.py) pass their own environment and defaults through it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: the installed console scripts of the interpreter running the tests
FFEXP = str(Path(sys.executable).with_name("ffexp"))


def command_env(uri: str | None = None, drop: tuple[str, ...] = ("MLFLOW_",),
                **extra: str) -> dict:
    """This process's environment without the variables starting with ``drop`` (a test's
    store is its own, not the caller's), ``MLFLOW_TRACKING_URI=uri`` when given, then
    ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return {**env, **extra}


def _argv(args, module: bool) -> list[str]:
    return [*([sys.executable, "-m", "ffexp"] if module else [FFEXP]), *args]


def run(cwd: Path, *args: str, env: dict | None = None, timeout: float = 300,
        check: bool = False, module: bool = False) -> subprocess.CompletedProcess:
    """``ffexp *args`` (``python -m ffexp`` with ``module``) in ``cwd``, its output captured;
    ``check``: an AssertionError with both streams when it exits non-zero."""
    proc = subprocess.run(_argv(args, module), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=command_env() if env is None else env)
    if check and proc.returncode != 0:
        raise AssertionError(f"ffexp {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-5000:]}\nstderr:\n{proc.stderr[-5000:]}")
    return proc


def start(cwd: Path, *args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """``ffexp *args`` started in ``cwd`` (output to pipes), for a test that signals it."""
    return subprocess.Popen(_argv(args, False), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=command_env() if env is None else env, **popen)
