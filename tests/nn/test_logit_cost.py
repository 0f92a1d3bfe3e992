"""The matched cross-entropies' cost from the output layer's pre-activations (losses.logit_cost):
equal to the cost computed independently in 80-digit decimal arithmetic from the same Z[L],
to 1e-12 relative, on saturated outputs (β up to 100, W[L] × 20, |z| up to 1e3), through every
path that reports J: Network.cost, Network.gradients, the bookkeeping pass with and without
gradients (step 0 and later records), and the real softmax_beta study configuration."""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest
from nn_helpers import make_labels

from ffexp.nn import Network, make_loss, train
from ffexp.nn.losses import has_logit_cost, output_cost

BETAS = (1.0, 10.0, 100.0)


def exact_cost(name: str, Y: np.ndarray, Z: np.ndarray, beta: float) -> float:
    """(1/m) Σ_i L(y(i), ŷ(i)) with ŷ = σ(βz) or softmax(βz) and the article's L, in 80-digit
    decimal arithmetic from the float values of Z taken exactly (no stable forms, no clipping)."""
    with localcontext() as ctx:
        ctx.prec = 80
        one, b, total = Decimal(1), Decimal(beta), Decimal(0)
        for i in range(Z.shape[1]):
            u = [b * Decimal(float(z)) for z in Z[:, i]]
            y = [Decimal(float(v)) for v in Y[:, i]]
            if name == "bce":
                for uk, yk in zip(u, y):
                    p, q = one / (one + (-uk).exp()), one / (one + uk.exp())   # ŷ, 1 − ŷ
                    total -= (yk * p.ln() if yk else 0) + ((one - yk) * q.ln() if yk != one else 0)
            else:
                s = sum((uk.exp() for uk in u), Decimal(0))
                total -= sum((yk * (uk.exp() / s).ln() for uk, yk in zip(u, y) if yk), Decimal(0))
        return float(total / Z.shape[1])


def saturated_net(output: str, beta: float, n_out: int, seed: int = 0) -> Network:
    """A 2-8-8-n net whose output layer is 20 × its He draw: |z| in the tens to hundreds."""
    return Network([2, 8, 8, n_out], "relu", output, "he", seed=seed, beta=beta, output_gain=20.0)


def data(loss: str, n_out: int, m: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, m)) * 3, make_labels(loss, n_out, m, rng)


CASES = [("sigmoid", "bce", 1), ("sigmoid", "bce", 3), ("softmax", "cce", 3)]


@pytest.mark.parametrize("output,loss,n_out", CASES)
@pytest.mark.parametrize("beta", BETAS)
def test_the_cost_of_a_saturated_net_is_the_exact_cross_entropy(output, loss, n_out, beta):
    net = saturated_net(output, beta, n_out)
    X, Y = data(loss, n_out)
    Z, Yhat = net.forward_output(X)
    assert np.abs(beta * Z).max() > 37          # saturated: some ŷ is 0 or 1 to the last bit
    exact = exact_cost(loss, Y, Z, beta)
    assert net.cost(X, Y, loss) == pytest.approx(exact, rel=1e-12)
    assert net.gradients(X, Y, loss)[0] == pytest.approx(exact, rel=1e-12)
    # the clipped cost from Ŷ caps each example at ln(1/ε) ≈ 36.04 and falls short
    if exact > 40:
        assert make_loss(loss).cost(Y, Yhat) < 0.9 * exact


@pytest.mark.parametrize("loss,n_out", [("bce", 1), ("bce", 2), ("cce", 3), ("cce", 4)])
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 1e3])
def test_logit_cost_to_1e_12_for_z_up_to_1e3(loss, n_out, beta, scale):
    """Pre-activations drawn at every scale up to |z| = 1e3 (βz up to 1e5), right and wrong."""
    rng = np.random.default_rng(int(scale) + n_out)
    Z = rng.uniform(-1.0, 1.0, size=(n_out, 30)) * scale
    Y = make_labels(loss, n_out, 30, rng)
    output = Network([1, n_out], output_activation="sigmoid" if loss == "bce" else "softmax",
                     beta=beta).activations[-1]
    assert has_logit_cost(make_loss(loss), output)
    J = output_cost(make_loss(loss), output, Y, Z, output.forward(Z))
    assert J == pytest.approx(exact_cost(loss, Y, Z, beta), rel=1e-12)


def test_a_right_saturated_example_costs_its_tiny_exact_value():
    """ln(1 + e^−u) for u = 30, 700: no rounding to 0 where float64 holds the value."""
    Z = np.array([[30.0, 700.0, -30.0]])
    Y = np.array([[1.0, 1.0, 0.0]])
    J = output_cost(make_loss("bce"), Network([1, 1]).activations[-1], Y, Z, 1 / (1 + np.exp(-Z)))
    assert J == pytest.approx(exact_cost("bce", Y, Z, 1.0), rel=1e-12)
    assert 0 < J < 1e-13


@pytest.mark.parametrize("output,loss,n_out,optimizer", [
    ("sigmoid", "bce", 1, "minibatch"), ("softmax", "cce", 3, "minibatch"),
    ("softmax", "cce", 3, "batch")])
@pytest.mark.parametrize("gradients", ["full", "mean"])
def test_every_record_reports_the_exact_cost(output, loss, n_out, optimizer, gradients,
                                             monkeypatch):
    """The bookkeeping pass's J at step 0 and later (with and without its backward pass, in
    several chunks and spans) is the exact cost at the record's parameters."""
    from ffexp.nn import bookkeeping
    monkeypatch.setattr(bookkeeping, "CHUNK_BYTES", 2_000)   # several chunks of the 200 columns
    monkeypatch.setattr(bookkeeping, "SPAN_BYTES", 200)      # and several spans
    net = saturated_net(output, 100.0, n_out, seed=1)
    X, Y = data(loss, n_out, m=200, seed=1)

    class Exact:
        def __init__(self):
            self.pairs = []

        def on_train_begin(self, net, info):
            pass

        def on_epoch_end(self, net, stats):
            self.pairs.append((stats.cost, exact_cost(loss, Y, net.forward_output(X)[0], 100.0)))

        def on_train_end(self, net, result):
            pass

    seen = Exact()
    train(net, X, Y, loss, optimizer=optimizer, lr=1e-4, batch_size=16, epochs=3,
          epoch_gradients=gradients, callbacks=[seen])
    assert len(seen.pairs) == 4 and seen.pairs[0][1] > 100
    for logged, exact in seen.pairs:
        assert logged == pytest.approx(exact, rel=1e-12)


def test_the_softmax_beta_study_logs_the_exact_cost_at_step_0():
    """The softmax_beta study's configuration (wine, 13-16-16-3 relu, softmax β = 100, cce),
    seed 0, composed by Hydra and run by the app: train/cost at step 0 is the exact categorical
    cross-entropy of the initial network (136.2 here; the clipped form logged 20.8), val/cost
    the validation set's."""
    from hydra import compose, initialize_config_module

    from ffexp.job.app import execute, prepare
    from ffexp.launch.config import to_settings
    with initialize_config_module("ffexp.conf", version_base=None):
        cfg = compose("config", overrides=["+experiment=softmax_beta", "model.beta=100.0",
                                           "seed=0", "train.epochs=1", "tracking.enabled=false"])
    job = prepare(to_settings(cfg))
    d = job.dataset
    exact = {s: exact_cost("cce", getattr(d, f"Y_{s}"),
                           job.net.forward_output(getattr(d, f"X_{s}"))[0], 100.0)
             for s in ("train", "val")}
    first = execute(job, []).train.history[0]
    assert first.cost == pytest.approx(exact["train"], rel=1e-12)
    assert first.metrics["val/cost"] == pytest.approx(exact["val"], rel=1e-12)
    assert exact["train"] == pytest.approx(136.2, abs=0.05)
