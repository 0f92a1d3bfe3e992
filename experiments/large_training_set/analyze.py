"""Study 15 (large_training_set): cost against epochs and against seconds, at an equal number of
epochs and at an equal wall-clock budget, and how smooth each variant's descent is.

Per variant (batch, mini-batch sizes, SGD), over seeds:

- the training cost after the last epoch (equal epochs), the seconds per epoch and in all;
- the training cost at T seconds, T = the shortest total time of any run (equal wall clock): the
  cost of the last epoch that ended by T, from ``time/elapsed``;
- the epochs and the seconds until the training cost first falls to TARGET;
- smoothness: the standard deviation of the epoch-to-epoch change of the training cost over the
  second half of training, and the fraction of epochs at which the cost went up.

- the gradient norms ‖∂J/∂W[1]‖ and ‖∂J/∂W[L]‖ of the full training cost (all m examples) at
  the parameters of each epoch's end (``train.epoch_gradients=full``): the same quantity for
  every variant, unlike the mean of per-update mini-batch norms, which grows with the noise.

Seconds are measured, so they change from one run of the study to the next: the wall-clock
columns go to report/timing.md, the rest (deterministic for a seed) to report/analysis.md.
Writes those two, report/cost_curves.png (its seconds panel is time-based) and
report/full_gradients.png.

    python experiments/large_training_set/analyze.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
_SPEC = importlib.util.spec_from_file_location(
    "gradient_descent_analyze", HERE.parent / "gradient_descent" / "analyze.py")
gradient_descent = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gradient_descent)   # the measures, tables and figures are its own

if __name__ == "__main__":
    gradient_descent.main(HERE, "Study 15, large_training_set", __doc__)
