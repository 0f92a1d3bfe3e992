"""The diagnoses on real runs: the initialization study's cells (10 hidden layers of 32, moons;
conf/experiment/initialization.yaml) composed by Hydra and trained by the app, each rule on a
cell that has its pathology and on one that lacks it."""

from __future__ import annotations

from functools import cache

import pytest
from hydra import compose, initialize_config_module

from ffexp.job.app import execute, prepare
from ffexp.launch.config import to_settings
from ffexp.tracking.diagnose import EXPLODING_NORM, VANISHING_RATIO, diagnose


@cache
def study_cell(init: str, activation: str, epochs: int = 3):
    """(found, history) of the initialization study's cell (seed 0), trained ``epochs``."""
    with initialize_config_module("ffexp.conf", version_base=None):
        cfg = compose("config", overrides=["+experiment=initialization", f"init={init}",
                                           f"activation={activation}", "seed=0",
                                           f"train.epochs={epochs}", "tracking.enabled=false"])
    r = execute(prepare(to_settings(cfg)), [])
    return diagnose(r.train.history, r.net), r.train.history


SMALL, LARGE = "{name:random,scale:0.01}", "{name:random,scale:1.0}"


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_small_weights_vanish_and_do_not_explode(activation):
    """N(0, 0.01²): the error shrinks by ~1e-12 from hidden layer 10 to 1 at step 0; the
    gradients are ~1e-13 and stay far below EXPLODING_NORM however much they grow."""
    found, history = study_cell(SMALL, activation)
    first = history[0]
    assert first.grad_norm_Z[0] / first.grad_norm_Z[-2] < VANISHING_RATIO
    assert found["vanishing_gradients"].startswith("‖dZ1‖/‖dZ10‖ = ")
    assert found["vanishing_gradients"].endswith("at initialization (step 0)")
    # the gradients grow over a thousandfold from their vanishing start (the growth rule
    # before issue 23 called this exploding), yet stay tiny
    grown = max((s.grad_norm_W / first.grad_norm_W).max() for s in history)
    assert grown > 1e3 and max(s.grad_norm_W.max() for s in history) < 1e-3
    assert found["exploding_gradients"] == ""


def test_large_relu_weights_explode_and_do_not_vanish():
    """N(0, 1) relu: ‖∂J/∂W[l]‖ ~1e5 at step 0, over EXPLODING_NORM; the error grows on
    the way down, so it does not vanish."""
    found, history = study_cell(LARGE, "relu")
    assert history[0].grad_norm_W.max() > EXPLODING_NORM
    assert found["exploding_gradients"].startswith("‖dW")
    assert "at initialization (step 0)" in found["exploding_gradients"]
    assert found["vanishing_gradients"] == ""


@pytest.mark.parametrize("init,activation", [("xavier", "tanh"), ("he", "relu")])
def test_xavier_and_he_neither_vanish_nor_explode(init, activation):
    found, history = study_cell(init, activation)
    assert history[0].grad_norm_W.max() < 10
    assert found["vanishing_gradients"] == found["exploding_gradients"] == ""
