"""Study 5 (signal_propagation), the training part: does the 30-layer ReLU net stall with Xavier
and converge with He, as He et al. (2015) report?

Per init, over seeds: the training cost at a few epochs, the first epoch at which the validation
accuracy reaches TARGET, the final validation accuracy, and the ratio ‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L]‖
of the full training cost's gradient at step 0 (before any update) and at step 1 (after the
first epoch's updates). Writes report/analysis.md (measure.py covers initialization).

    python experiments/signal_propagation/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, first_step, last, load_sweep, md_table, mean_std,  # noqa: E402
                      parse_args, reached, write_markdown)

TARGET = 0.9
EPOCHS = (1, 10, 50)


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    L = int(probe["params.hidden_sizes"].map(depth).max())
    keys = ["train/cost", "val/accuracy", "grad_norm/Z1", f"grad_norm/Z{L}"]
    runs, hist = load_sweep(args.tracking_uri, keys)
    final_cost, final_acc = last(hist, "train/cost"), last(hist, "val/accuracy")
    hit = first_step(hist, "val/accuracy", lambda v: v >= TARGET)
    ratio0 = at_step(hist, "grad_norm/Z1", 0) / at_step(hist, f"grad_norm/Z{L}", 0)
    ratio1 = at_step(hist, "grad_norm/Z1", 1) / at_step(hist, f"grad_norm/Z{L}", 1)
    epochs = int(hist["step"].max())
    shown = [e for e in EPOCHS if e < epochs]
    rows = []
    for init in sorted(set(runs["params.init"]), key=lambda i: (i != "xavier", i)):
        sel = runs[runs["params.init"] == init]
        ids = list(sel["run_id"])
        rows.append([init, ", ".join(f"{k} {v}" for k, v in sorted(sel["outcome"].value_counts().items())),
                     *[mean_std(at_step(hist, "train/cost", e).reindex(ids)) for e in shown],
                     mean_std(final_cost.reindex(ids)), reached(hit.reindex(ids)),
                     mean_std(final_acc.reindex(ids)), mean_std(ratio0.reindex(ids)),
                     mean_std(ratio1.reindex(ids))])
    write_markdown(args.output, "Study 5, signal_propagation (training): analysis", [
        f"{len(runs)} runs: ReLU, {L - 1} hidden layers, {epochs} epochs. Mean ± std over seeds "
        f"(ln 2 = {np.log(2):.4f} is the cost of always answering 1/2).",
        md_table(["init", "outcomes", *[f"train cost, epoch {e}" for e in shown],
                  f"train cost, epoch {epochs}", f"epochs to val accuracy ≥ {TARGET}",
                  "final val accuracy", f"‖∂J/∂Z[1]‖ / ‖∂J/∂Z[{L}]‖, step 0 (before any update)",
                  f"‖∂J/∂Z[1]‖ / ‖∂J/∂Z[{L}]‖, after epoch 1"], rows),
        "The measurements at initialization are in [../measure.md](../measure.md).",
    ])


if __name__ == "__main__":
    main()
