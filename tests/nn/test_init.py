"""Initializations: Xavier and He variances within 5% of the formulas (500×500), the random
scale, zeros (and the symmetry problem it causes), explicit Generators."""

import numpy as np
import pytest

from ffexp.nn import INITIALIZERS, Network, stream, train
from ffexp.nn.initializers import DISTRIBUTIONS, variance

FAN_IN, FAN_OUT = 500, 500


def expected_variance(name, fan_in, fan_out, distribution, scale):
    """docs/math.md's formulas, written out independently of ffexp.nn.initializers."""
    if name == "xavier":
        return 2.0 / (fan_in + fan_out)
    if name == "he":
        return 2.0 / fan_in
    if name == "random":   # N(0,1)·scale, or U(−scale, scale)
        return scale**2 if distribution == "normal" else scale**2 / 3.0
    if name == "standard":  # Glorot's U(−1/√fan_in, 1/√fan_in): r²/3
        return 1.0 / (3.0 * fan_in)
    if name == "zeros":
        return 0.0
    return variance(name, fan_in, fan_out, distribution, scale)  # a new registration


@pytest.mark.parametrize("name", list(INITIALIZERS))
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("fans", [(FAN_IN, FAN_OUT), (300, 500)])
def test_empirical_variance_within_5_percent(name, distribution, fans):
    fan_in, fan_out = fans
    scale = 0.05
    W = INITIALIZERS[name](stream(0, "init"), fan_in, fan_out, distribution, scale)
    assert W.shape == (fan_out, fan_in)
    want = expected_variance(name, fan_in, fan_out, distribution, scale)
    assert variance(name, fan_in, fan_out, distribution, scale) == pytest.approx(want)
    if want == 0.0:
        assert not np.any(W)
        return
    assert W.var() == pytest.approx(want, rel=0.05)
    assert abs(W.mean()) < 0.05 * np.sqrt(want)
    if distribution == "uniform":  # U(−r, r) with r = sqrt(3 · variance)
        r = np.sqrt(3.0 * want)
        assert np.abs(W).max() <= r and np.abs(W).max() > 0.99 * r
    else:                          # a normal has tails beyond 3σ; a uniform does not
        assert np.abs(W).max() > 3.5 * np.sqrt(want)


@pytest.mark.parametrize("name", list(INITIALIZERS))
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_network_weights_have_the_formula_variance(name, distribution):
    net = Network([FAN_IN, FAN_OUT, 1], init=name, init_distribution=distribution,
                  init_scale=0.2, seed=3)
    W = net.weights[0]
    assert W.shape == (FAN_OUT, FAN_IN) and W.dtype == np.float64
    want = expected_variance(name, FAN_IN, FAN_OUT, distribution, 0.2)
    if want == 0.0:
        assert not np.any(W)
    else:
        assert W.var() == pytest.approx(want, rel=0.05)
    for b in net.biases:
        assert not np.any(b)


@pytest.mark.parametrize("scale", [0.01, 0.5, 3.0])
def test_random_init_scale(scale):
    net = Network([400, 300, 1], init="random", init_scale=scale)
    assert net.weights[0].std() == pytest.approx(scale, rel=0.02)


def test_bias_constant():
    net = Network([3, 4, 2], bias_init=0.1)
    for b, n in zip(net.biases, (4, 2)):
        assert b.shape == (n, 1)
        np.testing.assert_array_equal(b, 0.1)


@pytest.mark.parametrize("gain", [3.0, 0.25])
def test_output_gain_scales_the_output_layer_only(gain):
    plain = Network([5, 7, 6, 2], init="xavier", seed=4)
    gained = Network([5, 7, 6, 2], init="xavier", seed=4, output_gain=gain)
    for l in range(2):
        np.testing.assert_array_equal(gained.weights[l], plain.weights[l])
    np.testing.assert_allclose(gained.weights[2], gain * plain.weights[2], rtol=1e-15)
    assert np.any(gained.weights[2] != plain.weights[2])
    with pytest.raises(ValueError, match="output gain must be a finite number, got nan"):
        Network([5, 2], output_gain=float("nan"))


def test_zeros_keep_the_units_of_a_layer_identical():
    """The symmetry problem: from zero weights all units of a hidden layer stay equal."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 40))
    Y = (X[:1] * X[1:] > 0).astype(float)
    net = Network([2, 5, 1], hidden_activation="tanh", init="zeros", bias_init=0.1)
    train(net, X, Y, "bce", optimizer="batch", lr=0.5, epochs=20)
    W1, W2 = net.weights
    assert np.any(W2)  # something did train...
    np.testing.assert_allclose(W1, W1[:1].repeat(5, axis=0), atol=1e-15)  # ...symmetrically
    np.testing.assert_allclose(W2, W2[:, :1].repeat(5, axis=1), atol=1e-15)


def test_init_draws_only_from_the_init_stream():
    """Weights come from stream(seed, 'init') in layer order; the global state is untouched."""
    np.random.seed(99)
    state = np.random.get_state()[1].copy()
    net = Network([4, 6, 3], init="he", seed=11)
    rng = stream(11, "init")
    np.testing.assert_array_equal(net.weights[0], INITIALIZERS["he"](rng, 4, 6, "normal", 0.01))
    np.testing.assert_array_equal(net.weights[1], INITIALIZERS["he"](rng, 6, 3, "normal", 0.01))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert not np.array_equal(Network([4, 6, 3], seed=12).weights[0], net.weights[0])


def test_streams_are_independent_and_reproducible():
    a = stream(5, "init").normal(size=10)
    np.testing.assert_array_equal(a, stream(5, "init").normal(size=10))
    for purpose in ("data", "shuffle"):
        assert not np.array_equal(a, stream(5, purpose).normal(size=10))
    with pytest.raises(ValueError, match="'weights'"):
        stream(5, "weights")
