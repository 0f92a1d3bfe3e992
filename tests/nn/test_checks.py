"""Every refused input raises ValueError before any training, naming the offending value."""

import numpy as np
import pytest
from nn_helpers import empirical_range, pair_allowed

from ffexp.nn import (ACTIVATIONS, HIDDEN_ACTIVATIONS, INITIALIZERS, LOSSES, OPTIMIZERS, Callback,
                      Network, train)


class Spy(Callback):
    def __init__(self):
        self.began = False

    def on_train_begin(self, net, info):
        self.began = True


def refused_before_training(net, X, Y, loss="bce", match=None, **kwargs):
    """train(...) raises ValueError matching ``match``; no callback ran, no parameter moved."""
    spy, before = Spy(), net.get_params()
    with pytest.raises(ValueError, match=match) as e:
        train(net, X, Y, loss, callbacks=[spy], epochs=kwargs.pop("epochs", 2), **kwargs)
    assert not spy.began
    assert all(np.array_equal(p, q) for p, q in zip(before, net.get_params()))
    return str(e.value)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 8))
    Y = (X[:1] > 0).astype(float)
    return X, Y


def test_softmax_in_a_hidden_layer():
    with pytest.raises(ValueError, match="softmax") as e:
        Network([2, 3, 2], hidden_activation="softmax", output_activation="softmax")
    assert "hidden layer 1" in str(e.value)
    with pytest.raises(ValueError, match="hidden layer 2"):
        Network([2, 3, 3, 2], activations=["relu", "softmax", "softmax"])


@pytest.mark.parametrize("output", list(ACTIVATIONS))
@pytest.mark.parametrize("loss", list(LOSSES))
def test_output_loss_pairs(output, loss, data):
    """Refused exactly when the issue says: cce without softmax, cross-entropy on an output
    not within [0, 1] (measured on a grid); the message names the activation and the loss."""
    X, _ = data
    n_out = 2
    net = Network([2, 3, n_out], output_activation=output)
    Y = np.zeros((n_out, 8))
    Y[0] = 1.0
    if pair_allowed(output, loss):
        J, dW, db = net.gradients(X, Y, loss)
        assert np.isfinite(J)
        return
    with pytest.raises(ValueError) as e:
        net.gradients(X, Y, loss)
    msg = str(e.value)
    assert repr(output) in msg and repr(loss) in msg
    refused_before_training(net, X, Y, loss, match=repr(output))


def test_cross_entropy_is_refused_on_unbounded_outputs():
    """The named cases of the issue, whatever the registry says about ranges."""
    for output in ("linear", "relu", "tanh", "leaky_relu"):
        lo, hi = empirical_range(output)
        assert lo < 0 or hi > 1
        for loss in ("bce", "cce"):
            with pytest.raises(ValueError, match=repr(output)):
                Network([2, 1], output_activation=output).gradients(
                    np.ones((2, 1)), np.ones((1, 1)), loss)


def test_cce_without_softmax(data):
    X, Y = data
    msg = refused_before_training(Network([2, 3, 1], output_activation="sigmoid"), X, Y, "cce",
                                  match="softmax")
    assert "'sigmoid'" in msg and "'cce'" in msg


@pytest.mark.parametrize("shape", [(2, 8), (1, 7), (8,), (1, 9), (8, 1)])
def test_label_shape_mismatch(shape, data):
    X, _ = data
    msg = refused_before_training(Network([2, 3, 1]), X, np.zeros(shape), "bce")
    assert str(tuple(shape)) in msg and "m=8" in msg


def test_x_shape_mismatch(data):
    X, Y = data
    msg = refused_before_training(Network([3, 3, 1]), X, Y, "bce")
    assert str(X.shape) in msg


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
@pytest.mark.parametrize("loss,output", [("bce", "sigmoid"), ("cce", "softmax")])
def test_cross_entropy_labels_outside_0_1(bad, loss, output, data):
    X, _ = data
    Y = np.zeros((2, 8))
    Y[0] = 1.0
    Y[1, 3], Y[0, 3] = bad, 0.0
    msg = refused_before_training(Network([2, 3, 2], output_activation=output), X, Y, loss)
    assert repr(bad) in msg or str(bad) in msg


def test_cce_needs_one_hot_columns(data):
    """Multi-hot (or empty) columns would make the shortcut Δ[L] = Ŷ − Y wrong: refused."""
    X, _ = data
    Y = np.zeros((3, 8))
    Y[0] = 1.0
    Y[1, 2] = 1.0   # column 2 has two ones
    Y[0, 5] = 0.0   # column 5 has none
    net = Network([2, 3, 3], output_activation="softmax")
    msg = refused_before_training(net, X, Y, "cce", match="one-hot")
    assert "[2, 5]" in msg


def test_mse_accepts_any_real_labels(data):
    X, _ = data
    net = Network([2, 3, 1], output_activation="linear")
    assert train(net, X, np.full((1, 8), 3.7), "mse", epochs=1).outcome == "finished"


@pytest.mark.parametrize("where", ["X", "Y"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_data(where, value, data):
    X, Y = data
    X, Y = X.copy(), Y.copy()
    (X if where == "X" else Y)[0, 4] = value
    msg = refused_before_training(Network([2, 3, 1], output_activation="linear"), X, Y, "mse")
    assert where in msg and "non-finite" in msg and "NaN or inf" in msg
    with pytest.raises(ValueError, match="non-finite"):
        Network([2, 3, 1], output_activation="linear").gradients(X, Y, "mse")


@pytest.mark.parametrize("kwargs,bad", [
    (dict(hidden_activation="swish"), "'swish'"),
    (dict(output_activation="hardmax"), "'hardmax'"),
    (dict(activations=["relu", "gelu"]), "'gelu'"),
    (dict(init="orthogonal"), "'orthogonal'"),
    (dict(init_distribution="laplace"), "'laplace'"),
    (dict(dtype="float16"), "'float16'"),
])
def test_unknown_network_names(kwargs, bad):
    with pytest.raises(ValueError, match=bad) as e:
        Network([2, 3, 1], **kwargs)
    msg = str(e.value)
    assert "expected one of" in msg


def test_unknown_names_list_every_registered_choice():
    for registry, kwargs in ((ACTIVATIONS, dict(hidden_activation="nope")),
                             (INITIALIZERS, dict(init="nope"))):
        with pytest.raises(ValueError) as e:
            Network([2, 3, 1], **kwargs)
        for name in registry:
            assert name in str(e.value)


def test_unknown_loss_and_optimizer(data):
    X, Y = data
    msg = refused_before_training(Network([2, 3, 1]), X, Y, "hinge", match="'hinge'")
    assert all(name in msg for name in LOSSES)
    msg = refused_before_training(Network([2, 3, 1]), X, Y, "bce", optimizer="adam",
                                  match="'adam'")
    assert all(name in msg for name in OPTIMIZERS)


@pytest.mark.parametrize("sizes,bad", [([2, 0, 1], "0"), ([2, -3, 1], "-3"), ([0, 3, 1], "0"),
                                       ([2, 3, 0], "0"), ([2, 2.5, 1], "2.5"), ([2], "[2]")])
def test_non_positive_layer_sizes(sizes, bad):
    with pytest.raises(ValueError) as e:
        Network(sizes)
    msg = str(e.value)
    assert "layer_sizes" in msg and bad in msg


@pytest.mark.parametrize("kwargs,name,bad", [
    (dict(lr=0.0), "lr", "0.0"), (dict(lr=-0.1), "lr", "-0.1"), (dict(lr=float("nan")), "lr", "nan"),
    (dict(batch_size=0), "batch_size", "0"), (dict(batch_size=-4), "batch_size", "-4"),
    (dict(epochs=0), "epochs", "0"), (dict(epochs=-1), "epochs", "-1"),
    (dict(epochs=2.5), "epochs", "2.5"), (dict(tol=0.0), "tol", "0.0"),
    (dict(tol=-1e-3), "tol", "-0.001"), (dict(patience=0), "patience", "0"),
    (dict(epoch_gradients="some"), "epoch_gradients", "'some'"),
    (dict(tol_on="loss"), "tol_on", "'loss'"),
])
def test_non_positive_training_settings(kwargs, name, bad, data):
    X, Y = data
    msg = refused_before_training(Network([2, 3, 1]), X, Y, "bce", **kwargs)
    assert name in msg and bad in msg


def test_init_scale_must_be_positive():
    for scale in (0.0, -0.01):
        with pytest.raises(ValueError, match=repr(scale)):
            Network([2, 3, 1], init="random", init_scale=scale)


def test_every_hidden_activation_is_accepted():
    for name in HIDDEN_ACTIVATIONS:
        assert Network([2, 3, 1], hidden_activation=name).activations[0].name == name
