"""Stacked training (ffexp.nn.stack) against separate ``train`` calls: equal bit for bit.

Every comparison trains each network twice from the same seed, once alone with ``train`` and
once in a stack with ``train_stacked``, and asks for exact equality (np.array_equal, ==, the
same dtypes): every EpochStats value of every record (step 0 included) but the wall-clock
``seconds`` and ``elapsed``, the outcome, its message and epoch counts, and the final
parameters (max |ΔW| = 0)."""

import itertools
import math
import warnings

import numpy as np
import pytest

from ffexp.nn import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, Callback, Network, train
from ffexp.nn.activations import Activation, ReLU
from ffexp.nn.activations import make_activation
from ffexp.nn.losses import Quadratic, make_loss, output_cost, output_costs
from ffexp.nn.stack import train_stacked

from nn_helpers import make_labels

FIELDS = ("epoch", "cost", "grad_norm_W", "grad_norm_b", "grad_norm_Z", "weight_norm_W",
          "act_mean", "act_std", "act_saturated", "act_dead", "updates", "gradients", "metrics")
#: hidden activations with the slope c the app gives them (linear 1, leaky ReLU 0.01)
HIDDEN = [a for a in ACTIVATIONS if a != "softmax"]
SLOPE = {"leaky_relu": 0.01, "linear": 1.0}


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape \
            and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def assert_same_training(alone, stacked) -> None:
    """``alone`` and ``stacked``: lists of (network, TrainResult) trained each way."""
    assert len(alone) == len(stacked)
    for k, ((net1, r1), (net2, r2)) in enumerate(zip(alone, stacked)):
        for what in ("outcome", "message", "epochs", "updates", "diverged_epoch"):
            assert getattr(r1, what) == getattr(r2, what), f"network {k}: {what}"
        assert len(r1.history) == len(r2.history), f"network {k}: records"
        for s1, s2 in zip(r1.history, r2.history):
            for name in FIELDS:
                assert _same(getattr(s1, name), getattr(s2, name)), \
                    f"network {k}, epoch {s1.epoch}: {name} {getattr(s1, name)!r} != " \
                    f"{getattr(s2, name)!r}"
        for p1, p2 in zip(net1.get_params(), net2.get_params(), strict=True):
            assert p1.dtype == p2.dtype and np.array_equal(p1, p2), f"network {k}: θ"
            assert float(np.max(np.abs(p1 - p2))) == 0.0


def both_ways(make, X, Y, loss="bce", per_network=None, **kw):
    """Train the networks ``make(k)`` (k = 0..K-1) alone and stacked; per_network: names of
    keyword arguments given as a list of K values (each separate call takes its k-th)."""
    per_network = per_network or {}
    K = len(next(iter(per_network.values()))) if per_network else 5
    alone = []
    for k in range(K):
        net = make(k)
        own = {name: values[k] for name, values in per_network.items()}
        Xk, Yk = (X[k], Y[k]) if isinstance(X, list) else (X, Y)
        alone.append((net, train(net, Xk, Yk, loss, **kw, **own)))
    nets = [make(k) for k in range(K)]
    stack_names = {"seed": "seeds"}   # train's seed is the stack's list of seeds
    stacked = list(zip(nets, train_stacked(
        nets, X, Y, loss, **kw, **{stack_names.get(k, k): v for k, v in per_network.items()})))
    return alone, stacked


def data(m=37, n_in=2, n_out=1, loss="bce", seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_in, m)), make_labels(loss, n_out, m, rng)


# -- the grid: activations x inits x optimizers, five seeds each -------------------------------

@pytest.mark.filterwarnings("ignore:layer\\(s\\) .* use the step activation")
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("init", sorted(INITIALIZERS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_stacked_equals_separate(activation, init, optimizer):
    X, Y = data()
    alone, stacked = both_ways(
        lambda k: Network([2, 6, 5, 1], activation, "sigmoid", init, seed=k,
                          slope=SLOPE.get(activation)),
        X, Y, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.3, batch_size=8,
        epochs=2 if optimizer == "sgd" else 4)
    assert_same_training(alone, stacked)
    assert {r.outcome for _, r in stacked} == {"finished"}


@pytest.mark.parametrize("epoch_gradients", ["mean", "full"])
@pytest.mark.parametrize("bookkeeping", [True, False])
def test_mixed_activations_share_one_stack(epoch_gradients, bookkeeping):
    """Different activations, slopes, inits and learning rates in one stack (in an order that
    interleaves the activation groups): each network as alone."""
    X, Y = data(m=41)
    kinds = [("tanh", None, "xavier"), ("relu", None, "he"), ("leaky_relu", 0.2, "he"),
             ("tanh", None, "standard"), ("sigmoid", None, "random"), ("linear", 0.5, "xavier"),
             ("relu", None, "zeros"), ("leaky_relu", 0.01, "he")]

    def make(k):
        act, c, init = kinds[k]
        return Network([2, 7, 4, 1], act, "sigmoid", init, seed=10 + k, slope=c)

    lrs = [0.05 * (k + 1) for k in range(len(kinds))]
    alone, stacked = both_ways(make, X, Y, per_network={"lr": lrs}, optimizer="minibatch",
                               batch_size=6, epochs=5, epoch_gradients=epoch_gradients,
                               bookkeeping=bookkeeping)
    assert_same_training(alone, stacked)
    if bookkeeping:   # the measure's own metric names: grad_norm/* only for the full gradient
        step0, later = stacked[0][1].history[0].flat(), stacked[0][1].history[-1].flat()
        assert "grad_norm/W1" in step0 and "grad_norm_mean/W1" not in step0
        prefix, other = ("grad_norm_mean", "grad_norm") if epoch_gradients == "mean" \
            else ("grad_norm", "grad_norm_mean")
        assert f"{prefix}/Z1" in later and f"{other}/Z1" not in later


#: (layer sizes, activations, loss, beta): every output and loss pairing the engine has a
#: separate path for: the shortcut and the chain rule, one and several outputs, β ≠ 1
OUTPUTS = {
    "softmax/cce": ([3, 6, 4], ["relu", "softmax"], "cce", 1.0),
    "softmax β=2/cce": ([3, 6, 4], ["tanh", "softmax"], "cce", 2.0),
    "softmax/mse": ([3, 6, 3], ["sigmoid", "softmax"], "mse", 1.0),
    "linear/mse": ([3, 5, 5, 2], ["relu", "leaky_relu", "linear"], "mse", 1.0),
    "sigmoid/mse": ([3, 5, 1], ["tanh", "sigmoid"], "mse", 1.0),
    "sigmoid β=3/bce": ([3, 5, 2], ["relu", "sigmoid"], "bce", 3.0),
    "multi-label bce": ([3, 5, 3], ["leaky_relu", "sigmoid"], "bce", 1.0),
    "no hidden layer": ([3, 1], ["sigmoid"], "bce", 1.0),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", OUTPUTS.values(), ids=OUTPUTS.keys())
def test_outputs_losses_and_dtypes(case, dtype):
    sizes, acts, loss, beta = case
    X, Y = data(m=29, n_in=3, n_out=sizes[-1], loss=loss, seed=3)
    alone, stacked = both_ways(
        lambda k: Network(sizes, activations=acts, beta=beta, seed=k, dtype=dtype), X, Y, loss,
        optimizer="minibatch", batch_size=5, lr=0.2, epochs=3, epoch_gradients="full")
    assert_same_training(alone, stacked)
    assert stacked[0][0].weights[0].dtype == np.dtype(dtype)


@pytest.mark.parametrize("optimizer", ["minibatch", "batch"])
@pytest.mark.parametrize("epoch_gradients", ["mean", "full"])
def test_chunked_bookkeeping_pass(monkeypatch, optimizer, epoch_gradients):
    """The bookkeeping pass in chunks of 7 columns (the last smaller) and output spans of two
    chunks, in ``train`` and in the stack alike."""
    for module in ("ffexp.nn.optim", "ffexp.nn.stackpass"):
        monkeypatch.setattr(f"{module}.chunk_width", lambda net, m, s: min(m, 7))
    for module in ("ffexp.nn.bookkeeping", "ffexp.nn.stackpass"):
        monkeypatch.setattr(f"{module}.span_width", lambda net, m, w: min(m, 2 * w))
    X, Y = data(m=31, n_out=2, loss="mse")
    alone, stacked = both_ways(
        lambda k: Network([2, 6, 5, 2], activations=["sigmoid", "relu", "linear"],
                          init="random", init_scale=2.0, seed=k), X, Y, "mse",
        optimizer=optimizer, batch_size=8, lr=0.05, epochs=3, epoch_gradients=epoch_gradients)
    assert_same_training(alone, stacked)
    first = stacked[0][1].history[0]
    assert first.act_saturated[0] > 0 and first.act_dead[1] > 0   # the statistics are live


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["bce", "cce"])
def test_stacked_logit_costs_equal_each_slice(name, dtype):
    """``output_costs`` of a stack equals ``output_cost`` of each slice bit for bit in every
    layout the bookkeeping pass hands it: Z[L] and Y whole or a span's columns (a single
    column included, where np.vdot takes a strided Y), Y shared or one per network, saturated
    pre-activations, β ≠ 1, and soft labels (sums in any order would differ there)."""
    rng = np.random.default_rng(11)
    loss, K, compared = make_loss(name), 3, 0
    for n in ((1, 3, 9) if name == "bce" else (2, 3, 9)):
        for m, scale, shared, span, beta in itertools.product(
                (1, 2, 9, 40), (1.0, 1e3), (True, False), (0, 3), (1.0, 2.5)):
            U = (rng.normal(size=(K, n, m + span)) * scale).astype(dtype)[..., :m]
            P = rng.random((n, m + span) if shared else (K, n, m + span))
            if name == "cce":
                P /= P.sum(axis=-2, keepdims=True)
            Y = P.astype(dtype)[..., :m]
            g = make_activation("sigmoid" if name == "bce" else "softmax", beta=beta)
            J = output_costs(loss, g, Y, U, None)
            assert J.dtype == np.float64 and J.shape == (K,)
            for k in range(K):
                j = output_cost(loss, g, Y if shared else Y[k], U[k], None)
                assert J[k] == j, (n, m, scale, shared, span, beta, k, J[k], j)
                compared += 1
    assert compared == 3 * 64 * K


@pytest.mark.parametrize("epoch_gradients", ["mean", "full"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_saturated_outputs_chunked(monkeypatch, output, epoch_gradients):
    """Costs from β Z[L] on saturated outputs (W[L] × 20, β = 10), the bookkeeping pass in
    chunks of 7 of m = 29 columns (the last a single column) and spans of two chunks: each
    network as alone, and J(0) above what the clipped cost from Ŷ gives."""
    for module in ("ffexp.nn.optim", "ffexp.nn.stackpass"):
        monkeypatch.setattr(f"{module}.chunk_width", lambda net, m, s: min(m, 7))
    for module in ("ffexp.nn.bookkeeping", "ffexp.nn.stackpass"):
        monkeypatch.setattr(f"{module}.span_width", lambda net, m, w: min(m, 2 * w))
    loss = "cce" if output == "softmax" else "bce"
    X, Y = data(m=29, n_in=3, n_out=4, loss=loss, seed=5)
    make = lambda k: Network([3, 6, 4], activations=["tanh", output], beta=10.0,  # noqa: E731
                             output_gain=20.0, seed=k)
    alone, stacked = both_ways(make, X, Y, loss, optimizer="minibatch", batch_size=8, lr=0.01,
                               epochs=3, epoch_gradients=epoch_gradients)
    assert_same_training(alone, stacked)
    for k, (_, r) in enumerate(stacked):
        clipped = make_loss(loss).cost(Y, make(k).forward(X))
        assert r.history[0].cost > clipped


def test_each_network_its_own_data_and_shuffle_seed():
    rng = np.random.default_rng(7)
    Xs = [rng.normal(size=(2, 33)) for _ in range(4)]
    Ys = [make_labels("bce", 1, 33, rng) for _ in range(4)]
    alone, stacked = both_ways(lambda k: Network([2, 5, 1], "tanh", seed=3), Xs, Ys,
                               per_network={"seed": [11, 12, 13, 14]}, batch_size=4, epochs=3)
    assert_same_training(alone, stacked)
    assert not np.array_equal(stacked[0][0].weights[0], stacked[1][0].weights[0])


def test_a_stack_of_one_is_train():
    X, Y = data()
    alone, stacked = both_ways(lambda k: Network([2, 4, 1], "relu", seed=4), X, Y,
                               per_network={"epochs": [6]}, batch_size=5)
    assert_same_training(alone, stacked)


# -- each network stops by its own rule ---------------------------------------------------------

def test_a_diverging_network_stops_alone():
    """Two networks with learning rates that blow up leave the stack at the epoch they do
    alone (1 and 2), with their last finite θ; the others train all their epochs."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 40)) * 3, rng.normal(size=(2, 40)) * 5
    lrs, seeds = [0.01, 5.0, 0.02, 0.5, 0.01], [0, 1, 2, 4, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no overflow RuntimeWarning leaks out of the stack
        alone, stacked = both_ways(
            lambda k: Network([3, 16, 16, 2], output_activation="linear", seed=seeds[k]), X, Y,
            "mse",
            per_network={"lr": lrs}, optimizer="minibatch", batch_size=10, epochs=40)
    assert_same_training(alone, stacked)
    outcomes = [r.outcome for _, r in stacked]
    assert outcomes[1] == outcomes[3] == "diverged" and outcomes.count("finished") == 3
    assert (stacked[1][1].diverged_epoch, stacked[3][1].diverged_epoch) == (1, 2)
    assert all(np.isfinite(p).all() for net, _ in stacked for p in net.get_params())


def test_diverged_at_step_0():
    X, Y = data()
    alone, stacked = both_ways(
        lambda k: Network([2, 4, 1], "relu", "sigmoid", "random", seed=k,
                          init_scale=1e308 if k == 2 else 0.01), X, Y, epochs=3)
    assert_same_training(alone, stacked)
    assert stacked[2][1].outcome == "diverged" and stacked[2][1].diverged_epoch == 0


@pytest.mark.parametrize("optimizer", ["minibatch", "batch"])
def test_tolerances_epochs_and_patience_per_network(optimizer):
    X, _ = data(m=40)
    Y = (X[:1] + np.random.default_rng(1).normal(size=(1, 40)) > 0).astype(float)
    alone, stacked = both_ways(
        lambda k: Network([2, 4, 1], "tanh", seed=2), X, Y,
        per_network={"tol": [1e-3, None, 3e-2, 1e-2, 1e-6],
                     "tol_on": ["cost", "cost", "params", "params", "cost"],
                     "patience": [2, 1, 2, 1, 1], "epochs": [300, 7, 300, 300, 20]},
        optimizer=optimizer, lr=0.5, batch_size=8)
    assert_same_training(alone, stacked)
    outcomes = [r.outcome for _, r in stacked]
    assert outcomes[1] == "finished" and outcomes.count("converged") >= 2
    assert len({r.epochs for _, r in stacked}) >= 3


class Recorder(Callback):
    """Everything a callback is handed, θ included; stops at ``stop_at`` and adds a metric."""

    def __init__(self, stop_at=None):
        self.stop_at, self.calls = stop_at, []

    def on_train_begin(self, net, info):
        self.calls.append(("begin", dict(info)))

    def on_epoch_end(self, net, stats):
        stats.metrics["val/thing"] = float(net.forward(np.ones((net.layer_sizes[0], 1)))[0, 0])
        self.calls.append(("epoch", stats.epoch, stats.cost, net.get_params()))
        return stats.epoch == self.stop_at

    def on_train_end(self, net, result):
        self.calls.append(("end", result.outcome, result.epochs, net.get_params()))


def _same_calls(a, b) -> bool:
    def flat(calls):
        return [tuple(v for v in c if not isinstance(v, list)) for c in calls], \
               [p for c in calls for v in c if isinstance(v, list) for p in v]
    (ta, pa), (tb, pb) = flat(a), flat(b)
    return ta == tb and len(pa) == len(pb) and all(np.array_equal(x, y) for x, y in zip(pa, pb))


@pytest.mark.parametrize("stop_at", [0, 3])
def test_callbacks_per_network(stop_at):
    """Each network's callbacks get its own network and stats; the one that asks to stop
    stops only its network (at step 0: before any update)."""
    X, Y = data()
    stops = [None, stop_at, None, None, stop_at + 1]
    alone_cbs = [[Recorder(s)] for s in stops]
    stack_cbs = [[Recorder(s)] for s in stops]
    alone = []
    for k in range(5):
        net = Network([2, 5, 1], "relu", seed=k)
        alone.append((net, train(net, X, Y, epochs=6, batch_size=8, callbacks=alone_cbs[k])))
    nets = [Network([2, 5, 1], "relu", seed=k) for k in range(5)]
    stacked = list(zip(nets, train_stacked(nets, X, Y, epochs=6, batch_size=8,
                                           callbacks=stack_cbs)))
    assert_same_training(alone, stacked)
    for a, b in zip(alone_cbs, stack_cbs):
        assert _same_calls(a[0].calls, b[0].calls)
    assert [r.outcome for _, r in stacked] == ["finished", "stopped", "finished", "finished",
                                               "stopped"]
    assert stacked[1][1].epochs == stop_at and stacked[1][1].updates == stop_at * 5


def test_times_are_the_stacked_epochs():
    """``seconds`` and ``elapsed`` are wall-clock times of the stacked epochs: one value for
    every network still training, elapsed growing."""
    X, Y = data()
    nets = [Network([2, 4, 1], seed=k) for k in range(3)]
    results = train_stacked(nets, X, Y, epochs=[2, 4, 4])
    for e in range(3):
        assert len({r.history[e].seconds for r in results}) == 1
    for r in results:
        elapsed = [s.elapsed for s in r.history]
        assert all(s.seconds > 0 for s in r.history) and elapsed == sorted(elapsed)
        assert r.seconds >= elapsed[-1]


def test_networks_are_their_own_after_training():
    """After the stack, each network's parameters are its own arrays: changing one network
    changes no other."""
    X, Y = data()
    nets = [Network([2, 4, 1], seed=k) for k in range(3)]
    train_stacked(nets, X, Y, epochs=2)
    before = nets[1].get_params()
    nets[0].weights[0][...] = 0.0
    assert all(np.array_equal(a, b) for a, b in zip(before, nets[1].get_params()))
    assert nets[0].weights[0].base is not nets[1].weights[0].base


# -- what the stack refuses ---------------------------------------------------------------------

class Custom(ReLU):
    name = "relu"


class CustomLoss(Quadratic):
    pass


@pytest.mark.parametrize("case,message", [
    ("shapes", "one shape and dtype: nets[1] has layer_sizes [2, 5, 1]"),
    ("dtypes", "nets[1] has layer_sizes [2, 4, 1] (float32)"),
    ("twice", "same Network object more than once"),
    ("none", "at least one network"),
    ("lr list", "lr has 2 values for 3 networks"),
    ("callbacks list", "callbacks has 1 values for 3 networks"),
    ("X list", "X has 2 arrays for 3 networks"),
    ("X shapes", "X: the networks' arrays need one shape"),
    ("activation", "activation Custom is not one of ffexp's"),
    ("loss", "is not one of ffexp's"),
    ("train's checks", "lr must be a positive finite number, got -1.0"),
    ("optimizer", "unknown optimizer 'adam'"),
    ("batch sizes", "batch_size is one value for all the stacked networks, got [8, 16, 8]"),
])
def test_refusals_name_what(case, message):
    X, Y = data()
    nets = [Network([2, 4, 1], seed=k) for k in range(3)]
    kw = {}
    if case == "shapes":
        nets[1] = Network([2, 5, 1])
    elif case == "dtypes":
        nets[1] = Network([2, 4, 1], dtype="float32")
    elif case == "twice":
        nets[2] = nets[0]
    elif case == "none":
        nets = []
    elif case == "lr list":
        kw["lr"] = [0.1, 0.2]
    elif case == "callbacks list":
        kw["callbacks"] = [[]]
    elif case == "X list":
        X = [X, X]
    elif case == "X shapes":
        X = [X, X, X[:, :10]]
    elif case == "activation":
        nets[1].activations[0] = Custom()
    elif case == "loss":
        kw["loss"] = CustomLoss()
    elif case == "train's checks":
        kw["lr"] = [0.1, -1.0, 0.1]
    elif case == "optimizer":
        kw["optimizer"] = "adam"
    elif case == "batch sizes":
        kw["batch_size"] = [8, 16, 8]
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)").replace("]", r"\]")):
        train_stacked(nets, X, Y, **kw)


def test_stack_activations_are_shape_generic():
    """Every activation's methods on a (K, n, k) stack give each slice as on its own."""
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(4, 3, 9)) * 3
    dA = rng.normal(size=Z.shape)
    for name, cls in ACTIVATIONS.items():
        g: Activation = cls()
        A = g.forward(Z)
        for k in range(4):
            assert np.array_equal(A[k], g.forward(Z[k])), name
            assert np.array_equal(g.backward(dA, Z, A)[k], g.backward(dA[k], Z[k], A[k])), name
            if g.elementwise:
                assert np.array_equal(g.inactive(Z)[k], g.inactive(Z[k])), name
