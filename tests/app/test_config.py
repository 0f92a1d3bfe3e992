"""The Hydra configs compose into typed Settings; every dataset config loads and trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from ffexp.job.app import execute, prepare
from ffexp.job.settings import Settings
from ffexp.launch.config import to_settings
from ffexp.job.data import DATASETS
from ffexp.nn import ACTIVATIONS, HIDDEN_ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS

CONF = Path(__file__).resolve().parents[2] / "conf"
#: the label encoding each task must hand the output layer
N_OUTPUTS = {"iris": 3, "wine": 3, "digits": 10, "blobs": 3, "multilabel": 4, "linnerud": 3}


def test_defaults_compose_to_typed_frozen_settings(settings_of):
    s = settings_of()
    assert isinstance(s, Settings)
    assert (s.dataset.name, s.activation.name, s.init.name, s.loss.name, s.optimizer.name) == \
        ("moons", "relu", "he", "auto", "minibatch")
    assert s.model.hidden_sizes == (16, 16) and s.optimizer.batch_size == 32 and s.seed == 0
    assert s.model.output_activation == "auto" and s.train.tol is None
    with pytest.raises(AttributeError):
        s.seed = 1  # frozen


def test_to_settings_accepts_the_hydra_node(hydra_conf):
    from hydra import compose
    cfg = compose("config", return_hydra_config=True)
    assert "hydra" in cfg and to_settings(cfg).dataset.name == "moons"


@pytest.mark.parametrize("group,registry", [
    ("activation", HIDDEN_ACTIVATIONS), ("init", INITIALIZERS), ("loss", [*LOSSES, "auto"]),
    ("optimizer", OPTIMIZERS), ("dataset", DATASETS)])
def test_every_registered_name_has_a_group_option(group, registry, settings_of):
    files = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert files == sorted(n for n in registry if n != "softmax")
    for name in files:
        assert getattr(settings_of(f"{group}={name}"), group).name == name


def test_slopes_only_for_linear_and_leaky_relu(settings_of):
    slopes = {n: settings_of(f"activation={n}").activation.slope for n in HIDDEN_ACTIVATIONS}
    assert {n for n, c in slopes.items() if c is not None} == {"linear", "leaky_relu"}


def test_overrides_reach_the_settings(settings_of):
    s = settings_of("dataset.params.noise=0.3", "model.hidden_sizes=[8]", "optimizer.lr=0.5",
                    "optimizer=sgd", "train.tol=1e-4", "seed=3")
    assert s.dataset.params["noise"] == 0.3 and s.model.hidden_sizes == (8,)
    assert s.optimizer.name == "sgd" and s.train.tol == 1e-4 and s.seed == 3


@pytest.mark.parametrize("override,expected", [
    ("optimizer.lr=abc", "could not be converted to Float"),
    ("optimizer.lx=1", "Could not override 'optimizer.lx'"),
    ("dataset.params.nosie=0.3", "Could not override 'dataset.params.nosie'"),
    ("model.hidden_sizes=[a]", "model.hidden_sizes"),
    ("train.epochs=1.5", "train.epochs"),
])
def test_schema_refuses_wrong_types_and_misspelled_keys(hydra_conf, override, expected):
    with pytest.raises(ConfigCompositionException) as info:
        hydra_conf([override])
    text = f"{info.value} {info.value.__cause__}"
    assert expected in text


def test_unknown_option_lists_the_available_ones(hydra_conf):
    with pytest.raises(MissingConfigException) as info:
        hydra_conf(["activation=swish"])
    listed = str(info.value).split("Available options in 'activation':")[1].split("Config")[0]
    assert listed.split() == sorted(HIDDEN_ACTIVATIONS)  # the schemas are not offered


def test_sweep_in_a_file(hydra_conf):
    from hydra import compose
    c = compose("config", overrides=["+experiment=compare_activations"], return_hydra_config=True)
    assert dict(c.hydra.sweeper.params) == {"activation": "sigmoid,tanh,relu", "seed": "0,1"}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_config_loads_and_trains(settings_of, name):
    s = settings_of(f"dataset={name}", "train.epochs=2")
    job = prepare(s)
    d, spec = job.dataset, DATASETS[name]
    assert s.dataset.task == spec.task == job.task == d.task
    m = [d.X_train.shape[1], d.X_val.shape[1], d.X_test.shape[1]]
    assert all(X.shape[0] == d.n_features for X in (d.X_train, d.X_val, d.X_test))
    assert sum(m) > 0 and m[0] > m[1] > 0 and m[2] > 0
    assert d.n_outputs == N_OUTPUTS.get(name, 1)
    assert job.net.layer_sizes == [d.n_features, 16, 16, d.n_outputs]
    Y = np.concatenate([d.Y_train, d.Y_val, d.Y_test], axis=1)
    if d.task == "multiclass":
        assert np.array_equal(Y.sum(axis=0), np.ones(Y.shape[1])) and set(np.unique(Y)) == {0, 1}
    elif d.task in ("binary", "multilabel"):
        assert set(np.unique(Y)) == {0.0, 1.0}
    result = execute(job)
    assert result.train.epochs == 2 and result.train.outcome == "finished"
    for split in ("train", "val", "test"):
        assert f"{split}/cost" in result.metrics
    assert all(f"val/{job.main_metric}" in st.metrics for st in result.train.history)


def test_classification_task_follows_n_classes(settings_of):
    job = prepare(settings_of("dataset=classification", "dataset.params.n_classes=3"))
    assert job.task == "multiclass" and job.loss == "cce" and job.dataset.n_outputs == 3
