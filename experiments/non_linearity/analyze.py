"""Study 1 (non_linearity): the numbers behind the verdict that ffexp-report does not show.

- final validation accuracy per dataset x activation x depth (mean ± std over seeds), side by
  side so that "linear = the best linear classifier" reads off one table;
- for the step function: the largest ‖∂J/∂W[l]‖ of any epoch and the change of ‖W[l]‖ between
  the first and the last epoch, per layer — zero for every layer before the output.

    python experiments/non_linearity/analyze.py   # after the sweep; writes report/analysis.md
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import depth, fmt, last, load_sweep, md_table, mean_std, parse_args, wide, write_markdown  # noqa: E402

ACTIVATIONS = ("linear", "relu", "step")
MAX_L = 4


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    keys = ["val/accuracy"] + [f"{k}{l}" for k in ("grad_norm/W", "weight_norm/W")
                               for l in range(1, MAX_L + 1)]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["L"] = runs["params.hidden_sizes"].map(depth)
    acc = last(hist, "val/accuracy")

    rows = []
    for (dataset, L), cell in runs.groupby(["params.dataset", "L"], sort=True):
        row = [dataset, str(L - 1)]
        for act in ACTIVATIONS:
            ids = cell.loc[cell["params.activation"] == act, "run_id"]
            row.append(mean_std(acc.reindex(ids)))
        rows.append(row)
    accuracy = md_table(["dataset", "hidden layers", *ACTIVATIONS], rows)

    rows = []
    for act in ("step", "relu"):
        sel = runs[runs["params.activation"] == act]
        for L in sorted(set(sel["L"])):
            ids = sel.loc[sel["L"] == L, "run_id"]
            for l in range(1, L + 1):
                g = wide(hist, f"grad_norm/W{l}")[list(ids)]
                w = wide(hist, f"weight_norm/W{l}")[list(ids)]
                change = (w.ffill().iloc[-1] - w.iloc[0]).abs() / w.iloc[0]
                rows.append([act, str(L - 1), f"{l}{' (output)' if l == L else ''}",
                             fmt(float(g.max().max())), fmt(float(change.max()))])
    step = md_table(["activation", "hidden layers", "layer l", "max ‖∂J/∂W[l]‖ over epochs and runs",
                     "max relative change of ‖W[l]‖, step 0 → last epoch"], rows)

    write_markdown(args.output, "Study 1, non_linearity: analysis", [
        f"{len(runs)} runs; outcomes: " + ", ".join(
            f"{k} {v}" for k, v in sorted(runs["outcome"].value_counts().items())) + ".",
        "## Final validation accuracy (mean ± std over seeds)\n\n" + accuracy,
        "## Does anything change when the hidden activation is the step function?\n\n"
        "‖∂J/∂W[l]‖: the norm of the full training cost's gradient, at step 0 and at every "
        "epoch's end (train.epoch_gradients=full); the change of ‖W[l]‖ is measured from step 0 "
        "(the initial weights, before any update) to the last epoch. relu for comparison.\n\n"
        + step,
    ])


if __name__ == "__main__":
    main()
