"""prepare() checks everything before training, naming the key; execute() trains and evaluates."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from ffexp.launch.main import STATUS_FILE, sweep_failures
from ffexp.job.app import Validation, execute, prepare
from ffexp.job.progress import EpochBar, epoch_callbacks, job_line


@pytest.mark.parametrize("overrides,message", [
    (["dataset=diabetes", "loss=cce"],
     "loss=cce: categorical cross-entropy needs a softmax output and one-hot labels, but "
     "dataset=diabetes is a regression task (output linear); accepted losses for regression "
     "with output linear: mse, auto"),
    (["dataset=linnerud", "loss=bce"], "loss=bce: binary cross-entropy"),
    (["dataset=multilabel", "loss=cce"], "loss=cce:"),
    (["model.output_activation=relu"], "loss=auto (= bce): "),
    (["model.output_activation=softmax"], "model.output_activation=softmax: a softmax over the single output"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1: "),
    (["optimizer.batch_size=0"], "optimizer.batch_size=0: "),
    (["train.epochs=0"], "train.epochs=0: "),
    (["train.blas_threads=0"], "train.blas_threads=0: "),
    (["train.eval_every=0"], "train.eval_every=0: "),
    (["train.tol=-1"], "train.tol=-1.0: "),
    (["train.tol_on=loss"], "train.tol_on=loss: unknown; accepted: cost, params"),
    (["model.hidden_sizes=[16,0]"], "model.hidden_sizes=[16,0]: "),
    (["model.dtype=float16"], "model.dtype=float16: unknown; accepted: float64, float32"),
    (["init.distribution=cauchy"], "init.distribution=cauchy: "),
    (["init=random", "init.scale=0"], "init.scale=0.0: "),
    (["activation.name=softmax"], "activation.name=softmax: unknown"),
    (["dataset.task=regression"], "dataset.task=regression: dataset=moons is a binary task"),
    (["+dataset.params.foo=1"], "dataset=moons: unknown param 'foo'"),
    (["dataset.val_fraction=0.9"], "val_fraction"),
    (["dataset.val_fraction=-0.1"], "dataset.val_fraction=-0.1: must be a number in [0, 1)"),
    (["dataset.test_fraction=0"], "dataset.test_fraction=0.0: must be a number in (0, 1)"),
    (["model.beta=0"], "model.beta=0.0: the output's β (softmax temperature) must be a positive"),
    (["dataset=diabetes", "model.beta=2"],
     "model.beta=2.0: β is the temperature of a softmax or sigmoid output, but the output of "
     "dataset=diabetes (regression) is linear"),
    (["model.activations=[tanh]"],
     "model.activations=[tanh]: needs one name per hidden layer: model.hidden_sizes=[16,16] has 2"),
    (["model.activations=[tanh,softmax]"],
     "model.activations=[tanh,softmax]: unknown hidden activation 'softmax'; accepted: step,"),
    (["init.output_gain=nan"], "init.output_gain=nan: must be a finite number"),
    (["seed=-1"], "seed=-1: "),
])
def test_mistakes_are_one_value_error_naming_the_key(settings_of, overrides, message):
    with pytest.raises(ValueError) as info:
        prepare(settings_of(*overrides))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides,message", [
    (["+study.x=1"], "study: unknown config key; accepted keys: ['activation', 'dataset',"),
    (["+model.foo=1"], "model.foo: unknown config key; accepted keys of model: "),
])
def test_added_unknown_keys_are_refused_by_name(settings_of, overrides, message):
    """Hydra lets ``+key=value`` add keys the schema does not have; to_settings refuses them."""
    with pytest.raises(ValueError) as info:
        settings_of(*overrides)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dataset,output,loss", [
    ("moons", "sigmoid", "bce"), ("iris", "softmax", "cce"), ("multilabel", "sigmoid", "bce"),
    ("diabetes", "linear", "mse")])
def test_auto_output_and_loss_follow_the_task(settings_of, dataset, output, loss):
    job = prepare(settings_of(f"dataset={dataset}"))
    assert (job.output_activation, job.loss) == (output, loss)
    assert job.net.activations[-1].name == output


def test_model_beta_is_the_output_layers(settings_of):
    """model.beta: a softmax output's β (iris), and a sigmoid output's, σ(βz) (moons)."""
    for dataset, output in (("iris", "softmax"), ("moons", "sigmoid")):
        net = prepare(settings_of(f"dataset={dataset}", "model.beta=2.5")).net
        assert [getattr(a, "beta", 1.0) for a in net.activations] == [1.0, 1.0, 2.5]
        assert net.activations[-1].name == output
        plain = prepare(settings_of(f"dataset={dataset}")).net
        X = np.random.default_rng(0).normal(size=(net.layer_sizes[0], 5))
        Z = plain.weights[-1] @ np.maximum(plain.weights[1] @ np.maximum(
            plain.weights[0] @ X, 0), 0)   # He init, zero biases: Z[L] of both networks
        np.testing.assert_allclose(net.forward(X), plain.activations[-1].forward(2.5 * Z),
                                   rtol=1e-12)


def test_model_activations_one_per_hidden_layer(settings_of):
    job = prepare(settings_of("model.hidden_sizes=[8,8,8]", "model.activations=[tanh,relu,leaky_relu]",
                              "activation=linear", "activation.slope=0.2"))
    assert [a.name for a in job.net.activations] == ["tanh", "relu", "leaky_relu", "sigmoid"]
    assert job.net.activations[2].c == 0.2     # activation.slope: every sloped hidden layer's
    default = prepare(settings_of("model.hidden_sizes=[8,8,8]", "activation=tanh"))
    assert [a.name for a in default.net.activations] == ["tanh"] * 3 + ["sigmoid"]


def test_init_standard_and_output_gain(settings_of):
    net = prepare(settings_of("init=standard", "model.hidden_sizes=[400,300]")).net
    for W, fan_in in zip(net.weights, (2, 400, 300)):   # Glorot's U(±1/√fan_in)
        r = 1 / np.sqrt(fan_in)
        assert np.abs(W).max() <= r and np.abs(W).max() > 0.9 * r
    gained = prepare(settings_of("init=standard", "model.hidden_sizes=[400,300]",
                                 "init.output_gain=4")).net
    np.testing.assert_array_equal(gained.weights[1], net.weights[1])
    np.testing.assert_allclose(gained.weights[2], 4 * net.weights[2], rtol=1e-15)


def test_standardize_false_keeps_the_raw_features(settings_of):
    raw = prepare(settings_of("dataset.standardize=false")).dataset
    std = prepare(settings_of()).dataset
    for split in ("train", "val", "test"):
        X_raw, X_std = getattr(raw, f"X_{split}"), getattr(std, f"X_{split}")
        np.testing.assert_allclose(X_raw, std.feature_scaler.inverse_transform(X_std.T).T,
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(getattr(raw, f"Y_{split}"), getattr(std, f"Y_{split}"))
    assert np.abs(std.X_train.mean(axis=1)).max() < 1e-12
    assert np.abs(raw.X_train.mean(axis=1)).max() > 0.1   # moons' raw means are 0.5, 0.25
    np.testing.assert_array_equal(raw.feature_scaler.transform(raw.X_train.T).T, raw.X_train)


def test_val_fraction_zero_has_no_validation_split(settings_of):
    job = prepare(settings_of("dataset.val_fraction=0", "train.epochs=3"))
    d = job.dataset
    assert not d.has_validation and d.X_val.shape == (2, 0) and d.Y_val.shape == (1, 0)
    assert (d.X_train.shape[1], d.X_test.shape[1]) == (320, 80)   # 400 examples, test 0.2
    assert job.main_key == "train/accuracy"
    result = execute(job)
    assert all(not k.startswith("val/") for s in result.train.history for k in s.flat())
    assert set(result.metrics) == {f"{s}/{m}" for s in ("train", "test")
                                   for m in ("cost", "accuracy", "f1", "roc_auc")}
    assert prepare(settings_of()).main_key == "val/accuracy"


def test_slope_is_the_hidden_layers_only(settings_of):
    job = prepare(settings_of("dataset=diabetes", "activation=linear", "activation.slope=0.5"))
    assert [getattr(a, "c", None) for a in job.net.activations] == [0.5, 0.5, 1.0]
    relu = prepare(settings_of("activation=relu", "activation.slope=0.5"))  # ignored for relu
    assert relu.net.activations[0].name == "relu"


def test_execute_reports_val_every_epoch_before_other_callbacks(settings_of):
    job = prepare(settings_of("train.epochs=3"))
    seen = []

    class Spy(EpochBar):
        def __init__(self):
            pass

        def on_train_begin(self, net, info):
            pass

        def on_epoch_end(self, net, stats):
            seen.append(sorted(k for k in stats.metrics))

        def on_train_end(self, net, result):
            pass

    result = execute(job, [Spy()])
    assert seen == [["val/accuracy", "val/cost", "val/f1", "val/roc_auc"]] * 4  # steps 0-3
    assert set(result.metrics) == {f"{s}/{m}" for s in ("train", "val", "test")
                                   for m in ("cost", "accuracy", "f1", "roc_auc")}
    assert result.metrics["train/cost"] == pytest.approx(result.train.history[-1].cost)
    assert result.seconds > 0 and result.net is job.net


def test_eval_every_thins_the_task_metrics_not_the_cost(settings_of):
    """train.eval_every=3 over 7 epochs: val/cost every epoch; val/accuracy etc. at step 0,
    epochs 3, 6 and the last, 7 — with the values an every-epoch run computes at those epochs."""
    every = execute(prepare(settings_of("train.epochs=7", "seed=2"))).train.history
    thin = execute(prepare(settings_of("train.epochs=7", "seed=2", "train.eval_every=3"))).train.history
    assert [s.epoch for s in thin if "val/accuracy" in s.metrics] == [0, 3, 6, 7]
    assert all("val/cost" in s.metrics for s in thin)
    for a, b in zip(every, thin):
        assert {k: v for k, v in a.metrics.items() if k in b.metrics} == b.metrics


def test_same_settings_same_metrics(settings_of):
    a = execute(prepare(settings_of("train.epochs=5", "seed=4"))).metrics
    b = execute(prepare(settings_of("train.epochs=5", "seed=4"))).metrics
    c = execute(prepare(settings_of("train.epochs=5", "seed=5"))).metrics
    assert a == b and a != c


def test_seed_changes_the_network_not_the_data(settings_of):
    a, b = prepare(settings_of("seed=0")), prepare(settings_of("seed=1"))
    assert np.array_equal(a.dataset.X_train, b.dataset.X_train)
    assert not np.array_equal(a.net.weights[0], b.net.weights[0])


def test_validation_skips_nonfinite_outputs(settings_of):
    job = prepare(settings_of("dataset=diabetes", "train.epochs=1"))
    job.net.weights[-1][...] = np.inf
    stats = type("S", (), {"metrics": {}, "epoch": 1})()
    Validation(job).on_epoch_end(job.net, stats)
    assert stats.metrics == {}


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_for_a_single_run_on_a_terminal(settings_of):
    assert epoch_callbacks("run", "accuracy", io.StringIO()) == []
    assert epoch_callbacks("multirun", "accuracy", FakeTTY()) == []
    assert [type(c) for c in epoch_callbacks("run", "accuracy", FakeTTY())] == [EpochBar]
    out = FakeTTY()
    execute(prepare(settings_of("train.epochs=4")), [EpochBar("accuracy", out, mininterval=0)])
    assert "4/4" in out.getvalue() and "val/accuracy" in out.getvalue()


def test_job_line():
    line = job_line(3, ["activation=tanh", "seed=1"], "finished", 1.234, ("val/accuracy", 0.975))
    assert line == "[job 3] activation=tanh seed=1: finished  val/accuracy=0.9750  (1.23 s)"


def test_sweep_failures_counts_dead_jobs(tmp_path):
    for num, status in ((0, "ok"), (1, "failed")):
        (tmp_path / str(num)).mkdir()
        (tmp_path / str(num) / STATUS_FILE).write_text(json.dumps(
            {"job_num": num, "overrides": [f"seed={num}"], "status": status}))
    (tmp_path / "2" / ".hydra").mkdir(parents=True)  # started, never wrote a status
    failed, total = sweep_failures(tmp_path)
    assert total == 3 and [f["job_num"] for f in failed] == [1, "2"]
