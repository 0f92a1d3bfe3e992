"""Activations: values and derivatives against finite differences and the article's formulas,
the article's identities (softmax, hardmax, linear collapse) and numerical stability."""

import math
import warnings

import numpy as np
import pytest

from ffexp.nn import ACTIVATIONS, HIDDEN_ACTIVATIONS, Network, make_activation

ELEMENTWISE = [n for n, c in ACTIVATIONS.items() if c.elementwise]

#: the article's g(z) written out independently (docs/math.md, table 1), default parameters
REFERENCE = {
    "step": lambda z: 1.0 if z > 0 else 0.0,
    "linear": lambda z: z,
    "sigmoid": lambda z: 1.0 / (1.0 + math.exp(-z)),
    "tanh": math.tanh,
    "relu": lambda z: max(0.0, z),
    "leaky_relu": lambda z: z if z > 0 else 0.01 * z,
}


def test_hidden_activations_are_the_elementwise_ones():
    assert set(HIDDEN_ACTIVATIONS) == set(ELEMENTWISE)
    assert "softmax" not in HIDDEN_ACTIVATIONS
    assert set(REFERENCE) | {"softmax"} >= set(ACTIVATIONS), "new activation: add its reference"


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_value_matches_the_article(name):
    z = np.array([[-3.0, -0.7, -0.1, 0.2, 0.9, 4.0]])
    A = make_activation(name).forward(z)
    assert A.shape == z.shape
    np.testing.assert_allclose(A.ravel(), [REFERENCE[name](v) for v in z.ravel()], rtol=1e-12)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_differences(name):
    """g'(z) and backward(dA) = dA ⊙ g'(z), away from the kinks at 0."""
    g = make_activation(name)
    Z = np.array([[-3.0, -0.7, -0.1, 0.2, 0.9, 4.0], [-2.0, -0.3, 0.05, 0.4, 1.5, 2.5]])
    h = 1e-6
    numeric = (g.forward(Z + h) - g.forward(Z - h)) / (2 * h)
    A = g.forward(Z)
    np.testing.assert_allclose(g.derivative(Z, A), numeric, rtol=1e-7, atol=1e-10)
    dA = np.random.default_rng(0).normal(size=Z.shape)
    np.testing.assert_allclose(g.backward(dA, Z, A), dA * numeric, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name,c", [("linear", 0.5), ("linear", 3.0), ("leaky_relu", 0.1),
                                    ("leaky_relu", 0.001)])
def test_slope_c(name, c):
    g = make_activation(name, c=c)
    Z = np.array([[-2.0, -0.5, 0.5, 2.0]])
    expected = c * Z if name == "linear" else np.where(Z > 0, Z, c * Z)
    np.testing.assert_array_equal(g.forward(Z), expected)
    slope = np.full_like(Z, c) if name == "linear" else np.where(Z > 0, 1.0, c)
    np.testing.assert_array_equal(g.derivative(Z, g.forward(Z)), slope)


def test_relu_derivative_is_zero_at_zero():
    g = make_activation("relu")
    Z = np.array([[0.0, -0.0, 1e-300, -1e-300]])
    np.testing.assert_array_equal(g.derivative(Z, g.forward(Z)), [[0.0, 0.0, 1.0, 0.0]])


def test_step_derivative_is_exactly_zero():
    g = make_activation("step")
    Z = np.linspace(-5, 5, 11).reshape(1, -1)
    assert not np.any(g.derivative(Z, g.forward(Z)))
    assert not np.any(g.backward(np.ones_like(Z), Z, g.forward(Z)))
    assert g.blocks_gradient


# -- softmax ------------------------------------------------------------------------------

def softmax_reference(z, beta=1.0):
    e = [math.exp(beta * v) for v in z]
    return np.array([v / sum(e) for v in e])


@pytest.mark.parametrize("beta", [1.0, 0.5, 3.0])
def test_softmax_value(beta):
    Z = np.array([[0.3, -1.0], [-0.2, 2.0], [1.1, 0.0]])
    A = make_activation("softmax", beta=beta).forward(Z)
    for j in range(Z.shape[1]):
        np.testing.assert_allclose(A[:, j], softmax_reference(Z[:, j], beta), rtol=1e-12)
    np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=1e-15)


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_softmax_jacobian_is_a_i_delta_ij_minus_a_j(beta):
    """∂a_i/∂z_j = β a_i (δ_ij − a_j): the formula, the jacobian(), backward() and central
    differences all agree."""
    g = make_activation("softmax", beta=beta)
    z = np.array([0.4, -1.3, 0.9, 0.1])
    a = g.forward(z.reshape(-1, 1)).ravel()
    n = z.size
    formula = np.array([[beta * a[i] * ((i == j) - a[j]) for j in range(n)] for i in range(n)])
    h = 1e-6
    numeric = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        numeric[:, j] = (g.forward((z + e).reshape(-1, 1)) - g.forward((z - e).reshape(-1, 1))
                         ).ravel() / (2 * h)
    np.testing.assert_allclose(g.jacobian(z), formula, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(numeric, formula, rtol=1e-7, atol=1e-10)
    # backward is the vector-Jacobian product dZ = Jᵀ dA, for every column of a batch
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(n, 5))
    dA = rng.normal(size=(n, 5))
    A = g.forward(Z)
    dZ = g.backward(dA, Z, A)
    for k in range(5):
        np.testing.assert_allclose(dZ[:, k], g.jacobian(Z[:, k]).T @ dA[:, k], rtol=1e-12,
                                   atol=1e-15)


def test_softmax_has_no_elementwise_derivative():
    with pytest.raises(TypeError):
        make_activation("softmax").derivative(np.zeros((2, 1)), np.zeros((2, 1)))


def test_two_unit_softmax_with_z2_zero_is_sigmoid():
    z1 = np.linspace(-30, 30, 121)
    Z = np.vstack([z1, np.zeros_like(z1)])
    A = make_activation("softmax").forward(Z)
    np.testing.assert_allclose(A[0], make_activation("sigmoid").forward(z1), rtol=1e-12)
    np.testing.assert_allclose(A[0], 1 / (1 + np.exp(-z1)), rtol=1e-12)


def test_softmax_with_large_beta_tends_to_hardmax():
    """β → ∞: 1/p on each of the p largest entries (ties share), 0 elsewhere."""
    Z = np.array([[1.0, 2.0, 0.5], [3.0, 2.0, 0.5], [3.0, 2.0, 0.5], [-1.0, 2.0, 0.4]])
    # columns: two tied maxima (1/2 each), four tied (1/4), three tied (1/3)
    hardmax = np.array([[0, 1 / 4, 1 / 3], [0.5, 1 / 4, 1 / 3], [0.5, 1 / 4, 1 / 3],
                        [0, 1 / 4, 0]])
    errors = [np.abs(make_activation("softmax", beta=b).forward(Z) - hardmax).max()
              for b in (1.0, 10.0, 100.0, 1e4)]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0.1
    assert errors[-1] < 1e-12


@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_sigmoid_beta_is_the_softmax_of_z_and_0(beta):
    """A sigmoid output's β: σ(βz) is the first row of softmax_β over the logits (z, 0), and
    its derivative is β σ(βz)(1 − σ(βz))."""
    z1 = np.linspace(-30, 30, 13).reshape(1, -1)
    g = make_activation("sigmoid", beta=beta)
    A = g.forward(z1)
    two = make_activation("softmax", beta=beta).forward(np.vstack([z1, np.zeros_like(z1)]))
    np.testing.assert_allclose(A[0], two[0], rtol=1e-12)
    z, h = np.linspace(-4, 4, 9).reshape(1, -1), 1e-6
    numeric = (g.forward(z + h) - g.forward(z - h)) / (2 * h)
    np.testing.assert_allclose(g.derivative(z, g.forward(z)), numeric, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", ["softmax", "sigmoid"])
def test_beta_must_be_positive(name):
    for beta in (0.0, -1.0):
        with pytest.raises(ValueError, match=repr(beta)):
            make_activation(name, beta=beta)


# -- linear layers collapse ------------------------------------------------------------------

def test_two_linear_layers_are_one():
    """W[2](W[1] x + b[1]) + b[2] = (W[2] W[1]) x + (W[2] b[1] + b[2])."""
    rng = np.random.default_rng(2)
    net = Network([3, 4, 2], activations=["linear", "linear"], seed=1)
    net.biases[0][...] = rng.normal(size=(4, 1))
    net.biases[1][...] = rng.normal(size=(2, 1))
    W1, W2 = net.weights
    b1, b2 = net.biases
    one = Network([3, 2], output_activation="linear")
    one.weights[0][...] = W2 @ W1
    one.biases[0][...] = W2 @ b1 + b2
    X = rng.normal(size=(3, 10))
    np.testing.assert_allclose(net.forward(X), one.forward(X), rtol=1e-12, atol=1e-12)


def test_a_linear_only_network_is_one_linear_layer():
    rng = np.random.default_rng(3)
    sizes = [3, 6, 5, 4, 2]
    net = Network(sizes, hidden_activation="linear", output_activation="linear", init="xavier")
    for b in net.biases:
        b[...] = rng.normal(size=b.shape)
    W, b = np.eye(3), np.zeros((3, 1))
    for Wl, bl in zip(net.weights, net.biases):
        W, b = Wl @ W, Wl @ b + bl
    X = rng.normal(size=(3, 8))
    np.testing.assert_allclose(net.forward(X), W @ X + b, rtol=1e-12, atol=1e-12)


# -- numerical stability -----------------------------------------------------------------

EXTREME = np.array([[-1e4, -1e3, -745.0, -40.0, -1.0, 0.0, 1.0, 40.0, 710.0, 1e3, 1e4]])


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_no_warning_or_nan_for_large_z(name, dtype):
    g = make_activation(name)
    Z = np.vstack([EXTREME, -EXTREME[:, ::-1] * 0.5, np.zeros_like(EXTREME)]).astype(dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        A = g.forward(Z)
        dZ = g.backward(np.ones_like(Z), Z, A)
        D = g.derivative(Z, A) if g.elementwise else g.jacobian(Z[:, 0])
    for arr in (A, dZ, D):
        assert np.all(np.isfinite(arr)), name
    lo, hi = g.output_range
    assert np.all(A >= lo) and np.all(A <= hi)


def test_sigmoid_and_softmax_limits_at_large_z():
    s = make_activation("sigmoid").forward(np.array([[-1e4, 1e4]]))
    np.testing.assert_array_equal(s, [[0.0, 1.0]])
    A = make_activation("softmax").forward(np.array([[1e4, -1e4], [-1e4, 1e4]]))
    np.testing.assert_array_equal(A, np.eye(2))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_keeps_dtype(name):
    Z = np.linspace(-3, 3, 12).reshape(3, 4).astype(np.float32)
    g = make_activation(name)
    A = g.forward(Z)
    assert A.dtype == np.float32
    assert g.backward(np.ones_like(Z), Z, A).dtype == np.float32


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_in_place_forms_agree_with_forward_and_backward(name):
    """forward_into / backward_inplace (the training step's buffer forms), where present,
    give exactly what forward / backward give."""
    g = make_activation(name)
    if not hasattr(g, "forward_into"):
        pytest.skip("no in-place forms")
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(3, 5)) * 3
    A = g.forward(Z)
    out = np.empty_like(Z)
    g.forward_into(Z, out)
    np.testing.assert_array_equal(out, A)
    # the bookkeeping pass's form: in place, with an array of zeros (ReLU compares with it)
    Z[0, :2] = 0.0   # on the kink
    A = g.forward(Z)
    out = Z.copy()
    g.forward_into(out, out, np.zeros_like(Z))
    np.testing.assert_array_equal(out, A)
    dA = rng.normal(size=Z.shape)
    dZ = dA.copy()
    g.backward_inplace(dZ, Z, A)
    np.testing.assert_allclose(dZ, g.backward(dA, Z, A), rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", [n for n, c in ACTIVATIONS.items() if c.can_die])
def test_inactive_from_sums_agrees_with_inactive_from_z(name):
    """Where an activation says its dead units follow from the row sums of A alone, they
    equal those from Z, over a whole set as over each of its parts added up."""
    g = make_activation(name)
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(6, 40)) - 1.5
    Z[2] = -np.abs(Z[2])          # a dead unit
    Z[4, 7], Z[5] = 1e-300, 0.0   # alive by one tiny z; dead with z = 0 exactly
    truth = np.all(Z <= 0, axis=1)
    np.testing.assert_array_equal(g.inactive(Z), truth)
    if g.inactive_from_sums:
        A = g.forward(Z)
        sums = A[:, :15].sum(axis=1) + A[:, 15:].sum(axis=1)
        np.testing.assert_array_equal(g.inactive(None, sums), truth)
