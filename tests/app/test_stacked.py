"""Jobs trained as one stack (ffexp.job.stacked) against the same jobs run one by one: the same
JobResults, and in a real SQLite store the same runs, params and metric histories as read back
through MlflowClient (every value equal, the wall-clock time/* metrics aside)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from ffexp.job.app import execute, prepare
from ffexp.job.settings import RunContext
from ffexp.launch.config import to_settings
from ffexp.nn import Callback
from ffexp.job.stacked import execute_stacked, stack_groups
from ffexp.tracking.stacked import record_stacked

SMALL = ["dataset.params.n_samples=120", "model.hidden_sizes=[8,8]", "train.epochs=6"]
#: jobs of one shape: the seed, the init, the activation, the learning rate, the epochs and
#: the data's seed differ
VARIED = [["seed=0"], ["seed=1"], ["seed=2", "init=xavier"], ["activation=tanh", "seed=3"],
          ["activation=leaky_relu", "optimizer.lr=0.3"], ["train.epochs=3", "init=zeros"],
          ["dataset.seed=5", "activation=sigmoid", "train.tol=0.01"]]
TIMES = ("time/epoch", "time/elapsed")


def _jobs(settings_of, variants, *extra):
    return [prepare(settings_of(*SMALL, *extra, *v)) for v in variants]


def _same_result(a, b) -> None:
    ta, tb = a.train, b.train
    assert (ta.outcome, ta.message, ta.epochs, ta.updates) == \
        (tb.outcome, tb.message, tb.epochs, tb.updates)
    assert len(ta.history) == len(tb.history)
    for sa, sb in zip(ta.history, tb.history):
        fa, fb = sa.flat(), sb.flat()
        for k in TIMES:
            fa.pop(k), fb.pop(k)
        assert fa == fb, f"epoch {sa.epoch}"
    assert a.metrics == b.metrics
    for p, q in zip(a.net.get_params(), b.net.get_params(), strict=True):
        assert np.array_equal(p, q)


def test_stacked_jobs_equal_separate_jobs(settings_of):
    alone = [execute(job) for job in _jobs(settings_of, VARIED)]
    jobs = _jobs(settings_of, VARIED)
    assert stack_groups(jobs) == [list(range(len(VARIED)))]
    stacked = execute_stacked(jobs)
    for a, b in zip(alone, stacked, strict=True):
        _same_result(a, b)
    assert "val/accuracy" in stacked[0].metrics and "val/cost" in stacked[0].train.final.metrics
    assert stacked[5].train.epochs == 3


def test_groups_by_shape_and_refuses_a_mixed_stack(settings_of):
    jobs = _jobs(settings_of, [["seed=0"], ["model.hidden_sizes=[4]"], ["seed=1"],
                               ["optimizer=sgd"], ["model.hidden_sizes=[4]", "seed=2"]])
    assert stack_groups(jobs) == [[0, 2], [1, 4], [3]]
    with pytest.raises(ValueError, match="jobs trained as one stack must share model.hidden_"):
        execute_stacked(jobs)


class Boom(Callback):
    def __init__(self, at: int):
        self.at = at

    def on_epoch_end(self, net, stats):
        if stats.epoch == self.at:
            raise RuntimeError(f"boom at {self.at}")


def test_a_failing_callback_fails_its_job_alone(settings_of):
    variants = VARIED[:4]
    alone = [execute(job) for job in _jobs(settings_of, variants)]
    stacked = execute_stacked(_jobs(settings_of, variants), [[], [Boom(2)], [], []])
    assert isinstance(stacked[1], RuntimeError) and str(stacked[1]) == "boom at 2"
    for k in (0, 2, 3):
        _same_result(alone[k], stacked[k])


# ---- recorded: one MLflow run per job ---------------------------------------------------------

def _entries(hydra_conf, tmp_path, store, experiment, variants):
    out = []
    for k, v in enumerate(variants):
        cfg = hydra_conf([*SMALL, *v, f"tracking.uri={store}", f"tracking.experiment={experiment}",
                          "tracking.log_plots=false", "tracking.snapshots=0",
                          "tracking.log_model=false"])
        settings = to_settings(cfg)
        context = RunContext("run", list(v), str(tmp_path / experiment / str(k)), None, k, str(k),
                             "ffexp " + " ".join(v), OmegaConf.to_container(cfg, resolve=True))
        out.append((settings, prepare(settings), context))
    return out


def _runs(client, experiment: str) -> dict:
    """{config hash: (run, {metric: [(step, value)]})} of an experiment."""
    exp = client.get_experiment_by_name(experiment)
    out = {}
    for run in client.search_runs([exp.experiment_id]):
        history = {k: sorted((m.step, m.value)
                             for m in client.get_metric_history(run.info.run_id, k))
                   for k in run.data.metrics if k not in TIMES}
        out[run.data.tags["ffexp.config_hash"]] = (run, history)
    return out


def test_recorded_stacked_runs_equal_separate_runs(hydra_conf, tmp_path, store):
    from mlflow import MlflowClient

    from ffexp.tracking import record_job
    variants = VARIED[:5]
    for settings, job, context in _entries(hydra_conf, tmp_path, store, "separate", variants):
        with record_job(settings, job, context) as recorder:
            recorder.finish(execute(job, recorder.callbacks))
    recorded = record_stacked(_entries(hydra_conf, tmp_path, store, "stacked", variants),
                              [[], [], [Boom(3)], [], []])
    assert [r[2] is None for r in recorded] == [True, True, False, True, True]
    assert str(recorded[2][2]) == "boom at 3"
    client = MlflowClient(store)
    separate, stacked = _runs(client, "separate"), _runs(client, "stacked")
    assert set(separate) == set(stacked) and len(separate) == len(variants)
    failed = [h for h, (run, _) in stacked.items() if run.info.status == "FAILED"]
    assert len(failed) == 1 and stacked[failed[0]][0].data.tags["ffexp.outcome"] == "failed"
    for config_hash, (run, history) in separate.items():
        other, other_history = stacked[config_hash]
        assert run.data.params == other.data.params
        if config_hash in failed:   # stopped at epoch 3 by its callback's error, before the
            assert "boom at 3" in other.data.tags["ffexp.error"]   # run's own callback logged it
            assert [step for step, _ in other_history["train/cost"]] == [0, 1, 2]
            assert other_history["train/cost"] == history["train/cost"][:3]
            continue
        assert other.info.status == run.info.status == "FINISHED"
        assert other.data.tags["ffexp.outcome"] == run.data.tags["ffexp.outcome"]
        assert other_history == history   # every value at every step, exactly
        assert all(math.isfinite(v) for values in history.values() for _, v in values)
        assert len(history["train/cost"]) > 3 and "val/cost" in history
