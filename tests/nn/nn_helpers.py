"""Shared helpers for the engine tests (ffexp.nn); imported by the test modules."""

import numpy as np

from ffexp.nn import ACTIVATIONS, LOSSES


def empirical_range(name: str) -> tuple[float, float]:
    """The range of an activation's values measured on a wide grid (independent of the
    activation's own ``output_range``)."""
    z = np.linspace(-50.0, 50.0, 2001).reshape(-1, 1)
    Z = np.hstack([z, -z, np.zeros_like(z)]).T  # (3, 2001): softmax sees 3-unit columns
    A = ACTIVATIONS[name]().forward(Z)
    return float(A.min()), float(A.max())


def pair_allowed(output: str, loss: str) -> bool:
    """The issue's rule: cross-entropy needs outputs in [0, 1]; cce needs a softmax output."""
    if loss == "cce":
        return output == "softmax"
    if loss == "bce" or LOSSES[loss].needs_probabilities:
        lo, hi = empirical_range(output)
        return lo >= 0.0 and hi <= 1.0
    return True


def make_labels(loss: str, n_out: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Labels valid for ``loss``: real for mse, {0,1} for bce, one-hot columns for cce."""
    if loss == "cce":
        Y = np.zeros((n_out, m))
        Y[rng.integers(0, n_out, size=m), np.arange(m)] = 1.0
        return Y
    if loss == "bce":
        Y = rng.integers(0, 2, size=(n_out, m)).astype(float)
        Y[:, 0] = 1.0  # both classes present
        Y[:, 1] = 0.0
        return Y
    return rng.normal(size=(n_out, m))
