"""Activation functions g and their derivatives, registered by short name (docs/math.md, table 1).

Each activation acts on a whole layer: ``forward(Z) -> A`` with Z, A of shape (n[l], m), and
``backward(dA, Z, A) -> dZ``, the vector-Jacobian product dZ = ∂J/∂Z[l] from dA = ∂J/∂A[l].
A stack of K networks' layers, (K, n[l], m) (ffexp.nn.stack), goes through the same methods:
units are always axis -2 and examples axis -1, and each slice comes out as its own call would.
For the elementwise activations that is dZ = dA ⊙ g'(Z); softmax couples the units of a
column, so it uses its Jacobian ∂a_i/∂z_j = β a_i (δ_ij − a_j) instead.

All are stable for |z| up to 1e4 and beyond: sigmoid never exponentiates a positive number,
softmax subtracts the column maximum before exponentiating.
"""

from __future__ import annotations

import numpy as np


class Activation:
    """Base class: an elementwise g with derivative g'."""

    name = ""
    #: the closed range of g's values; cross-entropy needs an output within [0, 1]
    output_range: tuple[float, float] = (-np.inf, np.inf)
    #: False for activations whose units are coupled (softmax): output layer only
    elementwise = True
    #: True where g'(z) = 0 wherever it is defined, so no gradient flows through the layer
    blocks_gradient = False
    #: True for the rectifiers, whose unit is dead (inactive) when z ≤ 0 for every example
    can_die = False
    #: True where ``inactive`` answers from the row sums of A = g(Z) alone, over any set of
    #: columns (ReLU), so that Z need not be kept once A is computed
    inactive_from_sums = False

    def forward(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        """g'(Z), elementwise; A = g(Z) is passed so it need not be recomputed."""
        raise NotImplementedError

    def backward(self, dA: np.ndarray, Z: np.ndarray, A: np.ndarray) -> np.ndarray:
        """dZ = dA ⊙ g'(Z)."""
        return dA * self.derivative(Z, A)

    def forward_into(self, Z: np.ndarray, out: np.ndarray,
                     zeros: np.ndarray | None = None) -> None:
        """out[...] = g(Z), into a preallocated buffer (the training step's form); ``out``
        may be Z itself (the bookkeeping pass's form). ``zeros``, optionally an array of
        zeros of Z's shape, is ReLU's: np.maximum against it takes numpy's SIMD loop, twice
        as fast as against the scalar 0 (numpy 2.4, float64), for the same values."""
        out[...] = self.forward(Z)

    def backward_inplace(self, dZ: np.ndarray, Z: np.ndarray, A: np.ndarray) -> None:
        """dZ ← dZ ⊙ g'(Z) in place, where dZ holds dA on entry (elementwise g only)."""
        dZ *= self.derivative(Z, A)

    def saturated(self, A: np.ndarray) -> float:
        """Fraction of activations in the flat tails of g (0 where g has none)."""
        mask = self.saturated_mask(A)
        return 0.0 if mask is None else float(np.mean(mask))

    def saturated_mask(self, A: np.ndarray) -> np.ndarray | None:
        """True where an activation lies in the flat tails of g; None where g has none."""
        return None

    def inactive(self, Z: np.ndarray, A_sums: np.ndarray | None = None) -> np.ndarray:
        """Per unit (row of Z), True where z ≤ 0 for every column (example). ``A_sums``, the
        row sums of A = g(Z), may answer it without another pass over Z (ReLU)."""
        return Z.max(axis=-1) <= 0

    def dead(self, Z: np.ndarray) -> float:
        """Fraction of dead units: z ≤ 0 for every example (0 where g cannot die)."""
        return float(np.mean(self.inactive(Z))) if self.can_die else 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Step(Activation):
    """Binary step: g(z) = 1 if z > 0 else 0; g'(z) = 0 everywhere it is defined.

    One of the article's activations, kept to show that it cannot be trained by
    backpropagation: every error term through it is zero.
    """

    name = "step"
    output_range = (0.0, 1.0)
    blocks_gradient = True

    def forward(self, Z):
        return (Z > 0).astype(Z.dtype)

    def derivative(self, Z, A):
        return np.zeros_like(Z)

    def backward(self, dA, Z, A):
        return np.zeros_like(Z)

    def backward_inplace(self, dZ, Z, A):
        dZ[...] = 0.0


class Linear(Activation):
    """Linear: g(z) = c z, g'(z) = c (c = 1 gives the identity)."""

    name = "linear"

    def __init__(self, c: float = 1.0):
        self.c = float(c)

    def forward(self, Z):
        return Z if self.c == 1.0 else self.c * Z

    def derivative(self, Z, A):
        return np.full_like(Z, self.c)

    def backward(self, dA, Z, A):
        return dA if self.c == 1.0 else self.c * dA

    def forward_into(self, Z, out, zeros=None):
        np.multiply(Z, self.c, out=out)

    def backward_inplace(self, dZ, Z, A):
        if self.c != 1.0:
            dZ *= self.c

    def __repr__(self):
        return f"Linear(c={self.c})"


class Sigmoid(Activation):
    """Logistic sigmoid: σ(z) = 1 / (1 + e^−z), σ'(z) = σ(z)(1 − σ(z)).

    Computed as 1/(1+e^−z) for z ≥ 0 and e^z/(1+e^z) for z < 0, so e is only ever raised to a
    non-positive power. Saturated: σ outside [0.01, 0.99].

    An output layer may take the softmax's β: a = σ(βz) = e^(βz) / (e^(βz) + e^(β·0)), the
    softmax of β over the two logits (z, 0); then g'(z) = β a (1 − a). Hidden layers: β = 1.
    """

    name = "sigmoid"
    output_range = (0.0, 1.0)

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def forward(self, Z):
        if self.beta != 1.0:
            Z = self.beta * Z
        E = np.exp(-np.abs(Z))
        return np.where(Z >= 0, 1.0, E) / (1.0 + E)

    def derivative(self, Z, A):
        return A * (1.0 - A) if self.beta == 1.0 else self.beta * A * (1.0 - A)

    def saturated_mask(self, A):
        return (A < 0.01) | (A > 0.99)


class Tanh(Activation):
    """Hyperbolic tangent: g(z) = tanh z, g'(z) = 1 − tanh² z. Saturated: |tanh| > 0.99."""

    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, Z):
        return np.tanh(Z)

    def forward_into(self, Z, out, zeros=None):
        np.tanh(Z, out=out)

    def derivative(self, Z, A):
        return 1.0 - A * A

    def saturated_mask(self, A):
        return np.abs(A) > 0.99


class ReLU(Activation):
    """Rectified linear unit: g(z) = max(0, z); g'(z) = 1 if z > 0 else 0.

    At z = 0 the derivative is taken as 0 (the article allows 0 or 1). A unit is dead when
    z ≤ 0 for every example: no gradient reaches its incoming weights.
    """

    name = "relu"
    output_range = (0.0, np.inf)
    can_die = True
    inactive_from_sums = True

    def forward(self, Z):
        return np.maximum(Z, 0.0)

    def derivative(self, Z, A):
        return (Z > 0).astype(Z.dtype)

    def backward(self, dA, Z, A):
        return dA * (Z > 0)

    def forward_into(self, Z, out, zeros=None):
        np.maximum(Z, 0.0 if zeros is None else zeros, out=out)

    def backward_inplace(self, dZ, Z, A):
        np.multiply(dZ, Z > 0, out=dZ)

    def inactive(self, Z, A_sums=None):
        # a = max(z, 0) ≥ 0: a row of A sums to exactly 0 iff every z ≤ 0 (a sum of
        # non-negative numbers never rounds below its largest term)
        return A_sums == 0 if A_sums is not None else super().inactive(Z)


class LeakyReLU(Activation):
    """Leaky ReLU: g(z) = z if z > 0 else c z; g'(z) = 1 if z > 0 else c (c default 0.01).

    A unit counts as dead (inactive) when z ≤ 0 for every example: only the slope c reaches it.
    """

    name = "leaky_relu"
    can_die = True

    def __init__(self, c: float = 0.01):
        self.c = float(c)

    def forward(self, Z):
        return np.where(Z > 0, Z, self.c * Z)

    def derivative(self, Z, A):
        return np.where(Z > 0, 1.0, self.c).astype(Z.dtype)

    def backward(self, dA, Z, A):
        return np.where(Z > 0, dA, self.c * dA)

    def __repr__(self):
        return f"LeakyReLU(c={self.c})"


class Softmax(Activation):
    """Softmax over the units of a column: a_i = e^(β z_i) / Σ_k e^(β z_k).

    The Jacobian is ∂a_i/∂z_j = β a_i (δ_ij − a_j), so dZ = β A ⊙ (dA − Σ_i dA_i a_i), column
    by column. Shifted by the column maximum (which does not change the value) so that no
    exponent is positive. As β → ∞ it tends to hardmax: 1/p on each of the p largest entries.
    Output layer only.
    """

    name = "softmax"
    output_range = (0.0, 1.0)
    elementwise = False

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def forward(self, Z):
        S = Z - Z.max(axis=-2, keepdims=True)
        if self.beta != 1.0:
            S = self.beta * S
        E = np.exp(S)
        return E / E.sum(axis=-2, keepdims=True)

    def derivative(self, Z, A):
        raise TypeError("softmax has no elementwise derivative; use backward (its Jacobian)")

    def backward_inplace(self, dZ, Z, A):
        dZ[...] = self.backward(dZ.copy(), Z, A)

    def backward(self, dA, Z, A):
        dZ = A * (dA - np.sum(dA * A, axis=-2, keepdims=True))
        return dZ if self.beta == 1.0 else self.beta * dZ

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """The full Jacobian ∂a/∂z for one column z (n,): β (diag(a) − a aᵀ)."""
        a = self.forward(z.reshape(-1, 1)).ravel()
        return self.beta * (np.diag(a) - np.outer(a, a))

    def __repr__(self):
        return f"Softmax(beta={self.beta})"


#: name -> class; the names are the user interface (config group `activation`, Network args)
ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Step, Linear, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)
}
#: activations that a hidden layer may use (softmax couples units: output only)
HIDDEN_ACTIVATIONS = tuple(n for n, c in ACTIVATIONS.items() if c.elementwise)


def make_activation(name: str, *, c: float | None = None, beta: float | None = None) -> Activation:
    """The activation registered as ``name``; ``c`` is the slope of linear / leaky_relu and
    ``beta`` the softmax β (and a sigmoid's, the softmax of (z, 0)). Raises ValueError naming
    the accepted names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    cls = ACTIVATIONS[name]
    if cls in (Linear, LeakyReLU) and c is not None:
        return cls(c)
    if cls in (Softmax, Sigmoid) and beta is not None:
        if not beta > 0:
            raise ValueError(f"{name} beta must be > 0, got {beta!r}")
        return cls(beta)
    return cls()
