"""ffexp._compat: each private path is gated on the series its tests cover and falls back to
the library's public path elsewhere, warning once; the fallbacks give the same results."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from ffexp._compat import gate


@pytest.fixture
def fresh_gate():
    gate.supported.cache_clear()
    yield
    gate.supported.cache_clear()


def test_a_tested_series_takes_the_private_path(fresh_gate, monkeypatch):
    monkeypatch.setattr(gate.metadata, "version", lambda d: "1.3.8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gate.supported("x", "hydra-core", ((1, 3),))


@pytest.mark.parametrize("version", ["1.4.0", "1.4.0rc3", "1.2.0", "2.0"])
def test_another_series_or_a_pre_release_falls_back_warning_once(fresh_gate, monkeypatch,
                                                                version):
    monkeypatch.setattr(gate.metadata, "version", lambda d: version)
    with pytest.warns(UserWarning, match=f"tested with hydra-core 1.3.x, not {version}"):
        assert not gate.supported("the memo", "hydra-core", ((1, 3),))
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # the second call does not warn again
        assert not gate.supported("the memo", "hydra-core", ((1, 3),))


def test_a_pre_release_of_a_tested_series_falls_back(fresh_gate, monkeypatch):
    monkeypatch.setattr(gate.metadata, "version", lambda d: "1.3.9rc1")
    with pytest.warns(UserWarning):
        assert not gate.supported("x", "hydra-core", ((1, 3),))


def test_ffexp_public_only_switches_every_private_path_off(fresh_gate, monkeypatch):
    monkeypatch.setenv(gate.PUBLIC_ONLY_ENV, "1")
    assert not gate.supported("x", "numpy", (tuple(gate.release("numpy")[:2]),))


def test_a_sweep_on_the_public_paths_runs_every_job_as_on_the_private_ones(tmp_path):
    """Hydra's own loader composes every job, the launcher starts its own workers, the plots
    draw text with matplotlib's canvas: the same jobs, the same values."""
    exe = str(Path(sys.executable).with_name("ffexp"))
    args = [exe, "-m", "activation=relu,tanh", "seed=0,1", "train.epochs=3",
            "model.hidden_sizes=[4]", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    out = {}
    for mode in ("private", "public"):
        env = {k: v for k, v in os.environ.items() if k != gate.PUBLIC_ONLY_ENV}
        if mode == "public":
            env[gate.PUBLIC_ONLY_ENV] = "1"
        cwd = tmp_path / mode
        cwd.mkdir()
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        out[mode] = sorted(line.split("(")[0] for line in done.stdout.splitlines()
                           if line.startswith("[job"))
    assert len(out["public"]) == 4 and out["public"] == out["private"]


def test_sklearn_fallback_validation_refuses_what_sklearn_refuses():
    from ffexp._compat import sklearn_params as sp
    from ffexp.sklearn import FFClassifier

    class Fallback(FFClassifier):
        pass

    X = np.random.default_rng(0).normal(size=(20, 2))
    y = (X[:, 0] > 0).astype(int)
    for bad in ({"learning_rate": -1.0}, {"activation": "nope"}, {"epochs": 0},
                {"bookkeeping": "yes"}, {"tol": 0.0}):
        with pytest.raises(sp.InvalidParameterError, match=next(iter(bad))):
            FFClassifier(**{"epochs": 2, **bad}).fit(X, y)
        with pytest.raises(sp._InvalidParameterError, match=next(iter(bad))):
            sp._validate(Fallback(**{"epochs": 2, **bad}))
    sp._validate(Fallback(epochs=2, tol=None, slope=0.1, random_state=3))  # accepted


def test_a_saved_view_is_written_only_for_a_tested_mlflow(fresh_gate, tmp_path, monkeypatch):
    """MLflow's saved-view tag (the UI's format) on a real store: written and read back under
    the tested series; under another, nothing is written and ffexp warns once."""
    from ffexp._compat import mlflow_views
    from ffexp.tracking import store
    client = store.client(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("views")
    state = mlflow_views.images_state("tags.x = '1'", ["decision_boundary"], 7)
    query = mlflow_views.save_view(client, exp, "v1", "a view", state)
    assert query.endswith("compareRunsMode=CHART&viewStateShareKey=v1")
    import json
    envelope = json.loads(client.get_experiment(exp).tags["mlflow.sharedViewState.v1"])
    assert envelope["name"] == "a view" and json.loads(envelope["state"]) == state
    gate.supported.cache_clear()
    monkeypatch.setattr(gate.metadata, "version", lambda d: "3.99.0")
    with pytest.warns(UserWarning, match="saved views"):
        assert mlflow_views.save_view(client, exp, "v2", "b", state) is None
    assert "mlflow.sharedViewState.v2" not in client.get_experiment(exp).tags
