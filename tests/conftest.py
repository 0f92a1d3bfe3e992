"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra


@pytest.fixture(autouse=True)
def hydra_state():
    """Every test starts and ends with Hydra's global state cleared, and with what ffexp's
    entry point registers in Hydra's singletons (schemas, resolvers, the sweeper; idempotent):
    no test depends on what another left (lightning-hydra-template's conftest)."""
    from ffexp.launch.main import register
    register()
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()
    reset_module_state()


def reset_module_state() -> None:
    """What a test may leave in ffexp's process-wide state: joblib workers started for a check
    that launched nothing, the sweeps this process checked, the composition memo."""
    from ffexp._compat import hydra_compose, joblib_workers
    from ffexp.launch import sweeper
    joblib_workers.stop()
    sweeper._CHECKED.clear()
    hydra_compose.forget()


@pytest.fixture
def hydra_conf():
    """compose(overrides, return_hydra_config=False) -> DictConfig, from the installed package
    ffexp.conf, in a Hydra initialized for this test only."""
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
