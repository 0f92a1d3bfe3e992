"""Diagnosis tags computed from a run's history at its end, for filtering in the MLflow UI.

Each diagnosis is a tag ``ffexp.diag.<name>`` = ``true`` | ``false``; the tag
``ffexp.diagnosis`` spells out the flagged ones with their numbers. The thresholds are for
orientation, not verdicts (docs/tracking.md, "Diagnoses"):

"At initialization" is the history's step 0: the record of the initial parameters, before any
update, with the gradient of the full training cost (ffexp.nn.EpochStats).

- vanishing_gradients: ‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖, the first over the last hidden layer's error,
  < VANISHING_RATIO at initialization (a network with at least two hidden layers; the output
  layer's error is left out: it is the loss's, not what back-propagation did to it);
- exploding_gradients: some ‖∂J/∂W[l]‖_F > EXPLODING_NORM in some record (at initialization,
  or any later one): a large gradient in absolute terms, so that growth from a vanishing
  start (1e-13 to 1e-9) is not flagged; the reason adds the step-0 ratio above when it is
  over EXPLODING_RATIO. The norms are the full training cost's (``grad_norm/*``), or the mean
  over an epoch's updates with ``train.epoch_gradients=mean`` (the reason says which);
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
#: ‖∂J/∂W[l]‖_F above it is exploding: Xavier and He nets have norms below 1 on the studies'
#: data, the initialization study's N(0, 1) relu net 1.9e5 in every layer
EXPLODING_NORM = 1e2
EXPLODING_RATIO = 1e3
SATURATED_FRACTION = 0.5
DEAD_FRACTION = 0.5
STALL_EPOCHS = 10
STALL_RELATIVE = 0.01

NAMES = ("vanishing_gradients", "exploding_gradients", "saturated_layers", "dead_units",
         "stalled_cost", "symmetry_not_broken")


def _ratio(first) -> float | None:
    """‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖ of a record: the first over the last hidden layer (None with
    fewer than two hidden layers, or if not finite or undefined)."""
    gZ = np.asarray(first.grad_norm_Z, dtype=float)
    if len(gZ) < 3 or not np.isfinite(gZ[:-1]).all() or gZ[-2] <= 0:
        return None
    return float(gZ[0] / gZ[-2])


def _layers_over(values, threshold: float) -> list[tuple[int, float]]:
    return [(l, float(v)) for l, v in enumerate(values, 1) if np.isfinite(v) and v > threshold]


def _when(record) -> str:
    return "at initialization (step 0)" if record.epoch == 0 else f"at epoch {record.epoch}"


def _exploding(history, ratio: float | None) -> str:
    """The first record with some ‖∂J/∂W[l]‖ > EXPLODING_NORM ('' if none)."""
    for s in history:
        gW = np.asarray(s.grad_norm_W, dtype=float)
        if np.isfinite(gW).any() and np.nanmax(gW) > EXPLODING_NORM:
            l = int(np.nanargmax(gW)) + 1
            measure = " (mean over the epoch's updates)" if s.gradients == "mean" else ""
            out = f"‖dW{l}‖ = {np.nanmax(gW):.3g}{measure} {_when(s)}"
            if ratio is not None and ratio > EXPLODING_RATIO:
                out += f"; ‖dZ1‖/‖dZ{len(gW) - 1}‖ = {ratio:.3g} {_when(history[0])}"
            return out
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
            found["vanishing_gradients"] = \
                f"‖dZ1‖/‖dZ{len(first.grad_norm_Z) - 1}‖ = {ratio:.3g} {_when(first)}"
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
