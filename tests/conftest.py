"""Fixtures shared by every test folder."""

from __future__ import annotations

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
