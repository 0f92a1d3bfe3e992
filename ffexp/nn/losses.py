"""Losses L(y, ŷ) for one example and costs J = (1/m) Σ_i L(y(i), ŷ(i)), by name.

Y and Ŷ are (n[L], m), examples as columns. Each loss gives the cost J and dŶ = ∂J/∂Ŷ (the
mean, so it already carries the 1/m).

A cross-entropy after its own output activation (sigmoid + bce, softmax + cce, any β) has its
cost from the output layer's pre-activations U = β Z[L] (``logit_cost``; ``output_cost``
chooses), exact for any finite Z[L] and never clipped:

- bce:  L = Σ_k [max(u_k, 0) − y_k u_k + ln(1 + e^(−|u_k|))]   (= softplus(u_k) − y_k u_k)
- cce:  L = Σ_k y_k (M − u_k) + (Σ_k y_k) ln(1 + Σ_{j≠k*} e^(u_j − M)),  M = max_k u_k = u_k*
  (= Σ_k y_k (logsumexp(u) − u_k))

Every term is ≥ 0, so no cancellation: a saturated, confidently wrong example costs |u|, a
right one e^(−|u|) to full relative precision. From Ŷ alone (``cost``: the mismatched pairs,
softmax + bce and step + bce, which keep this definition) the cross-entropies clip ŷ into
[ε, 1 − ε] (ε the dtype's machine epsilon), so an example costs at most ln(1/ε) (36.04 in
float64). The gradients are unchanged: the matched pairs' dZ[L] = β (Ŷ − Y)/m needs no ln.

- ``mse``  quadratic: L = ½ Σ_k (y_k − ŷ_k)², summed over outputs;  ∂J/∂Ŷ = (Ŷ − Y)/m.
- ``bce``  binary cross-entropy, and with several sigmoid outputs the multi-label one:
  L = −Σ_k [y_k ln ŷ_k + (1 − y_k) ln(1 − ŷ_k)];  ∂J/∂Ŷ = (Ŷ − Y) / (Ŷ(1 − Ŷ)) / m.
- ``cce``  categorical cross-entropy: L = −Σ_k y_k ln ŷ_k;  ∂J/∂Ŷ = −Y/Ŷ / m.

``costs``, ``logit_costs`` and ``output_costs`` give the cost of each network of a stack
(ffexp.nn.stack): Ŷ, U, Z[L] (K, n[L], m), Y the same or (n[L], m) shared, each J equal bit for
bit to ``cost``, ``logit_cost``, ``output_cost`` of its slice: the same elementwise operations
in the same order, the same BLAS dot (np.matmul of (K, 1, N) by (K, N, 1), as np.vdot and
np.dot), the same pairwise sum over the slice's n[L]·m values and the same row-by-row sums
over its n[L] outputs.

For the matched pairs linear(c=1)+mse, sigmoid+bce and softmax(β=1)+cce the output error is
the shortcut dZ[L] = (Ŷ − Y)/m (β (Ŷ − Y)/m for a softmax of β ≠ 1; docs/math.md [194], [198], [203], [207-210]); every other allowed
pair goes through the general chain rule dZ[L] = g'ᵀ dŶ.
"""

from __future__ import annotations

import numpy as np


def _eps(Yhat: np.ndarray) -> float:
    return float(np.finfo(Yhat.dtype if Yhat.dtype.kind == "f" else np.float64).eps)


def _sums(T: np.ndarray) -> np.ndarray:
    """Σ over each slice of T (K, n, m), in T's dtype as np.sum of the slice, then float64."""
    return np.add.reduce(T.reshape(len(T), -1), axis=1).astype(np.float64)


class Loss:
    name = ""
    #: True if the loss needs outputs and labels in [0, 1] (cross-entropies)
    needs_probabilities = False
    #: the output activation whose matched pair gives the shortcut dZ[L] = (Ŷ − Y)/m
    shortcut_activation = ""

    def cost(self, Y: np.ndarray, Yhat: np.ndarray) -> float:
        raise NotImplementedError

    def costs(self, Y: np.ndarray, Yhat: np.ndarray) -> np.ndarray:
        """J of each network of a stack, (K,) float64: Ŷ (K, n[L], m), Y (K or 1, n[L], m)
        or (n[L], m)."""
        raise NotImplementedError

    def logit_cost(self, Y: np.ndarray, U: np.ndarray) -> float:
        """J from U = β Z[L] (n[L], m) of the matched output (``shortcut_activation``)."""
        raise NotImplementedError

    def logit_costs(self, Y: np.ndarray, U: np.ndarray) -> np.ndarray:
        """``logit_cost`` of each network of a stack, (K,) float64: U (K, n[L], m), Y (K or 1,
        n[L], m) or (n[L], m)."""
        raise NotImplementedError

    def grad(self, Y: np.ndarray, Yhat: np.ndarray) -> np.ndarray:
        """∂J/∂Ŷ, of Ŷ's shape."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Quadratic(Loss):
    name = "mse"
    shortcut_activation = "linear"

    def cost(self, Y, Yhat):
        D = Yhat - Y
        return 0.5 * float(np.vdot(D, D)) / Y.shape[1]

    def costs(self, Y, Yhat):
        D = (Yhat - Y).reshape(len(Yhat), 1, -1)          # (K, 1, n[L]·m)
        dots = np.matmul(D, D.transpose(0, 2, 1))[:, 0, 0]  # a BLAS dot per network, as vdot
        return 0.5 * dots.astype(np.float64) / Y.shape[-1]

    def grad(self, Y, Yhat):
        return (Yhat - Y) / Y.shape[-1]


class BinaryCrossEntropy(Loss):
    name = "bce"
    needs_probabilities = True
    shortcut_activation = "sigmoid"

    def logit_cost(self, Y, U):
        # max(u, 0) − y u is exact for y ∈ {0, 1} (0 or |u|); ln(1 + e^(−|u|)) ∈ (0, ln 2]
        L = np.maximum(U, 0.0)
        L -= Y * U
        L += np.log1p(np.exp(-np.abs(U)))
        return float(L.sum()) / Y.shape[1]

    def logit_costs(self, Y, U):
        L = np.maximum(U, 0.0)
        L -= Y * U
        L += np.log1p(np.exp(-np.abs(U)))
        return _sums(L) / Y.shape[-1]   # each slice's pairwise sum, as L.sum()

    def cost(self, Y, Yhat):
        eps = _eps(Yhat)
        P = np.clip(Yhat, eps, 1.0 - eps)
        return -float(np.sum(Y * np.log(P) + (1.0 - Y) * np.log1p(-P))) / Y.shape[1]

    def costs(self, Y, Yhat):
        eps = _eps(Yhat)
        P = np.clip(Yhat, eps, 1.0 - eps)
        return -_sums(Y * np.log(P) + (1.0 - Y) * np.log1p(-P)) / Y.shape[-1]

    def grad(self, Y, Yhat):
        eps = _eps(Yhat)
        P = np.clip(Yhat, eps, 1.0 - eps)
        return (P - Y) / (P * (1.0 - P)) / Y.shape[-1]


class CategoricalCrossEntropy(Loss):
    name = "cce"
    needs_probabilities = True
    shortcut_activation = "softmax"

    def logit_cost(self, Y, U):
        m = U.shape[1]
        top = np.argmax(U, axis=0)                      # k* per column
        M = U[top, np.arange(m)]                        # (m,)
        E = np.exp(U - M)
        E[top, np.arange(m)] = 0.0                      # Σ_{j≠k*}: ln(1 + s) by log1p, exact
        rest = np.log1p(E.sum(axis=0))                  # logsumexp(u) − M, (m,)
        return float(np.vdot(Y, M - U) + np.dot(Y.sum(axis=0), rest)) / m

    def logit_costs(self, Y, U):
        K, n, m = U.shape
        top = np.argmax(U, axis=1)[:, None, :]          # k* per column, (K, 1, m)
        M = np.take_along_axis(U, top, axis=1)          # (K, 1, m)
        E = np.exp(U - M)
        np.put_along_axis(E, top, 0.0, axis=1)
        rest = np.log1p(E.sum(axis=1))                  # (K, m): E's rows added in order
        # a BLAS dot per network, as np.vdot(Y, M − U) and np.dot(Σ_k y_k, rest); Y flattened
        # as np.vdot flattens it (a view, strided for a single column, where one exists, else a
        # contiguous copy): BLAS sums a strided vector in another order than a contiguous one
        y = Y.reshape(*Y.shape[:-2], 1, n * m)          # (1, n·m) shared or (K, 1, n·m)
        dots = np.matmul(y, (M - U).reshape(K, n * m, 1))[:, 0, 0]
        ysum = Y.sum(axis=-2)[..., None, :]             # (1, m) or (K, 1, m), as Y.sum(axis=0)
        dots += np.matmul(ysum, rest[:, :, None])[:, 0, 0]
        return dots.astype(np.float64) / m

    def cost(self, Y, Yhat):
        P = np.clip(Yhat, _eps(Yhat), 1.0)
        return -float(np.sum(Y * np.log(P))) / Y.shape[1]

    def costs(self, Y, Yhat):
        P = np.clip(Yhat, _eps(Yhat), 1.0)
        return -_sums(Y * np.log(P)) / Y.shape[-1]

    def grad(self, Y, Yhat):
        P = np.clip(Yhat, _eps(Yhat), 1.0)
        return -Y / P / Y.shape[-1]


#: name -> class; the names are the user interface (config group `loss`)
LOSSES: dict[str, type[Loss]] = {c.name: c for c in (Quadratic, BinaryCrossEntropy, CategoricalCrossEntropy)}


def make_loss(name: "str | Loss") -> Loss:
    """The loss registered as ``name`` (a Loss passes through)."""
    if isinstance(name, Loss):
        return name
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]()


def has_logit_cost(loss: Loss, output) -> bool:
    """Whether J comes from β Z[L] (``logit_cost``): sigmoid + bce, softmax + cce, any β."""
    return loss.needs_probabilities and output.name == loss.shortcut_activation


def output_cost(loss: Loss, output, Y: np.ndarray, Z: np.ndarray, Yhat: np.ndarray) -> float:
    """J of the output layer's Z = Z[L] and Ŷ = g[L](Z) against Y, all (n[L], m): from
    U = β Z for the matched cross-entropies (``has_logit_cost``), else from Ŷ."""
    if has_logit_cost(loss, output):
        beta = getattr(output, "beta", 1.0)
        return loss.logit_cost(Y, Z if beta == 1.0 else beta * Z)
    return loss.cost(Y, Yhat)


def output_costs(loss: Loss, output, Y: np.ndarray, Z: np.ndarray,
                 Yhat: np.ndarray | None) -> np.ndarray:
    """``output_cost`` of each network of a stack of one output activation, (K,) float64:
    Z, Ŷ (K, n[L], m), Y (K, n[L], m) or (n[L], m) shared; Ŷ is not read (may be None) where J
    comes from β Z[L]."""
    if has_logit_cost(loss, output):
        beta = getattr(output, "beta", 1.0)
        return loss.logit_costs(Y, Z if beta == 1.0 else beta * Z)
    return loss.costs(Y, Yhat)


def uses_shortcut(loss: Loss, output) -> bool:
    """Whether (output activation, loss) is a matched pair with dZ[L] = β (Ŷ − Y)/m.

    β is softmax's (1 for the others); a linear output only with slope c = 1. The shortcut is
    also the numerically sound form: the chain rule through a clipped ln ŷ loses the gradient
    of confidently wrong examples."""
    return output.name == loss.shortcut_activation and getattr(output, "c", 1.0) == 1.0
