"""Study 11 (biases): initial biases of zero against a small constant, on a multi-label task.

Per activation x initial bias b, over seeds: the outcomes, the dead units (z ≤ 0 for every
example; ReLU only) and ‖∂J/∂W[1]‖ at step 0 (before any update), the validation F1 (micro) at
epoch 10 and at the last epoch, the final validation Hamming loss, and the final F1 minus that
of b = 0 with the same seed (paired: same weights, same shuffling, only b differs). Writes
report/analysis.md and report/f1_curves.png.

    python experiments/biases/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, last, load_sweep, md_table, mean_curve, mean_std,  # noqa: E402
                      outcomes, param, parse_args, pyplot, save_figure, wide, write_markdown)

ACTIVATIONS = ("relu", "tanh")
EARLY = 10


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    L = int(probe["params.hidden_sizes"].map(depth).max())
    keys = ["val/f1_micro", "val/hamming_loss", "grad_norm/W1"] + [f"act_dead/{l}" for l in range(1, L)]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["bias"] = param(runs, "init.bias").astype(float)
    runs["seed"] = param(runs, "seed")
    dead = sum(wide(hist, f"act_dead/{l}") for l in range(1, L)) / (L - 1)
    dead0 = dead.reindex([0]).iloc[0]
    w1, early = at_step(hist, "grad_norm/W1", 0), at_step(hist, "val/f1_micro", EARLY)
    final, hamming = last(hist, "val/f1_micro"), last(hist, "val/hamming_loss")
    zero = runs[runs["bias"] == 0].set_index(["params.activation", "seed"])["run_id"]

    rows, cells = [], []
    for act in ACTIVATIONS:
        for b in sorted(set(runs["bias"])):
            sel = runs[(runs["params.activation"] == act) & (runs["bias"] == b)]
            if not len(sel):
                continue
            ids = list(sel["run_id"])
            cells.append((act, b, ids))
            diff = [final.get(i, np.nan) - final.get(zero.get((act, s)), np.nan)
                    for i, s in zip(ids, sel["seed"])]
            rows.append([act, f"{b:g}", outcomes(sel),
                         mean_std(100 * dead0.reindex(ids)) if act == "relu" else "—",
                         mean_std(w1.reindex(ids)), mean_std(early.reindex(ids)),
                         mean_std(final.reindex(ids)), mean_std(hamming.reindex(ids)),
                         "—" if b == 0 else mean_std(diff)])

    plt = pyplot()
    fig, axes = plt.subplots(1, len(ACTIVATIONS), figsize=(12, 4.3), sharey=True)
    biases = sorted(set(runs["bias"]))
    for act, b, ids in cells:
        c = mean_curve(hist, "val/f1_micro", ids)
        axes[ACTIVATIONS.index(act)].plot(c.index, c.to_numpy(), color=f"C{biases.index(b)}",
                                          label=f"b = {b:g}")
    for ax, act in zip(axes, ACTIVATIONS):
        ax.set_title(f"{act}: validation F1 (micro), mean over seeds")
        ax.set_xlabel("epoch (0 = before any update)")
    axes[0].legend(fontsize=8)
    save_figure(fig, args.output / "f1_curves.png")

    write_markdown(args.output, "Study 11, biases: analysis", [
        f"{len(runs)} runs, multi-label (sigmoid outputs, binary cross-entropy), L = {L}. Every "
        "hidden and output bias starts at b. Dead: % of hidden units with z ≤ 0 for every "
        "training example at step 0 (before any update), mean over the hidden layers; "
        "‖∂J/∂W[1]‖ of the full training cost at step 0. Δ F1: final validation F1 minus that "
        "of b = 0 with the same seed. Mean ± std over seeds.",
        md_table(["activation", "b", "outcomes", "dead %, step 0", "‖∂J/∂W[1]‖, step 0",
                  f"val F1, epoch {EARLY}", "final val F1", "final val Hamming loss",
                  "Δ F1 vs b = 0"], rows),
        "![validation F1 against epochs per initial bias](f1_curves.png)",
    ])


if __name__ == "__main__":
    main()
