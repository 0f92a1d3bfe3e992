"""The four tasks: output layer, loss and prediction rule as in docs/math.md's table."""

import numpy as np
import pytest

from ffexp.nn import TASKS, Network, get_task, make_activation, make_loss
from ffexp.nn.checks import check_pair
from ffexp.nn.losses import uses_shortcut

EXPECTED = {"regression": ("linear", "mse", False), "binary": ("sigmoid", "bce", True),
            "multilabel": ("sigmoid", "bce", True), "multiclass": ("softmax", "cce", True)}


@pytest.mark.parametrize("name", list(TASKS))
def test_task_table(name):
    task = get_task(name)
    assert (task.output_activation, task.loss, task.is_classification) == EXPECTED[name]
    out, loss = make_activation(task.output_activation), make_loss(task.loss)
    check_pair(out, loss)                 # allowed...
    assert uses_shortcut(loss, out)       # ...and a matched pair: Δ[L] = Ŷ − Y


def test_predictions():
    Yhat = np.array([[0.2, 0.5, 0.51, 0.9]])
    np.testing.assert_array_equal(TASKS["binary"].predict(Yhat), [[0, 0, 1, 1]])
    P = np.array([[0.7, 0.1], [0.6, 0.5], [0.2, 0.95]])
    np.testing.assert_array_equal(TASKS["multilabel"].predict(P), [[1, 0], [1, 0], [0, 1]])
    S = np.array([[0.2, 0.1], [0.5, 0.3], [0.3, 0.6]])
    np.testing.assert_array_equal(TASKS["multiclass"].predict(S), [[0, 0], [1, 0], [0, 1]])
    R = np.array([[1.5, -2.0]])
    np.testing.assert_array_equal(TASKS["regression"].predict(R), R)


def test_multiclass_prediction_of_a_network_is_one_hot():
    net = Network([2, 4, 3], output_activation="softmax", seed=0)
    labels = TASKS["multiclass"].predict(net.forward(np.random.default_rng(0).normal(size=(2, 9))))
    assert labels.shape == (3, 9)
    np.testing.assert_array_equal(labels.sum(axis=0), 1)


def test_unknown_task():
    with pytest.raises(ValueError, match="'ranking'") as e:
        get_task("ranking")
    assert all(name in str(e.value) for name in TASKS)
