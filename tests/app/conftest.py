"""Shared helpers: the real Hydra composition in-process, and the real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ffexp_command
from ffexp.job.settings import Settings
from ffexp.launch.config import to_settings


@pytest.fixture
def settings_of(hydra_conf):
    """settings_of(overrides) -> Settings, tracking off."""
    def make(*overrides: str) -> Settings:
        return to_settings(hydra_conf(["tracking.enabled=false", *overrides]))
    return make


def ffexp(*args: str, cwd: Path, module: bool = False) -> subprocess.CompletedProcess:
    """Run the real command (console script, or ``python -m ffexp``) in ``cwd``."""
    return ffexp_command.run(cwd, *args, module=module, env=ffexp_command.command_env(
        drop=("FFEXP_COMMAND_LINE",), HYDRA_FULL_ERROR="0"))


def statuses(root: Path) -> list[dict]:
    """The status files of the jobs under ``root``, by job number."""
    found = [json.loads(p.read_text()) for p in root.rglob("ffexp_status.json")]
    return sorted(found, key=lambda r: r["job_num"])
