"""Central-difference gradient checks of every allowed (hidden × output × loss) combination.

3 hidden layers, float64, non-trivial random weights AND biases, 1 and 3 outputs; relative
error (per tensor, see ffexp.nn.gradcheck) < 1e-6. Through a step layer the gradient is
exactly 0. A softmax with 1 output is constant (Ŷ ≡ 1), so its gradient is exactly 0 too;
with cce its only valid (one-hot) label is 1.
"""

import numpy as np
import pytest
from nn_helpers import make_labels, pair_allowed

from ffexp.nn import ACTIVATIONS, HIDDEN_ACTIVATIONS, LOSSES, Network
from ffexp.nn.gradcheck import check_gradients, min_abs_z, numerical_gradient

TOL = 1e-6
#: a kink of relu / leaky_relu / step closer than this to some Z would spoil the differences
KINK_MARGIN = 1e-3

COMBOS = [(hidden, out, loss, n_out)
          for hidden in HIDDEN_ACTIVATIONS for out in ACTIVATIONS for loss in LOSSES
          for n_out in (1, 3) if pair_allowed(out, loss)]


def random_net(layer_sizes, X, *, seed=0, **kwargs) -> Network:
    """A float64 net with random weights and biases, the first seed whose |Z| keeps clear of
    every kink and whose output layer is not entirely dead (some Z[L] > 0, so that a relu
    output passes a gradient); deterministic: the same seed every run."""
    for s in range(seed, seed + 50):
        net = Network(layer_sizes, init="xavier", seed=s, **kwargs)
        r = np.random.default_rng(1000 + s)
        for l in range(net.L):
            net.weights[l][...] = r.normal(0.0, 1.0, net.weights[l].shape) \
                / np.sqrt(net.layer_sizes[l]) * 1.5
            net.biases[l][...] = r.normal(0.0, 0.5, net.biases[l].shape)
        if min_abs_z(net, X) > KINK_MARGIN and np.any(net.forward_all(X)[0][-1] > 0):
            return net
    raise AssertionError("no seed keeps |Z| away from the kinks")


def test_combos_cover_the_issue():
    """The allowed pairs are exactly the issue's: mse with anything, bce with [0,1] outputs,
    cce with softmax — and every registered hidden activation takes part."""
    pairs = {(o, lo) for _, o, lo, _ in COMBOS}
    for o in ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"):
        assert (o, "mse") in pairs
    assert ("sigmoid", "bce") in pairs and ("softmax", "bce") in pairs
    assert ("softmax", "cce") in pairs
    assert {o for o, lo in pairs if lo == "cce"} == {"softmax"}
    assert not {o for o, lo in pairs if lo == "bce"} & {"linear", "tanh", "relu", "leaky_relu"}
    assert {h for h, *_ in COMBOS} == set(HIDDEN_ACTIVATIONS)


@pytest.mark.parametrize("hidden,output,loss,n_out", COMBOS,
                         ids=[f"{h}-{o}-{lo}-{n}" for h, o, lo, n in COMBOS])
def test_gradient_check(hidden, output, loss, n_out):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3, 6))
    Y = make_labels(loss, n_out, 6, rng)
    net = random_net([3, 5, 4, 4, n_out], X, hidden_activation=hidden, output_activation=output)
    before = net.get_params()

    report = check_gradients(net, X, Y, loss)

    assert report.max_rel_error < TOL, str(report)
    assert all(np.array_equal(p, q) for p, q in zip(before, net.get_params()))  # restored
    dW = report.analytic[0::2]
    constant_output = output == "step" or (output == "softmax" and n_out == 1)
    if constant_output:
        # nothing flows back from a step output or a 1-unit softmax: exactly zero everywhere
        assert all(not np.any(g) for g in report.analytic), str(report)
    else:
        assert np.any(dW[-1]), "the output layer's gradient should not vanish here"
    if hidden == "step":
        # every layer up to the last step layer (L-1) gets exactly zero gradient
        assert all(not np.any(g) for g in report.analytic[:2 * (net.L - 1)]), str(report)
        assert all(r.exact for r in report.rows[:2 * (net.L - 1)])


@pytest.mark.parametrize("kwargs,loss", [
    (dict(activations=["leaky_relu", "tanh", "sigmoid", "linear"], slope=0.3), "mse"),
    (dict(hidden_activation="leaky_relu", output_activation="leaky_relu", slope=0.2), "mse"),
    (dict(hidden_activation="tanh", output_activation="softmax", beta=2.5), "cce"),
    (dict(hidden_activation="sigmoid", output_activation="softmax", beta=0.5), "bce"),
    (dict(hidden_activation="relu", output_activation="softmax", beta=3.0), "mse"),
    (dict(hidden_activation="tanh", output_activation="sigmoid", beta=2.5), "bce"),
    (dict(hidden_activation="relu", output_activation="sigmoid", beta=0.5), "mse"),
], ids=["slope-linear-out", "leaky-out", "beta-cce", "beta-bce", "beta-mse", "sigmoid-beta-bce",
        "sigmoid-beta-mse"])
def test_gradient_check_slopes_and_beta(kwargs, loss):
    """Non-default c and β leave the shortcut and take the general chain rule: still exact."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3, 5))
    Y = make_labels(loss, 3, 5, rng)
    net = random_net([3, 4, 4, 3, 3], X, **kwargs)
    report = check_gradients(net, X, Y, loss)
    assert report.max_rel_error < TOL, str(report)


@pytest.mark.parametrize("output,loss", [("sigmoid", "bce"), ("linear", "mse"),
                                         ("softmax", "cce")])
def test_gradient_check_without_hidden_layer(output, loss):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4, 7))
    Y = make_labels(loss, 3, 7, rng)
    net = random_net([4, 3], X, output_activation=output)
    assert check_gradients(net, X, Y, loss).max_rel_error < TOL


def test_gradcheck_catches_a_wrong_gradient():
    """The check is not vacuous: a 1% error in one entry of dW[2] is reported on W2 only."""

    class Broken(Network):
        def gradients(self, X, Y, loss):
            J, dW, db = super().gradients(X, Y, loss)
            dW[1][0, 0] *= 1.01
            return J, dW, db

    rng = np.random.default_rng(5)
    X = rng.normal(size=(3, 6))
    Y = make_labels("bce", 1, 6, rng)
    net = random_net([3, 4, 1], X, hidden_activation="tanh")
    broken = Broken([3, 4, 1], hidden_activation="tanh")
    broken.weights, broken.biases = net.weights, net.biases
    report = check_gradients(broken, X, Y, "bce")
    assert not report.ok()
    assert report["W2"].rel_error > 1e-4
    assert report["W1"].rel_error < TOL and report["b2"].rel_error < TOL
    assert "W2" in str(report) and "rel" in str(report)


def test_numerical_gradient_of_a_known_function():
    """For a 1-layer linear net with mse the cost is quadratic: J = ½/m ‖W X + b − Y‖², so
    ∂J/∂W = (W X + b − Y) Xᵀ / m, computed here without the engine."""
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(2, 5)), rng.normal(size=(3, 5))
    net = Network([2, 3], output_activation="linear", seed=1)
    net.biases[0][...] = rng.normal(size=(3, 1))
    R = net.weights[0] @ X + net.biases[0] - Y
    nW, nb = numerical_gradient(net, X, Y, "mse")
    np.testing.assert_allclose(nW[0], R @ X.T / 5, rtol=1e-8)
    np.testing.assert_allclose(nb[0], R.sum(axis=1, keepdims=True) / 5, rtol=1e-8)
