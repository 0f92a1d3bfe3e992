"""Weight initializations by name (docs/math.md, "Initialization").

Each initializer draws W[l] of shape (fan_out, fan_in) = (n[l], n[l-1]) from an explicit
Generator. Variances, with fan_in = n[l-1], fan_out = n[l]:

- ``random``: N(0, 1) × scale (scale 0.01 as in Andrew Ng's course); uniform: U(-scale, scale).
- ``xavier`` (Glorot & Bengio 2010): normal N(0, 2/(fan_in+fan_out));
  uniform U(-r, r), r = sqrt(6/(fan_in+fan_out)) — both of variance 2/(fan_in+fan_out).
- ``he`` (He et al. 2015): normal N(0, 2/fan_in); uniform U(-r, r), r = sqrt(6/fan_in).
- ``standard`` (the "commonly used heuristic" Glorot & Bengio 2010 compare against, their
  eq. 1): uniform U(-1/sqrt(fan_in), 1/sqrt(fan_in)), of variance 1/(3 fan_in); normal
  N(0, 1/(3 fan_in)), the same variance. Var(z) shrinks by 1/3 per layer (tanh, small z).
- ``zeros``: all zero — every unit of a layer stays identical (the symmetry problem).
"""

from __future__ import annotations

import math

import numpy as np

DISTRIBUTIONS = ("normal", "uniform")


def _draw(rng: np.random.Generator, shape, std: float, distribution: str) -> np.ndarray:
    """A draw of mean 0 and standard deviation ``std`` from the named distribution."""
    if distribution == "normal":
        return rng.normal(0.0, std, size=shape)
    return rng.uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, size=shape)


def random_init(rng, fan_in, fan_out, distribution="normal", scale=0.01):
    """N(0,1) × scale, or U(-scale, scale)."""
    if distribution == "normal":
        return scale * rng.standard_normal((fan_out, fan_in))
    return rng.uniform(-scale, scale, size=(fan_out, fan_in))


def xavier(rng, fan_in, fan_out, distribution="normal", scale=None):
    """Glorot: Var(W) = 2 / (fan_in + fan_out)."""
    return _draw(rng, (fan_out, fan_in), math.sqrt(2.0 / (fan_in + fan_out)), distribution)


def he(rng, fan_in, fan_out, distribution="normal", scale=None):
    """He: Var(W) = 2 / fan_in."""
    return _draw(rng, (fan_out, fan_in), math.sqrt(2.0 / fan_in), distribution)


def standard(rng, fan_in, fan_out, distribution="normal", scale=None):
    """Glorot's standard: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), Var(W) = 1 / (3 fan_in)."""
    return _draw(rng, (fan_out, fan_in), 1.0 / math.sqrt(3.0 * fan_in), distribution)


def zeros(rng, fan_in, fan_out, distribution="normal", scale=None):
    """All zeros (draws nothing)."""
    return np.zeros((fan_out, fan_in))


#: name -> f(rng, fan_in, fan_out, distribution, scale) -> W of shape (fan_out, fan_in)
INITIALIZERS = {"random": random_init, "xavier": xavier, "he": he, "standard": standard,
                "zeros": zeros}


def variance(name: str, fan_in: int, fan_out: int, distribution: str = "normal",
             scale: float = 0.01) -> float:
    """The variance of the entries of W that ``name`` is designed to give."""
    if name == "random":
        return scale**2 if distribution == "normal" else scale**2 / 3.0
    return {"xavier": 2.0 / (fan_in + fan_out), "he": 2.0 / fan_in,
            "standard": 1.0 / (3.0 * fan_in), "zeros": 0.0}[name]
