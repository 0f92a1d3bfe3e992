"""Losses: J against the article's formulas, ∂J/∂Ŷ against finite differences, finiteness at
ŷ ∈ {0, 1}, and the shortcut Δ[L] = Ŷ − Y equal to the general chain rule."""

import math
import warnings

import numpy as np
import pytest
from nn_helpers import make_labels

from ffexp.nn import LOSSES, Network, make_activation, make_loss
from ffexp.nn.losses import uses_shortcut


def reference_cost(name, Y, Yhat):
    """(1/m) Σ_i L(y(i), ŷ(i)) with the article's L, written with Python loops (docs/math.md)."""
    n, m = Y.shape
    total = 0.0
    for i in range(m):
        for k in range(n):
            y, p = Y[k, i], Yhat[k, i]
            if name == "mse":
                total += 0.5 * (y - p) ** 2
            elif name == "bce":
                total -= y * math.log(p) + (1 - y) * math.log(1 - p)
            elif name == "cce":
                total -= y * math.log(p) if y else 0.0
    return total / m


def probabilities(name, n, m, rng):
    P = rng.uniform(0.05, 0.95, size=(n, m))
    return P / P.sum(axis=0) if name == "cce" and n > 1 else P


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("n_out", [1, 3])
def test_cost_matches_the_article(name, n_out):
    rng = np.random.default_rng(0)
    Y = make_labels(name, n_out, 7, rng)
    Yhat = probabilities(name, n_out, 7, rng)
    assert make_loss(name).cost(Y, Yhat) == pytest.approx(reference_cost(name, Y, Yhat),
                                                           rel=1e-12)


def test_mse_sums_over_outputs_and_averages_over_examples():
    """½ Σ_k (y_k − ŷ_k)², then the mean over examples (not over outputs: sklearn #8349)."""
    Y = np.zeros((2, 2))
    Yhat = np.array([[1.0, 3.0], [2.0, 0.0]])
    # example 1: ½(1 + 4) = 2.5; example 2: ½(9 + 0) = 4.5; mean 3.5
    assert make_loss("mse").cost(Y, Yhat) == 3.5
    np.testing.assert_array_equal(make_loss("mse").grad(Y, Yhat), Yhat / 2)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("n_out", [1, 3])
def test_grad_matches_central_differences(name, n_out):
    rng = np.random.default_rng(1)
    Y = make_labels(name, n_out, 5, rng)
    Yhat = probabilities(name, n_out, 5, rng)
    loss = make_loss(name)
    G = loss.grad(Y, Yhat)
    assert G.shape == Yhat.shape
    h = 1e-7
    numeric = np.empty_like(Yhat)
    for idx in np.ndindex(Yhat.shape):
        P = Yhat.copy()
        P[idx] += h
        Jp = loss.cost(Y, P)
        P[idx] -= 2 * h
        numeric[idx] = (Jp - loss.cost(Y, P)) / (2 * h)
    np.testing.assert_allclose(G, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", [n for n, c in LOSSES.items() if c.needs_probabilities])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_finite_at_exact_0_and_1(name, dtype):
    Y = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]], dtype=dtype)
    for Yhat in (np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 1.0]], dtype=dtype),
                 Y.copy(), 1.0 - Y):
        with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
            warnings.simplefilter("error")
            J = make_loss(name).cost(Y, Yhat)
            G = make_loss(name).grad(Y, Yhat)
        assert math.isfinite(J) and np.all(np.isfinite(G))
    # a perfect prediction costs (about) nothing, a confidently wrong one a lot
    assert make_loss(name).cost(Y, Y.copy()) < 1e-6
    assert make_loss(name).cost(Y, 1.0 - Y) > 10


def test_make_loss_passes_a_loss_through_and_refuses_unknown_names():
    loss = make_loss("bce")
    assert make_loss(loss) is loss
    with pytest.raises(ValueError, match="'hinge'") as e:
        make_loss("hinge")
    for name in LOSSES:
        assert name in str(e.value)


SHORTCUT_PAIRS = [("linear", "mse"), ("sigmoid", "bce"), ("softmax", "cce")]


def test_every_loss_has_its_shortcut_pair_tested():
    assert {(c.shortcut_activation, n) for n, c in LOSSES.items()} == set(SHORTCUT_PAIRS)


@pytest.mark.parametrize("output,loss", SHORTCUT_PAIRS)
@pytest.mark.parametrize("n_out", [1, 3])
def test_shortcut_equals_the_general_chain_rule(output, loss, n_out):
    """Network.output_error takes the shortcut Δ[L] = (Ŷ − Y)/m; g[L]'ᵀ ∂J/∂Ŷ agrees."""
    if output == "softmax" and n_out == 1:
        pytest.skip("a 1-unit softmax is constant (Ŷ ≡ 1): degenerate")
    rng = np.random.default_rng(2)
    m = 6
    net = Network([2, n_out], output_activation=output)
    act, lossf = net.activations[-1], make_loss(loss)
    assert uses_shortcut(lossf, act)
    Z = rng.normal(size=(n_out, m)) * 2
    Yhat = act.forward(Z)
    Y = make_labels(loss, n_out, m, rng)
    shortcut = net.output_error(Y, Z, Yhat, lossf)
    np.testing.assert_allclose(shortcut, (Yhat - Y) / m, rtol=1e-14, atol=1e-17)
    chain = act.backward(lossf.grad(Y, Yhat), Z, Yhat)
    np.testing.assert_allclose(shortcut, chain, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("output,loss,kw", [("linear", "mse", dict(c=2.0)),
                                            ("sigmoid", "mse", {}), ("softmax", "mse", {}),
                                            ("softmax", "bce", {}), ("tanh", "mse", {})])
def test_other_pairs_take_the_chain_rule(output, loss, kw):
    act = make_activation(output, **kw)
    assert not uses_shortcut(make_loss(loss), act)


def test_softmax_beta_cce_output_error_for_a_confidently_wrong_example():
    """With one-hot Y, ∂J/∂Z[L] = β(Ŷ − Y)/m for any β (the chain rule worked out); the
    engine must give it also when ŷ of the true class is below the clipping epsilon."""
    net = Network([2, 3], output_activation="softmax", beta=2.0)
    Z = np.array([[20.0, 1.0], [0.0, 0.0], [-1.0, 0.5]])   # column 1: sure of class 0...
    Y = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])     # ...but it is class 1
    Yhat = net.activations[-1].forward(Z)
    assert Yhat[1, 0] < np.finfo(float).eps
    dZ = net.output_error(Y, Z, Yhat, make_loss("cce"))
    np.testing.assert_allclose(dZ, 2.0 * (Yhat - Y) / 2, rtol=1e-9, atol=1e-15)
