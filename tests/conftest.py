"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from ffexp.config import register_schemas

register_schemas()


@pytest.fixture(scope="session")
def hydra_conf():
    """compose(overrides, return_hydra_config=False) -> DictConfig, from the installed package
    ffexp.conf. Hydra allows one initialization per process, so every test shares this one."""
    with initialize_config_module("ffexp.conf", version_base=None):
        yield lambda overrides=(), return_hydra_config=False: compose(
            "config", overrides=list(overrides), return_hydra_config=return_hydra_config)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """An empty SQLite store with MLflow's schema, created once (the migration takes seconds)."""
    from mlflow import MlflowClient
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, template_db) -> str:
    """sqlite URI of a fresh store (schema ready) in tmp_path: a real MLflow store per test."""
    shutil.copy(template_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"
