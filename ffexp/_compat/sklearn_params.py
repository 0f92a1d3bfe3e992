"""scikit-learn's parameter validation for ffexp's estimators: ``Interval``, ``StrOptions``,
``InvalidParameterError`` and ``fit_context`` (which validates ``_parameter_constraints`` once
per ``fit``), from ``sklearn.utils._param_validation`` and ``sklearn.base._fit_context`` where
the installed scikit-learn is a tested series; elsewhere a plain implementation of the same
constraints ffexp declares (intervals, string options, None, booleans, array-likes,
random states, types), raising the same kind of error (a ValueError and TypeError naming the
parameter, its value and what is accepted), warned once.
"""

from __future__ import annotations

import functools
from numbers import Integral, Real

import numpy as np

from ffexp._compat.gate import supported

#: the scikit-learn series whose private validation ffexp's tests run against
TESTED = ((1, 9),)


class _Interval:
    """``type`` values in (left, right), each end open or closed (None: unbounded)."""

    def __init__(self, type_, left, right, *, closed: str) -> None:
        self.type, self.left, self.right, self.closed = type_, left, right, closed

    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.type):
            return False
        lo = self.closed in ("left", "both")
        hi = self.closed in ("right", "both")
        if self.left is not None and (value < self.left if lo else value <= self.left):
            return False
        if self.right is not None and (value > self.right if hi else value >= self.right):
            return False
        return bool(np.isfinite(value)) or self.left is None or self.right is None

    def __str__(self) -> str:
        kind = "an int" if self.type is Integral else "a float"
        left = "[" if self.closed in ("left", "both") else "("
        right = "]" if self.closed in ("right", "both") else ")"
        lo = "-inf" if self.left is None else self.left
        hi = "inf" if self.right is None else self.right
        return f"{kind} in the range {left}{lo}, {hi}{right}"


class _StrOptions:
    def __init__(self, options: set) -> None:
        self.options = options

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, str) and value in self.options

    def __str__(self) -> str:
        return f"a str among {sorted(self.options)}"


class _InvalidParameterError(ValueError, TypeError):
    """A parameter's value is not one its constraints accept."""


def _satisfies(value, constraint) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, str):
        return {"boolean": lambda v: isinstance(v, (bool, np.bool_)),
                "array-like": lambda v: hasattr(v, "__len__") or hasattr(v, "__array__"),
                "random_state": lambda v: v is None or isinstance(v, (Integral,
                                                                      np.random.RandomState)),
                }[constraint](value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return constraint.is_satisfied_by(value)


def _validate(estimator) -> None:
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        if not any(_satisfies(params[name], c) for c in constraints):
            accepted = " or ".join(str(c) if not isinstance(c, type) else c.__name__
                                   for c in constraints)
            raise _InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must be {accepted}. "
                f"Got {params[name]!r} instead.")


def _fit_context_fallback(*, prefer_skip_nested_validation: bool = True):
    def decorate(fit):
        @functools.wraps(fit)
        def wrapper(estimator, *args, **kwargs):
            _validate(estimator)
            return fit(estimator, *args, **kwargs)
        return wrapper
    return decorate


if supported("scikit-learn's parameter validation", "scikit-learn", TESTED):
    from sklearn.base import _fit_context as fit_context
    from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
else:
    Interval, StrOptions, InvalidParameterError = _Interval, _StrOptions, _InvalidParameterError
    fit_context = _fit_context_fallback

__all__ = ["Interval", "InvalidParameterError", "StrOptions", "fit_context"]
