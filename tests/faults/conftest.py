"""Fixtures of the fault tests: a real SQLite store in a temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """An empty store with MLflow's schema, created once (the migration takes seconds)."""
    from mlflow import MlflowClient
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, template_db) -> str:
    """sqlite URI of a fresh store (schema ready) in tmp_path."""
    shutil.copy(template_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
