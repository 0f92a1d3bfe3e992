"""Diagnosis tags computed from a run's history at its end, for filtering in the MLflow UI.

Each diagnosis is a tag ``ffexp.diag.<name>`` = ``true`` | ``false``; the tag
``ffexp.diagnosis`` spells out the flagged ones with their numbers. The thresholds are for
orientation, not verdicts (docs/tracking.md, "Diagnoses"):

"At initialization" is the history's step 0: the record of the initial parameters, before any
update, with the gradient of the full training cost (ffexp.nn.EpochStats).

- vanishing_gradients: ‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L]‖ < VANISHING_RATIO at initialization;
- exploding_gradients: that ratio > EXPLODING_RATIO at initialization, or some ‖∂J/∂W[l]‖
  grows past EXPLODING_GROWTH × its value at initialization;
- saturated_layers: a hidden layer with more than SATURATED_FRACTION of its activations
  saturated at the last epoch;
- dead_units: a hidden layer with more than DEAD_FRACTION of its units dead at the last epoch;
- stalled_cost: the cost fell by less than STALL_RELATIVE (relative) from initialization over
  the first STALL_EPOCHS epochs;
- symmetry_not_broken: a hidden layer with ≥ 2 units whose units are all identical (same
  incoming weights and bias) at the end, e.g. after zero initialization.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

VANISHING_RATIO = 1e-3
EXPLODING_RATIO = 1e3
EXPLODING_GROWTH = 1e3
SATURATED_FRACTION = 0.5
DEAD_FRACTION = 0.5
STALL_EPOCHS = 10
STALL_RELATIVE = 0.01

NAMES = ("vanishing_gradients", "exploding_gradients", "saturated_layers", "dead_units",
         "stalled_cost", "symmetry_not_broken")


def _ratio(first) -> float | None:
    """‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L]‖ of a record (None if not finite or undefined)."""
    gZ = np.asarray(first.grad_norm_Z, dtype=float)
    if len(gZ) < 2 or not np.isfinite(gZ).all() or gZ[-1] <= 0:
        return None
    return float(gZ[0] / gZ[-1])


def _layers_over(values, threshold: float) -> list[tuple[int, float]]:
    return [(l, float(v)) for l, v in enumerate(values, 1) if np.isfinite(v) and v > threshold]


def _when(record) -> str:
    return "at initialization (step 0)" if record.epoch == 0 else f"at epoch {record.epoch}"


def _exploding(history, ratio: float | None) -> str:
    if ratio is not None and ratio > EXPLODING_RATIO:
        return f"‖dZ1‖/‖dZL‖ = {ratio:.3g} {_when(history[0])}"
    first = np.asarray(history[0].grad_norm_W, dtype=float)
    for s in history[1:]:
        grown = np.asarray(s.grad_norm_W, dtype=float) / np.where(first > 0, first, np.inf)
        if np.isfinite(grown).any() and np.nanmax(grown) > EXPLODING_GROWTH:
            l = int(np.nanargmax(grown)) + 1
            return f"‖dW{l}‖ grew {np.nanmax(grown):.3g}× by epoch {s.epoch}"
    return ""


def _stalled(history) -> str:
    """Over the first STALL_EPOCHS epochs: from the first record (step 0) to epoch
    first + STALL_EPOCHS, or the last one if training ended before."""
    start = history[0]
    end = next((s for s in history if s.epoch >= start.epoch + STALL_EPOCHS), history[-1])
    J0, Jn = start.cost, end.cost
    if end is start or not (np.isfinite(J0) and np.isfinite(Jn)) or J0 == 0:
        return ""
    drop = (J0 - Jn) / abs(J0)
    return (f"cost fell {drop:.2%} over epochs {start.epoch}-{end.epoch}"
            if drop < STALL_RELATIVE else "")


def _symmetric_layers(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> list[int]:
    out = []
    for l, (W, b) in enumerate(zip(weights[:-1], biases[:-1]), 1):
        if W.shape[0] >= 2 and np.array_equal(W, np.broadcast_to(W[:1], W.shape)) \
                and np.array_equal(b, np.broadcast_to(b[:1], b.shape)):
            out.append(l)
    return out


def diagnose(history, net=None) -> dict[str, str]:
    """{name: reason} for every flagged diagnosis (empty reason: not flagged). ``history[0]``
    is the record at initialization (step 0) for the engine's histories."""
    found = dict.fromkeys(NAMES, "")
    if history:
        first, last = history[0], history[-1]
        ratio = _ratio(first)
        if ratio is not None and ratio < VANISHING_RATIO:
            found["vanishing_gradients"] = f"‖dZ1‖/‖dZL‖ = {ratio:.3g} {_when(first)}"
        found["exploding_gradients"] = _exploding(history, ratio)
        sat = _layers_over(last.act_saturated, SATURATED_FRACTION)
        if sat:
            found["saturated_layers"] = "; ".join(f"layer {l}: {v:.0%} saturated" for l, v in sat)
        dead = _layers_over(last.act_dead, DEAD_FRACTION)
        if dead:
            found["dead_units"] = "; ".join(f"layer {l}: {v:.0%} dead" for l, v in dead)
        found["stalled_cost"] = _stalled(history)
    if net is not None:
        sym = _symmetric_layers(net.weights, net.biases)
        if sym:
            found["symmetry_not_broken"] = f"all units identical in layer(s) {sym}"
    return found


def diagnosis_tags(history, net=None, found: dict[str, str] | None = None) -> dict[str, str]:
    """``ffexp.diag.<name>`` = true|false, and ``ffexp.diagnosis`` with the reasons (of
    ``found``, the result of ``diagnose``, when given)."""
    found = diagnose(history, net) if found is None else found
    tags = {f"ffexp.diag.{k}": str(bool(v)).lower() for k, v in found.items()}
    reasons = [f"{k}: {v}" for k, v in found.items() if v]
    tags["ffexp.diagnosis"] = " | ".join(reasons) if reasons else "none"
    return tags
