"""How runs end: killed by a signal, diverged, and the pieces that decide it (in-process)."""

from __future__ import annotations

import math
import signal
import subprocess
import time

import numpy as np
import pytest
from mlflow import MlflowClient

from helpers_tracking import FAST, FFEXP, all_runs, ffexp_env, run_ffexp


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_a_running_job_kills_its_run(tmp_path, store, signum):
    # SIGINT as at a terminal: pytest started in the background by a non-interactive shell
    # (`pytest -m slow &`) runs with SIGINT ignored, its children inherit that, Python then
    # installs no KeyboardInterrupt handler and the run would never see this Ctrl-C (the run
    # "did not end within 60 s of Ctrl-C")
    proc = subprocess.Popen([FFEXP, *FAST, "train.epochs=1000000", "tracking.flush_seconds=0.3"],
                            cwd=tmp_path, env=ffexp_env(store), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    client = MlflowClient(store)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the run exists and has flushed some epochs
            runs = all_runs(store)
            if runs and client.get_metric_history(runs[0].info.run_id, "train/cost"):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.3)
        else:
            pytest.fail("the run never appeared")
        assert runs[0].info.status == "RUNNING"
        proc.send_signal(signum)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if signum == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
    (run,) = all_runs(store)
    assert run.info.status == "KILLED"
    assert run.data.tags["ffexp.outcome"] == "killed"
    assert len(client.get_metric_history(run.info.run_id, "train/cost")) >= 1


@pytest.mark.slow
def test_diverging_run_is_finished_with_outcome_diverged_and_no_nan(tmp_path, store):
    run_ffexp(tmp_path, "dataset=diabetes", "init=random", "init.scale=10",
              "model.hidden_sizes=[32,32,32,32]", "optimizer.lr=1", "train.epochs=20", uri=store)
    (run,) = all_runs(store)
    assert run.info.status == "FINISHED"
    assert run.data.tags["ffexp.outcome"] == "diverged"
    assert int(run.data.tags["ffexp.diverged_epoch"]) >= 1
    assert "non-finite" in run.data.tags["ffexp.message"]
    client = MlflowClient(store)
    for name in run.data.metrics:
        assert all(math.isfinite(m.value) for m in client.get_metric_history(run.info.run_id, name))


# ---- in-process: the run's closing paths and the diagnoses ------------------------------------


class _Conf:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _settings(uri: str):
    from ffexp.job.settings import ActivationSettings, DatasetSettings, InitSettings, LossSettings, OptimizerSettings, Settings, TrackingSettings
    return Settings(dataset=DatasetSettings(name="moons", task="binary"),
                    activation=ActivationSettings(name="relu"), init=InitSettings(name="he"),
                    loss=LossSettings(name="auto"),
                    optimizer=OptimizerSettings(name="minibatch", lr=0.1),
                    tracking=TrackingSettings(uri=uri, log_model=False, log_plots=False))


def _context(tmp_path):
    from ffexp.job.settings import RunContext
    return RunContext("run", [], str(tmp_path), None, 0, "0", "ffexp", {"seed": 0})


@pytest.mark.parametrize("exc, status, outcome", [
    (KeyboardInterrupt(), "KILLED", "killed"),
    (RuntimeError("boom"), "FAILED", "failed"),
])
def test_record_job_closes_broken_runs(tmp_path, store, exc, status, outcome):
    from ffexp.tracking import record_job
    with pytest.raises(type(exc)):
        with record_job(_settings(store), None, _context(tmp_path)):
            raise exc
    (run,) = all_runs(store)
    assert run.info.status == status and run.data.tags["ffexp.outcome"] == outcome


def test_record_job_disabled_yields_null_recorder(tmp_path):
    from dataclasses import replace

    from ffexp.tracking import NullRecorder, record_job
    s = _settings("sqlite:///unused.db")
    s = replace(s, tracking=replace(s.tracking, enabled=False))
    with record_job(s, None, _context(tmp_path)) as recorder:
        assert isinstance(recorder, NullRecorder) and recorder.callbacks == []


def _stats(epoch, cost, gZ, sat=(0.0,), dead=(0.0,), gW=None):
    from ffexp.nn import EpochStats
    gZ = np.asarray(gZ, dtype=float)
    gW = np.asarray(gW if gW is not None else gZ, dtype=float)
    return EpochStats(epoch, cost, gW, gW, gZ, gW, np.zeros(len(sat)), np.ones(len(sat)),
                      np.asarray(sat), np.asarray(dead), 0.01, 0.01 * epoch, epoch)


def test_diagnoses_follow_their_thresholds():
    """Histories as the engine writes them: step 0 (at initialization), then epochs 1..11, of
    a network with two hidden layers (‖∂J/∂Z[l]‖ for l = 1, 2 and the output 3)."""
    from ffexp.tracking.diagnose import diagnose
    healthy = [_stats(e, 1.0 / (e + 1), [0.5, 1.0, 1.0]) for e in range(0, 12)]
    assert not any(diagnose(healthy).values())
    # the first over the last hidden layer's error, not over the output layer's
    vanishing = [_stats(e, 1.0 / (e + 1), [1e-5, 1.0, 1e-9]) for e in range(0, 12)]
    assert diagnose(vanishing)["vanishing_gradients"] == \
        "‖dZ1‖/‖dZ2‖ = 1e-05 at initialization (step 0)"
    exploding = [_stats(0, 1.0, [1.0, 1.0, 1.0]),
                 _stats(1, 0.5, [1.0, 1.0, 1.0], gW=[1e4, 1.0, 1.0])]
    assert diagnose(exploding)["exploding_gradients"] == "‖dW1‖ = 1e+04 at epoch 1"
    # growth from a vanishing start is not exploding: 1e-13 to 1e-9 is 1e4-fold, still tiny
    grown = [_stats(0, 1.0, [1e-13] * 3), _stats(1, 1.0, [1e-9] * 3)]
    assert diagnose(grown)["exploding_gradients"] == ""
    stalled = [_stats(e, 1.0 - 1e-4 * e, [0.5, 1.0, 1.0]) for e in range(0, 12)]
    assert diagnose(stalled)["stalled_cost"] == "cost fell 0.10% over epochs 0-10"
    sick = [_stats(0, 1.0, [0.5, 1.0, 1.0], sat=[0.9, 0.0], dead=[0.7, 0.0])]
    found = diagnose(sick)
    assert "layer 1: 90% saturated" in found["saturated_layers"]
    assert "layer 1: 70% dead" in found["dead_units"]


def test_vanishing_is_judged_at_initialization_not_after_the_first_epoch():
    from ffexp.tracking.diagnose import diagnose
    at_init = [_stats(0, 1.0, [1e-5, 1.0, 1.0]),
               *(_stats(e, 0.5, [0.5, 1.0, 1.0]) for e in (1, 2))]
    assert diagnose(at_init)["vanishing_gradients"]
    after = [_stats(0, 1.0, [0.5, 1.0, 1.0]),
             *(_stats(e, 0.5, [1e-5, 1.0, 1.0]) for e in (1, 2))]
    assert not diagnose(after)["vanishing_gradients"]


def test_symmetry_not_broken_from_zero_init():
    from ffexp.nn import Network
    from ffexp.tracking.diagnose import diagnose
    assert diagnose([], Network([2, 4, 1], init="zeros"))["symmetry_not_broken"]
    assert not diagnose([], Network([2, 4, 1], init="he"))["symmetry_not_broken"]


def test_params_are_flattened_within_mlflow_limits():
    from ffexp.tracking.params import MAX_VALUE, flatten
    flat = flatten({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": "x" * 7000, "f": {}})
    assert flat["a.b"] == "1" and flat["a.c"] == "[1,2]" and flat["d"] == "null"
    assert len(flat["e"]) == MAX_VALUE and flat["f"] == "{}"


def test_config_hash_ignores_tracking_and_is_stable():
    from ffexp.tracking.tags import config_hash
    a = config_hash({"seed": 0, "optimizer": {"lr": 0.1}, "tracking": {"uri": "x"}})
    b = config_hash({"optimizer": {"lr": 0.1}, "seed": 0, "tracking": {"uri": "y"}})
    assert a == b != config_hash({"seed": 1, "optimizer": {"lr": 0.1}})


def test_store_uri_resolution(tmp_path, monkeypatch):
    from ffexp.tracking.store import resolve_uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(None, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_uri(None, tmp_path) == "http://127.0.0.1:5000"
    assert resolve_uri("sqlite:///x/runs.db", tmp_path) == f"sqlite:///{tmp_path}/x/runs.db"


def test_existing_run_id_finds_a_finished_run_with_the_same_config(tmp_path, store):
    from dataclasses import replace

    from ffexp.tracking import existing_run_id, record_job
    s = _settings(store)
    s = replace(s, tracking=replace(s.tracking, skip_existing=True))
    context = _context(tmp_path)
    assert existing_run_id(s, context) is None
    with record_job(s, None, context) as recorder:
        pass
    assert existing_run_id(s, context) == recorder.run_id
    other = replace(context, config={"seed": 1})
    assert existing_run_id(s, other) is None
