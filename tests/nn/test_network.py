"""The Network: a worked example by hand, shapes, the public attributes, save/load, float32."""

import numpy as np
import pytest

from ffexp.nn import Network, make_loss, train


def worked_net():
    """2-2-1: relu hidden, linear output, hand-set weights (none zero, none equal)."""
    net = Network([2, 2, 1], hidden_activation="relu", output_activation="linear")
    net.weights[0] = np.array([[0.1, -0.2],
                               [0.3, 0.4]])
    net.biases[0] = np.array([[0.05], [-0.1]])
    net.weights[1] = np.array([[0.5, -0.6]])
    net.biases[1] = np.array([[0.2]])
    return net


# two examples as columns: x(1) = (1, 2) with y = 1, x(2) = (2, -1) with y = 0
X = np.array([[1.0, 2.0],
              [2.0, -1.0]])
Y = np.array([[1.0, 0.0]])


def test_worked_example_forward():
    net = worked_net()
    # Z[1] = W[1] X + b[1]
    #   x(1): 0.1·1 − 0.2·2 + 0.05 = −0.25 ;  0.3·1 + 0.4·2 − 0.1 = 1.0
    #   x(2): 0.1·2 − 0.2·(−1) + 0.05 = 0.45 ;  0.3·2 + 0.4·(−1) − 0.1 = 0.1
    # A[1] = relu(Z[1]) = [[0, 0.45], [1.0, 0.1]]
    # Z[2] = 0.5·A1[0] − 0.6·A1[1] + 0.2:  x(1): −0.6 + 0.2 = −0.4 ;  x(2): 0.225 − 0.06 + 0.2 = 0.365
    Zs, As = net.forward_all(X)
    np.testing.assert_allclose(Zs[1], [[-0.25, 0.45], [1.0, 0.1]], rtol=1e-14)
    np.testing.assert_allclose(As[1], [[0.0, 0.45], [1.0, 0.1]], rtol=1e-14)
    np.testing.assert_allclose(net.forward(X), [[-0.4, 0.365]], rtol=1e-14)
    assert Zs[0] is None and As[0] is X


def test_worked_example_gradient():
    net = worked_net()
    # J = (1/2)·[½(−0.4 − 1)² + ½(0.365 − 0)²] = (0.98 + 0.0666125) / 2 = 0.52330625
    # dZ[2] = (Ŷ − Y)/m = [−1.4, 0.365]/2 = [−0.7, 0.1825]
    # dW[2] = dZ[2] A[1]ᵀ = [−0.7·0 + 0.1825·0.45, −0.7·1.0 + 0.1825·0.1] = [0.082125, −0.68175]
    # db[2] = −0.7 + 0.1825 = −0.5175
    # dA[1] = W[2]ᵀ dZ[2]: x(1): [0.5·−0.7, −0.6·−0.7] = [−0.35, 0.42]
    #                      x(2): [0.5·0.1825, −0.6·0.1825] = [0.09125, −0.1095]
    # dZ[1] = dA[1] ⊙ relu'(Z[1]), relu' = [[0, 1], [1, 1]]  ->  [[0, 0.09125], [0.42, −0.1095]]
    # dW[1] = dZ[1] Xᵀ: row 1: [0·1 + 0.09125·2, 0·2 + 0.09125·(−1)] = [0.1825, −0.09125]
    #                   row 2: [0.42·1 − 0.1095·2, 0.42·2 − 0.1095·(−1)] = [0.201, 0.9495]
    # db[1] = row sums of dZ[1] = [0.09125, 0.3105]
    J, dW, db = net.gradients(X, Y, "mse")
    assert J == pytest.approx(0.52330625, rel=1e-14)
    np.testing.assert_allclose(dW[1], [[0.082125, -0.68175]], rtol=1e-13)
    np.testing.assert_allclose(db[1], [[-0.5175]], rtol=1e-13)
    np.testing.assert_allclose(dW[0], [[0.1825, -0.09125], [0.201, 0.9495]], rtol=1e-13)
    np.testing.assert_allclose(db[0], [[0.09125], [0.3105]], rtol=1e-13)
    Zs, As = net.forward_all(X)
    _, _, dZ = net.backward(Zs, As, Y, make_loss("mse"))
    np.testing.assert_allclose(dZ[1], [[-0.7, 0.1825]], rtol=1e-13)
    np.testing.assert_allclose(dZ[0], [[0.0, 0.09125], [0.42, -0.1095]], rtol=1e-13)


def test_worked_example_one_update():
    """One batch step with α = 0.1: W ← W − α dW."""
    net = worked_net()
    train(net, X, Y, "mse", optimizer="batch", lr=0.1, epochs=1)
    np.testing.assert_allclose(net.weights[1], [[0.5 - 0.1 * 0.082125, -0.6 + 0.1 * 0.68175]],
                               rtol=1e-13)
    np.testing.assert_allclose(net.biases[0], [[0.05 - 0.009125], [-0.1 - 0.03105]], rtol=1e-13)


def test_shapes_follow_the_article():
    sizes = [4, 6, 5, 3]
    net = Network(sizes, output_activation="softmax")
    assert net.L == 3 and net.layer_sizes == sizes
    assert [W.shape for W in net.weights] == [(6, 4), (5, 6), (3, 5)]
    assert [b.shape for b in net.biases] == [(6, 1), (5, 1), (3, 1)]
    assert net.n_parameters == 6 * 4 + 6 + 5 * 6 + 5 + 3 * 5 + 3
    X = np.random.default_rng(0).normal(size=(4, 7))
    Y = np.zeros((3, 7))
    Y[0] = 1
    assert net.forward(X).shape == (3, 7)
    Zs, As = net.forward_all(X)
    assert [A.shape for A in As] == [(4, 7), (6, 7), (5, 7), (3, 7)]
    J, dW, db = net.gradients(X, Y, "cce")
    assert isinstance(J, float)
    assert [g.shape for g in dW] == [W.shape for W in net.weights]
    assert [g.shape for g in db] == [b.shape for b in net.biases]


def test_forward_is_vectorized_over_columns():
    """A batch gives column by column what single examples give."""
    net = Network([3, 5, 2], hidden_activation="tanh", output_activation="softmax", seed=4)
    X = np.random.default_rng(1).normal(size=(3, 6))
    batch = net.forward(X)
    for j in range(6):
        np.testing.assert_allclose(batch[:, [j]], net.forward(X[:, [j]]), rtol=1e-14)


def test_assigning_weights_changes_the_network():
    net = Network([2, 2, 1], output_activation="linear")
    net.weights[0] = np.eye(2)
    net.weights[1] = np.array([[1.0, 1.0]])
    net.biases[1] = np.array([[0.5]])
    np.testing.assert_allclose(net.forward(np.array([[1.0], [2.0]])), [[3.5]])


def test_the_default_network():
    net = Network([2, 3, 1])
    assert [a.name for a in net.activations] == ["relu", "sigmoid"]
    assert net.init == "he" and net.seed == 0 and net.weights[0].dtype == np.float64


def test_save_and_load(tmp_path):
    net = Network([3, 4, 2], activations=["leaky_relu", "softmax"], slope=0.2, beta=2.0, seed=5)
    net.biases[0][...] = 0.3
    path = tmp_path / "net.npz"
    net.save(path)
    back = Network.load(path)
    assert back.layer_sizes == net.layer_sizes
    assert [repr(a) for a in back.activations] == [repr(a) for a in net.activations]
    for p, q in zip(net.get_params(), back.get_params()):
        np.testing.assert_array_equal(p, q)
    X = np.random.default_rng(2).normal(size=(3, 5))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))


def test_float32():
    net = Network([2, 8, 1], dtype="float32", seed=1)
    assert all(W.dtype == np.float32 for W in net.weights + net.biases)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 64))
    Y = (X[:1] > 0).astype(float)
    result = train(net, X, Y, "bce", lr=0.5, epochs=20)
    assert all(p.dtype == np.float32 for p in net.get_params())
    assert result.history[-1].cost < result.history[0].cost
    f64 = Network([2, 8, 1], seed=1)
    np.testing.assert_allclose(Network([2, 8, 1], dtype="float32", seed=1).weights[0],
                               f64.weights[0], rtol=1e-6)


def test_slope_is_the_hidden_layers_only():
    """``slope`` sets c of the hidden linear / leaky_relu layers; a linear output stays c = 1,
    so regression keeps the shortcut Δ[L] = Ŷ − Y."""
    net = Network([3, 4, 4, 2], hidden_activation="leaky_relu", output_activation="linear",
                  slope=0.2, seed=1)
    assert [a.c for a in net.activations] == [0.2, 0.2, 1.0]
