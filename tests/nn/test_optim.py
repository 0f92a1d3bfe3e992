"""Training: update counts, batch = mini-batch with s = m, reproducibility, the step warning,
divergence, tolerance, the callback history, and accuracy floors on XOR and make_moons."""

import math
import warnings

import numpy as np
import pytest

from ffexp.nn import OPTIMIZERS, Callback, Network, bookkeeping, make_loss, train
from ffexp.nn.optim import Schedule

from nn_helpers import make_labels

#: updates per epoch for m examples and batch size s, as the article defines the three forms
EXPECTED_UPDATES = {"sgd": lambda m, s: m, "minibatch": lambda m, s: math.ceil(m / s),
                    "batch": lambda m, s: 1}


def blobs(m=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2, m))
    Y = (X[:1] + 0.5 * X[1:] > 0).astype(float)
    return X, Y


def params_equal(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b))


class Recorder(Callback):
    """Keeps what the loop hands over: info, every EpochStats, copies of the parameters."""

    def __init__(self):
        self.info, self.stats, self.params, self.result = None, [], [], None

    def on_train_begin(self, net, info):
        self.info = info

    def on_epoch_end(self, net, stats):
        self.stats.append(stats)
        self.params.append(net.get_params())

    def on_train_end(self, net, result):
        self.result = result


def spy_on_backward(net):
    """Wrap net.backward (the engine calls it once per update) to record each batch's width
    and the norms of its dW, db, dZ."""
    calls = []
    original = net.backward

    def backward(Zs, As, Y, loss, *args, **kwargs):
        dW, db, dZ = original(Zs, As, Y, loss, *args, **kwargs)
        calls.append((Y.shape[1], [np.linalg.norm(g) for g in dW],
                      [np.linalg.norm(g) for g in db], [np.linalg.norm(g) for g in dZ]))
        return dW, db, dZ

    net.backward = backward
    return calls


# -- update counts ----------------------------------------------------------------------------

def test_every_optimizer_has_an_expected_count():
    assert set(OPTIMIZERS) == set(EXPECTED_UPDATES), "new optimizer: add its update count"


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("m,s", [(24, 8), (25, 8), (7, 3), (10, 10), (5, 32)])
@pytest.mark.parametrize("bookkeeping", [False, True])
def test_update_counts(optimizer, m, s, bookkeeping):
    """Without bookkeeping every backward pass is an update's; with it, the records count the
    same updates (step 0 none), and the parameters are the same (test below)."""
    X, Y = blobs(m)
    net = Network([2, 3, 1], seed=1)
    calls = spy_on_backward(net)
    rec = Recorder()
    epochs = 3
    result = train(net, X, Y, "bce", optimizer=optimizer, batch_size=s, epochs=epochs, lr=0.1,
                   callbacks=[rec], bookkeeping=bookkeeping)
    per_epoch = EXPECTED_UPDATES[optimizer](m, s)
    assert result.updates == epochs * per_epoch      # what the result says
    assert [st.updates for st in rec.stats] == [per_epoch * e for e in (0, 1, 2, 3)]
    assert rec.info["updates_per_epoch"] == per_epoch
    assert Schedule.of(optimizer, m, s).updates_per_epoch(m) == per_epoch
    if bookkeeping:
        return
    assert len(calls) == epochs * per_epoch          # what actually happened
    widths = [w for w, *_ in calls[:per_epoch]]
    assert sum(widths) == m                          # every example once per epoch
    if optimizer == "minibatch" and m % s and s < m:
        assert widths == [s] * (per_epoch - 1) + [m % s]  # the last batch is smaller


def test_sgd_reshuffles_every_epoch():
    """One example per update, in a new order every epoch (seen through the labels' order)."""
    m = 12
    X = np.arange(2.0 * m).reshape(2, m)
    Y = np.arange(float(m)).reshape(1, m)
    net = Network([2, 1], output_activation="linear")
    seen = []
    original = net.backward

    def backward(Zs, As, Yb, loss, *args, **kwargs):
        seen.append(float(Yb[0, 0]))
        return original(Zs, As, Yb, loss, *args, **kwargs)

    net.backward = backward
    train(net, X, Y, "mse", optimizer="sgd", lr=1e-4, epochs=3, bookkeeping=False)
    orders = [seen[i * m:(i + 1) * m] for i in range(3)]
    for order in orders:
        assert sorted(order) == list(range(m))
    assert orders[0] != orders[1] != orders[2] and orders[0] != list(range(m))


@pytest.mark.parametrize("bookkeeping", [True, False])
def test_minibatch_with_s_equal_m_is_batch_exactly(bookkeeping):
    X, Y = blobs(40)
    runs = []
    for optimizer in ("batch", "minibatch"):
        net = Network([2, 6, 1], hidden_activation="tanh", seed=2)
        r = train(net, X, Y, "bce", optimizer=optimizer, batch_size=40, lr=0.5, epochs=15,
                  bookkeeping=bookkeeping)
        runs.append((net.get_params(), [s.cost for s in r.history], r.updates))
    (pa, ca, ua), (pb, cb, ub) = runs
    assert ua == ub == 15
    assert params_equal(pa, pb)
    assert ca == cb or bookkeeping is False


def test_batch_update_is_the_full_gradient_step():
    X, Y = blobs(20)
    net = Network([2, 4, 1], hidden_activation="sigmoid", seed=3)
    ref = Network([2, 4, 1], hidden_activation="sigmoid", seed=3)
    _, dW, db = ref.gradients(X, Y, "bce")
    train(net, X, Y, "bce", optimizer="batch", lr=0.3, epochs=1)
    for l in range(2):
        np.testing.assert_allclose(net.weights[l], ref.weights[l] - 0.3 * dW[l], rtol=1e-14)
        np.testing.assert_allclose(net.biases[l], ref.biases[l] - 0.3 * db[l], rtol=1e-14)


# -- reproducibility and the step function ----------------------------------------------------

@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_two_runs_with_one_seed_are_identical(optimizer):
    X, Y = blobs(30)
    runs = []
    for _ in range(2):
        net = Network([2, 5, 4, 1], seed=7)
        r = train(net, X, Y, "bce", optimizer=optimizer, batch_size=8, lr=0.2, epochs=5)
        runs.append((net.get_params(), r))
    (pa, ra), (pb, rb) = runs
    assert params_equal(pa, pb)
    assert [s.cost for s in ra.history] == [s.cost for s in rb.history]
    for sa, sb in zip(ra.history, rb.history):
        for name in ("grad_norm_W", "grad_norm_b", "grad_norm_Z", "weight_norm_W", "act_mean"):
            np.testing.assert_array_equal(getattr(sa, name), getattr(sb, name))
    # a different shuffling seed gives a different run (the seed is really used)
    if OPTIMIZERS[optimizer][1]:
        net = Network([2, 5, 4, 1], seed=7)
        train(net, X, Y, "bce", optimizer=optimizer, batch_size=8, lr=0.2, epochs=5, seed=8)
        assert not params_equal(net.get_params(), pa)


def test_batch_size_does_not_change_the_initial_weights():
    X, Y = blobs(30)
    first = []
    for s in (1, 4, 30):
        net = Network([2, 5, 1], seed=4)
        rec = Recorder()
        initial = net.get_params()
        train(net, X, Y, "bce", batch_size=s, epochs=1, callbacks=[rec])
        first.append(initial)
    assert params_equal(first[0], first[1]) and params_equal(first[0], first[2])


def test_step_warns_once_and_trains_nothing_before_it():
    X, Y = blobs(30)
    net = Network([2, 4, 3, 1], activations=["tanh", "step", "sigmoid"], seed=1)
    net.biases[1][...] = 0.1
    before = net.get_params()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(net, X, Y, "bce", optimizer="minibatch", batch_size=5, lr=0.5, epochs=4)
    step_warnings = [w for w in caught if issubclass(w.category, UserWarning)]
    assert len(step_warnings) == 1 and "step" in str(step_warnings[0].message)
    after = net.get_params()
    assert params_equal(before[:4], after[:4])          # W[1], b[1], W[2], b[2]: frozen
    assert not params_equal(before[4:], after[4:])      # W[3], b[3] still learn
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no step layer: no warning at all
        train(Network([2, 4, 1], seed=1), X, Y, "bce", epochs=2)


# -- divergence, tolerance, stopping ------------------------------------------------------------

@pytest.mark.parametrize("case", ["large-lr", "large-init"])
@pytest.mark.parametrize("bookkeeping", [True, False])
def test_divergence_stops_cleanly(case, bookkeeping):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 50)) * 3
    Y = rng.normal(size=(2, 50)) * 5
    if case == "large-lr":
        net, lr = Network([3, 32, 32, 2], output_activation="linear", seed=0), 5.0
    else:
        net, lr = Network([3, 32, 32, 2], output_activation="linear", init="random",
                          init_scale=300.0, seed=0), 0.5
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # and no overflow RuntimeWarning leaks out
        result = train(net, X, Y, "mse", optimizer="minibatch", batch_size=10, lr=lr,
                       epochs=200, callbacks=[rec], bookkeeping=bookkeeping)
    assert result.outcome == "diverged", result.message
    assert isinstance(result.diverged_epoch, int) and result.diverged_epoch < 200
    assert result.epochs == len(result.history) - 1 == result.diverged_epoch - 1
    assert [st.epoch for st in result.history] == list(range(result.diverged_epoch))
    assert str(result.diverged_epoch) in result.message and "non-finite" in result.message
    assert rec.result is result
    for stats in result.history:
        for name in ("grad_norm_W", "grad_norm_b", "grad_norm_Z", "weight_norm_W", "act_mean",
                     "act_std", "act_saturated", "act_dead"):
            values = getattr(stats, name)
            assert np.all(np.isfinite(values)) or not bookkeeping
        if bookkeeping:
            assert math.isfinite(stats.cost)
            assert all(math.isfinite(v) for v in stats.flat().values())
    assert all(np.all(np.isfinite(p)) for p in net.get_params())
    # the network keeps the parameters of the last finite epoch
    expected = rec.params[-1] if rec.params else Network(
        [3, 32, 32, 2], output_activation="linear", seed=0,
        **({} if case == "large-lr" else dict(init="random", init_scale=300.0))).get_params()
    assert params_equal(net.get_params(), expected)


@pytest.mark.parametrize("tol_on,tol", [("cost", 1e-4), ("params", 1e-3)])
def test_tolerance_converges(tol_on, tol):
    X, _ = blobs(40)
    Y = (X[:1] + np.random.default_rng(1).normal(size=(1, 40)) > 0).astype(float)  # overlapping
    net = Network([2, 4, 1], hidden_activation="tanh", seed=0)
    rec = Recorder()
    result = train(net, X, Y, "bce", optimizer="batch", lr=0.5, epochs=5000, tol=tol,
                   tol_on=tol_on, patience=3, callbacks=[rec])
    assert result.outcome == "converged", result.message
    assert 3 < result.epochs < 5000
    if tol_on == "cost":
        changes = [abs(a.cost - b.cost) for a, b in zip(result.history, result.history[1:])]
    else:
        changes = [max(np.max(np.abs(p - q)) for p, q in zip(a, b))
                   for a, b in zip(rec.params, rec.params[1:])]
    assert all(c < tol for c in changes[-3:])   # calm for `patience` epochs...
    assert changes[-4] >= tol                    # ...and not before


def test_without_tolerance_all_epochs_run():
    X, Y = blobs(20)
    result = train(Network([2, 3, 1]), X, Y, "bce", epochs=7)
    assert result.outcome == "finished" and result.epochs == 7 and len(result.history) == 8
    assert [s.epoch for s in result.history] == list(range(0, 8))    # step 0, then epochs


def test_a_callback_can_stop_training():
    class StopAt3(Callback):
        def on_epoch_end(self, net, stats):
            return stats.epoch == 3

    X, Y = blobs(20)
    result = train(Network([2, 3, 1]), X, Y, "bce", epochs=10, callbacks=[StopAt3()])
    assert result.outcome == "stopped" and result.epochs == 3


def test_a_callback_can_stop_at_step_0_before_any_update():
    class StopAt0(Callback):
        def on_epoch_end(self, net, stats):
            return True

    X, Y = blobs(20)
    net = Network([2, 3, 1], seed=2)
    before = net.get_params()
    result = train(net, X, Y, "bce", epochs=10, callbacks=[StopAt0()])
    assert (result.outcome, result.epochs, result.updates) == ("stopped", 0, 0)
    assert [s.epoch for s in result.history] == [0] and "epoch 0" in result.message
    assert params_equal(net.get_params(), before)


# -- the callback history ------------------------------------------------------------------

@pytest.mark.parametrize("gradients", ["full", "mean"])
def test_history_arrays_and_flat_names(gradients):
    """Default ``full``: every record's norms are the full cost's, under grad_norm/*. ``mean``:
    step 0's under grad_norm/*, the epochs' means over their updates under grad_norm_mean/*,
    never under grad_norm/*."""
    X, Y = blobs(30)
    net = Network([2, 5, 4, 3, 1], seed=1)
    rec = Recorder()
    kwargs = {} if gradients == "full" else {"epoch_gradients": "mean"}
    result = train(net, X, Y, "bce", epochs=3, batch_size=8, callbacks=[rec], **kwargs)
    assert rec.stats == result.history and rec.result is result
    L = 4
    for st in result.history:
        for name in ("grad_norm_W", "grad_norm_b", "grad_norm_Z", "weight_norm_W"):
            assert getattr(st, name).shape == (L,)
        for name in ("act_mean", "act_std", "act_saturated", "act_dead"):
            assert getattr(st, name).shape == (L - 1,)
        grad = "grad_norm" if st.epoch == 0 or gradients == "full" else "grad_norm_mean"
        expected = {"train/cost", "time/epoch", "time/elapsed"}
        expected |= {f"{k}{l}" for k in (f"{grad}/W", f"{grad}/b", f"{grad}/Z",
                                         "weight_norm/W") for l in range(1, L + 1)}
        expected |= {f"{k}/{l}" for k in ("act_mean", "act_std", "act_saturated", "act_dead")
                     for l in range(1, L)}
        assert set(st.flat()) == expected
    cols = result.columns()
    assert cols["epoch"] == [0.0, 1.0, 2.0, 3.0] and len(cols["grad_norm/W4"]) == 4
    assert [st.gradients for st in result.history] == ["full"] + [gradients] * 3
    if gradients == "mean":
        assert np.isfinite(cols["grad_norm/W4"]).tolist() == [True, False, False, False]
        assert np.isfinite(cols["grad_norm_mean/Z1"]).tolist() == [False, True, True, True]


def test_callback_metrics_appear_in_flat():
    class AddMetric(Callback):
        def on_epoch_end(self, net, stats):
            stats.metrics["val/accuracy"] = 0.5

    X, Y = blobs(20)
    result = train(Network([2, 3, 1]), X, Y, "bce", epochs=2, callbacks=[AddMetric()])
    assert result.history[-1].flat()["val/accuracy"] == 0.5


#: per hidden activation, which activations are saturated (the docstring of EpochStats)
SATURATED = {"sigmoid": lambda A: (A < 0.01) | (A > 0.99), "tanh": lambda A: np.abs(A) > 0.99}
#: the activations whose units can die (z <= 0 for every example)
RECTIFIERS = ("relu", "leaky_relu")


class EpochEndTruth(Callback):
    """At every epoch's end, what the stats should say, computed from net.gradients and a
    forward pass on the full training set."""

    def __init__(self, X, Y, loss):
        self.X, self.Y, self.loss, self.checked = X, Y, make_loss(loss), 0

    def on_epoch_end(self, net, stats):
        J, dW, db = net.gradients(self.X, self.Y, self.loss)
        Zs, As = net.forward_all(self.X)
        Zs, As = [None] + [Z.copy() for Z in Zs[1:]], [A.copy() for A in As]
        hidden = [(Zs[l], As[l], net.activations[l - 1].name) for l in range(1, net.L)]
        self.truth = dict(cost=J, gW=[np.linalg.norm(g) for g in dW],
                          gb=[np.linalg.norm(g) for g in db],
                          wn=[np.linalg.norm(W) for W in net.weights],
                          mean=[A.mean() for _, A, _ in hidden],
                          std=[A.std() for _, A, _ in hidden],
                          saturated=[np.mean(SATURATED[g](A)) if g in SATURATED else 0.0
                                     for _, A, g in hidden],
                          dead=[np.mean(np.all(Z <= 0, axis=1)) if g in RECTIFIERS else 0.0
                                for Z, _, g in hidden])
        _, _, dZ = net.backward(Zs, As, self.Y, self.loss)
        self.truth["gZ"] = [np.linalg.norm(g) for g in dZ]
        t = self.truth
        assert stats.cost == pytest.approx(t["cost"], rel=1e-12)
        np.testing.assert_allclose(stats.weight_norm_W, t["wn"], rtol=1e-12)
        np.testing.assert_allclose(stats.act_mean, t["mean"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(stats.act_std, t["std"], rtol=1e-12)
        np.testing.assert_allclose(stats.act_saturated, t["saturated"], rtol=1e-12)
        np.testing.assert_array_equal(stats.act_dead, t["dead"])
        self.checked += 1


class CompareFull(Callback):
    """The record's gradient norms are those of the full cost at its θ (after EpochEndTruth)."""

    def __init__(self, truth):
        self.truth, self.epochs = truth, []

    def on_epoch_end(self, net, stats):
        if stats.gradients != "full":
            return
        t = self.truth.truth
        np.testing.assert_allclose(stats.grad_norm_W, t["gW"], rtol=1e-12)
        np.testing.assert_allclose(stats.grad_norm_b, t["gb"], rtol=1e-12)
        np.testing.assert_allclose(stats.grad_norm_Z, t["gZ"], rtol=1e-12)
        self.epochs.append(stats.epoch)


#: chunk budgets of the bookkeeping pass: one chunk (the whole set), 7-column chunks (the last
#: one 2 wide) of a 5-4-1 network's 4·10·8 bytes per column, and one column at a time
CHUNKS = {"whole set": 1 << 30, "7 columns": 7 * 320, "1 column": 1}


@pytest.mark.parametrize("budget", CHUNKS.values(), ids=CHUNKS.keys())
@pytest.mark.parametrize("optimizer", ["minibatch", "batch"])
def test_full_epoch_gradients_are_the_norms_of_net_gradients(monkeypatch, budget, optimizer):
    """Every record, step 0 included, is measured at its θ on the whole training set, however
    the bookkeeping pass is chunked: equal to net.gradients and one unchunked forward pass."""
    monkeypatch.setattr("ffexp.nn.optim.chunk_width",
                        lambda net, m, s: bookkeeping.chunk_width(net, m, s, budget))
    X, Y = blobs(30)
    truth = EpochEndTruth(X, Y, "bce")
    compare = CompareFull(truth)
    net = Network([2, 5, 4, 1], hidden_activation="relu", seed=1)
    result = train(net, X, Y, "bce", optimizer=optimizer, epochs=4, batch_size=8, lr=0.3,
                   epoch_gradients="full", callbacks=[truth, compare])
    assert truth.checked == 5 and compare.epochs == [0, 1, 2, 3, 4]
    assert {s.gradients for s in result.history} == {"full"}


def test_default_epoch_gradients_are_the_full_cost_s():
    """Without epoch_gradients every record, after mini-batch epochs too, has the full
    training cost's gradient at its θ_e (issue 23: one measure under grad_norm/*)."""
    X, Y = blobs(30)
    truth = EpochEndTruth(X, Y, "bce")
    compare = CompareFull(truth)
    result = train(Network([2, 5, 4, 1], seed=1), X, Y, "bce", epochs=3, batch_size=8, lr=0.3,
                   callbacks=[truth, compare])
    assert compare.epochs == [0, 1, 2, 3]
    assert {s.gradients for s in result.history} == {"full"}


@pytest.mark.parametrize("budget", CHUNKS.values(), ids=CHUNKS.keys())
def test_mean_epoch_gradients_are_the_mean_of_the_update_norms(monkeypatch, budget):
    monkeypatch.setattr("ffexp.nn.optim.chunk_width",
                        lambda net, m, s: bookkeeping.chunk_width(net, m, s, budget))
    X, Y = blobs(30)
    net = Network([2, 5, 4, 1], hidden_activation="relu", seed=1)
    calls = spy_on_backward(net)
    truth = EpochEndTruth(X, Y, "bce")
    compare = CompareFull(truth)
    per_epoch = math.ceil(30 / 8)
    result = train(net, X, Y, "bce", epochs=3, batch_size=8, lr=0.3, callbacks=[truth, compare],
                   epoch_gradients="mean")
    assert truth.checked == 4 and compare.epochs == [0]   # step 0 has the full gradient
    update_calls = [c for c in calls if c[0] in (8, 6)]  # each update's batch (8, 8, 8, 6)
    assert len(update_calls) == 3 * per_epoch
    for e, st in enumerate(result.history[1:]):
        epoch_calls = update_calls[e * per_epoch:(e + 1) * per_epoch]
        for k, name in ((1, "grad_norm_W"), (2, "grad_norm_b"), (3, "grad_norm_Z")):
            mean = np.mean([c[k] for c in epoch_calls], axis=0)
            np.testing.assert_allclose(getattr(st, name), mean, rtol=1e-12)


#: networks for the forward-only pass (every record of epoch_gradients="mean" but step 0):
#: saturating sigmoid and tanh layers and a ReLU with dead units (init scale 2), the
#: chain-rule output error (sigmoid + mse); leaky ReLU into softmax + cce and ReLU into a
#: linear output (several output rows, so the output spans are 2-D blocks)
FORWARD_NETS = {
    "sigmoid-tanh-relu/mse": (dict(layer_sizes=[2, 6, 5, 4, 1], init="random", init_scale=2.0,
                                   activations=["sigmoid", "tanh", "relu", "sigmoid"]), "mse"),
    "leaky_relu/cce": (dict(layer_sizes=[2, 6, 3], activations=["leaky_relu", "softmax"],
                            init="random", init_scale=2.0), "cce"),
    "relu/mse": (dict(layer_sizes=[2, 5, 4, 2], activations=["relu", "relu", "linear"]), "mse"),
}
#: (chunk width, chunks per output span) over m = 30: one chunk; chunks of 7 (the last 2
#: wide) in spans of 2 chunks (the last span 2 columns) or in one span; one column at a time
#: in spans of 4
PASSES = {"whole set": (30, 1), "7 in spans of 14": (7, 2), "7 in one span": (7, 5),
          "1 in spans of 4": (1, 4)}


@pytest.mark.parametrize("passes", PASSES.values(), ids=PASSES.keys())
@pytest.mark.parametrize("case", FORWARD_NETS.values(), ids=FORWARD_NETS.keys())
def test_forward_only_pass_gives_the_whole_set_values(monkeypatch, case, passes):
    """The pass without gradients (biases folded into the products, the output layer and
    the cost over spans of chunks) equals one unchunked forward pass, to 1e-12, however it is
    chunked and spanned: cost, mean, std, saturated and dead fractions at every record."""
    width, per_span = passes
    monkeypatch.setattr("ffexp.nn.optim.chunk_width", lambda net, m, s: min(m, width))
    monkeypatch.setattr("ffexp.nn.bookkeeping.span_width",
                        lambda net, m, w: min(m, w * per_span))
    (arguments, loss), rng = case, np.random.default_rng(4)
    X = rng.normal(size=(2, 30))
    Y = make_labels(loss, arguments["layer_sizes"][-1], 30, rng)
    net = Network(**arguments, seed=5)
    truth = EpochEndTruth(X, Y, loss)
    result = train(net, X, Y, loss, epochs=3, batch_size=8, lr=0.1, callbacks=[truth],
                   epoch_gradients="mean")
    assert truth.checked == 4 and result.outcome == "finished"
    assert [s.gradients for s in result.history] == ["full", "mean", "mean", "mean"]
    first = result.history[0]
    if "tanh" in arguments["activations"]:
        assert first.act_saturated[:2].min() > 0.02 and first.act_dead[2] > 0


def test_batch_records_the_full_gradient_at_the_epochs_end_without_extra_passes():
    """Batch gradient descent, default epoch_gradients: each record's norms are the full
    gradient at its θ_e, and the pass that measures it is the next update's (one forward and
    one backward over the set per epoch, plus step 0's)."""
    X, Y = blobs(30)
    net = Network([2, 5, 4, 1], hidden_activation="tanh", seed=1)
    truth = EpochEndTruth(X, Y, "bce")
    compare = CompareFull(truth)
    calls = spy_on_backward(net)
    result = train(net, X, Y, "bce", optimizer="batch", epochs=4, lr=0.3,
                   callbacks=[truth, compare])
    assert compare.epochs == [0, 1, 2, 3, 4] and result.updates == 4
    engine_calls = len(calls) - 2 * 5                 # EpochEndTruth's own: two a record
    assert engine_calls == 5                          # steps 0..4, one pass each


@pytest.mark.parametrize("gradients", ["mean", "full"])
def test_a_chunked_pass_gives_the_whole_set_values(monkeypatch, gradients):
    """The bookkeeping pass in chunks of 7 or 1 columns against one pass over the whole set
    (the engine's values before the pass was chunked), to 1e-12: saturating sigmoid and tanh
    layers, a ReLU layer with dead units, and the chain-rule output error (sigmoid + mse)."""
    X, Y = blobs(30)
    histories = {}
    for name, budget in CHUNKS.items():
        monkeypatch.setattr("ffexp.nn.optim.chunk_width",
                            lambda net, m, s: bookkeeping.chunk_width(net, m, s, budget))
        net = Network([2, 6, 5, 4, 1], activations=["sigmoid", "tanh", "relu", "sigmoid"],
                      init="random", init_scale=2.0, seed=5)
        histories[name] = train(net, X, Y, "mse", epochs=3, batch_size=8, lr=0.3,
                                epoch_gradients=gradients).history
    whole = histories.pop("whole set")
    assert whole[0].act_saturated[:2].min() > 0.02 and whole[0].act_dead[2] > 0
    for history in histories.values():
        for a, b in zip(history, whole, strict=True):
            for name in ("grad_norm_W", "grad_norm_b", "grad_norm_Z", "weight_norm_W",
                         "act_mean", "act_std", "act_saturated", "act_dead"):
                np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12,
                                           atol=1e-15, err_msg=f"{name} at epoch {a.epoch}")
            assert a.cost == pytest.approx(b.cost, rel=1e-12)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_bookkeeping_off_trains_identically(optimizer):
    X, Y = blobs(30)
    params, results = [], []
    for bookkeeping in (True, False):
        net = Network([2, 5, 4, 1], seed=3)
        results.append(train(net, X, Y, "bce", optimizer=optimizer, batch_size=8, lr=0.3,
                             epochs=4, bookkeeping=bookkeeping))
        params.append(net.get_params())
    assert params_equal(*params)
    on, off = results
    assert on.updates == off.updates and off.epochs == 4 and off.outcome == "finished"
    assert all(math.isnan(s.cost) for s in off.history) and len(off.history) == 5
    assert {s.gradients for s in off.history} == {""}
    assert set(off.history[-1].flat()) >= {"time/epoch", "time/elapsed"}


# -- training works ---------------------------------------------------------------------------

def accuracy(net, X, Y):
    return float(np.mean((net.forward(X) > 0.5) == Y))


def test_xor():
    X = np.tile(np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]]), 25)  # (2, 100)
    Y = (X[:1] != X[1:]).astype(float)
    net = Network([2, 8, 8, 1], hidden_activation="relu", output_activation="sigmoid",
                  init="he", seed=0)
    result = train(net, X, Y, "bce", optimizer="minibatch", batch_size=10, lr=0.5, epochs=100)
    assert result.outcome == "finished"
    assert accuracy(net, X, Y) >= 0.97
    assert result.history[-1].cost < 0.05 < result.history[0].cost


def test_make_moons():
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=500, noise=0.2, random_state=3)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).T      # standardized, (2, 500)
    Y = y.reshape(1, -1).astype(float)
    net = Network([2, 32, 32, 1], hidden_activation="relu", output_activation="sigmoid",
                  init="he", seed=0)
    start = accuracy(net, X, Y)
    train(net, X, Y, "bce", optimizer="minibatch", batch_size=32, lr=0.2, epochs=300)
    assert accuracy(net, X, Y) >= 0.97 > start


def test_multiclass_softmax_cce_learns():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 3.0, -3.0], [3.0, -2.0, -2.0]])
    labels = rng.integers(0, 3, size=150)
    X = centers[:, labels] + rng.normal(size=(2, 150)) * 0.7
    Y = np.eye(3)[:, labels]
    net = Network([2, 8, 3], hidden_activation="tanh", output_activation="softmax", seed=0)
    train(net, X, Y, "cce", optimizer="minibatch", batch_size=16, lr=0.2, epochs=40)
    assert np.mean(np.argmax(net.forward(X), axis=0) == labels) >= 0.97
