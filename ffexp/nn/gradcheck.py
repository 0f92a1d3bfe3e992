"""Central-difference gradient check of a Network's backpropagation, tensor by tensor.

For every parameter θ (each entry of W[l] and b[l], l = 1..L) the numerical derivative of the
mean cost J (the same J that ``net.gradients`` returns) is the central difference

    n(θ) = (J(θ + h) − J(θ − h)) / (2h)          (error O(h²) in exact arithmetic)

and it is compared with the analytic a(θ) of ``net.gradients(X, Y, loss)``. As in Karpathy's
"backprop ninja" comparison, the report has one row per tensor T (W1, b1, ..., WL, bL) with

    abs_error(T) = max_i |a_i − n_i|
    rel_error(T) = max_i |a_i − n_i| / max(max_i |a_i|, max_i |n_i|)     (0 when both are 0)

i.e. the largest disagreement relative to the tensor's own scale, so that entries whose gradient
is 0 (a dead ReLU unit, a step layer) do not divide by zero. ``exact`` says whether the two
tensors are bitwise equal (true e.g. where both are exactly 0).

In float64 with h = 1e-5 a correct backward gives rel_error around 1e-9 or smaller; a wrong
one typically gives 1e-2 or more. Use float64 networks: in float32 the round-off of J alone
is ~1e-7/h. A kink of relu / leaky_relu / step within h of some Z[l] spoils the difference
quotient there (the function is not differentiable); keep |Z| away from 0 (see ``min_abs_z``).

Cost: 2 forward passes per parameter; meant for small networks and a few examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import Loss, make_loss


@dataclass(frozen=True)
class TensorCheck:
    """One row of the report: the analytic and numerical gradient of one tensor compared."""

    name: str            # "W3", "b1", ... (layers numbered 1..L)
    shape: tuple
    abs_error: float     # max_i |a_i − n_i|
    scale: float         # max(max_i |a_i|, max_i |n_i|)
    rel_error: float     # abs_error / scale (0 if scale is 0)
    exact: bool          # analytic and numerical tensors bitwise equal


@dataclass(frozen=True)
class GradCheckReport:
    """The per-tensor comparison; ``rows[2(l-1)]`` is W[l], ``rows[2(l-1)+1]`` is b[l]."""

    cost: float
    h: float
    rows: tuple[TensorCheck, ...]
    analytic: tuple[np.ndarray, ...]
    numerical: tuple[np.ndarray, ...]

    @property
    def max_rel_error(self) -> float:
        return max(r.rel_error for r in self.rows)

    def ok(self, tol: float = 1e-6) -> bool:
        """True if every tensor's rel_error is below ``tol``."""
        return self.max_rel_error < tol

    def __getitem__(self, name: str) -> TensorCheck:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no tensor {name!r}; tensors: {[r.name for r in self.rows]}")

    def __str__(self) -> str:
        lines = [f"gradient check (central differences, h={self.h:g}), J = {self.cost:.6g}",
                 f"{'tensor':<7}{'shape':<12}{'exact':<7}{'max|a-n|':>12}{'scale':>12}{'rel':>12}"]
        for r in self.rows:
            lines.append(f"{r.name:<7}{str(r.shape):<12}{str(r.exact):<7}"
                         f"{r.abs_error:>12.3e}{r.scale:>12.3e}{r.rel_error:>12.3e}")
        return "\n".join(lines)


def _compare(name: str, a: np.ndarray, n: np.ndarray) -> TensorCheck:
    diff = float(np.max(np.abs(a - n))) if a.size else 0.0
    scale = float(max(np.max(np.abs(a)), np.max(np.abs(n)))) if a.size else 0.0
    rel = diff / scale if scale > 0 else 0.0
    return TensorCheck(name, a.shape, diff, scale, rel, bool(np.array_equal(a, n)))


def numerical_gradient(net, X: np.ndarray, Y: np.ndarray, loss: "str | Loss",
                       h: float = 1e-5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(dW, db) by central differences of J; every parameter is restored bit for bit."""
    loss = make_loss(loss)

    def J() -> float:
        return net.cost(X, Y, loss)

    grads = []
    for P in [p for pair in zip(net.weights, net.biases) for p in pair]:
        G = np.zeros(P.shape, dtype=np.float64)
        for idx in np.ndindex(P.shape):
            old = P[idx]
            P[idx] = old + h
            j_plus = J()
            P[idx] = old - h
            j_minus = J()
            P[idx] = old
            G[idx] = (j_plus - j_minus) / (2.0 * h)
        grads.append(G)
    return grads[0::2], grads[1::2]


def check_gradients(net, X: np.ndarray, Y: np.ndarray, loss: "str | Loss",
                    h: float = 1e-5) -> GradCheckReport:
    """Compare ``net.gradients(X, Y, loss)`` with central differences; see the module doc.

    X is (n[0], m), Y is (n[L], m). The network is left exactly as it was.
    """
    loss = make_loss(loss)
    J, dW, db = net.gradients(X, Y, loss)
    nW, nb = numerical_gradient(net, X, Y, loss, h)
    rows, analytic, numerical = [], [], []
    for l in range(1, net.L + 1):
        for name, a, n in ((f"W{l}", dW[l - 1], nW[l - 1]), (f"b{l}", db[l - 1], nb[l - 1])):
            rows.append(_compare(name, a, n))
            analytic.append(a)
            numerical.append(n)
    return GradCheckReport(float(J), h, tuple(rows), tuple(analytic), tuple(numerical))


def min_abs_z(net, X: np.ndarray) -> float:
    """min |Z[l]| over the hidden and output layers: how far the batch is from any kink."""
    Zs, _ = net.forward_all(X)
    return float(min(np.min(np.abs(Z)) for Z in Zs[1:]))
