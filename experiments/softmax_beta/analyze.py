"""Study 10 (softmax_beta): the softmax output softmax(β z[L]) from a soft (β small) to nearly a
hardmax (β large), and what β does to training.

β does not change which class is the largest, so the predictions at step 0 (before any update)
are the same for every β; it changes how sure the output is. Per β, over seeds: the outcomes,
the training cost J and ‖∂J/∂Z[L]‖ at step 0, J(0)/β (for β → ∞ the cross-entropy of a hardmax
grows like β·(z_max − z_y), so J(0)/β tends to a constant), the validation accuracy at step 0,
the epochs to 90 % validation accuracy, and the final accuracy and cost. Writes
report/analysis.md and report/curves.png (training cost and validation accuracy per β).

    python experiments/softmax_beta/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, first_step, last, load_sweep, md_table, mean_curve,  # noqa: E402
                      mean_std, outcomes, param, parse_args, pyplot, reached, save_figure,
                      write_markdown)

TARGET = 0.9


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    L = int(probe["params.hidden_sizes"].map(depth).max())
    runs, hist = load_sweep(args.tracking_uri, ["train/cost", "val/accuracy", f"grad_norm/Z{L}"])
    runs["beta"] = param(runs, "model.beta", "beta").astype(float)
    j0, z0 = at_step(hist, "train/cost", 0), at_step(hist, f"grad_norm/Z{L}", 0)
    acc0, hit = at_step(hist, "val/accuracy", 0), first_step(hist, "val/accuracy", lambda v: v >= TARGET)
    final, cost = last(hist, "val/accuracy"), last(hist, "train/cost")

    rows, betas = [], sorted(set(runs["beta"]))
    for beta in betas:
        sel = runs[runs["beta"] == beta]
        ids = list(sel["run_id"])
        rows.append([f"{beta:g}", outcomes(sel), mean_std(j0.reindex(ids)),
                     mean_std(j0.reindex(ids) / beta), mean_std(z0.reindex(ids)),
                     mean_std(acc0.reindex(ids)), reached(hit.reindex(ids)),
                     mean_std(final.reindex(ids)), mean_std(cost.reindex(ids))])

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    for k, beta in enumerate(betas):
        ids = list(runs[runs["beta"] == beta]["run_id"])
        for ax, key in zip(axes, ("train/cost", "val/accuracy")):
            c = mean_curve(hist, key, ids)
            ax.plot(c.index, c.to_numpy(), color=f"C{k}", label=f"β = {beta:g}")
    axes[0].set_yscale("log")
    axes[0].set_title("training cost J (cross-entropy), mean over seeds")
    axes[1].set_title("validation accuracy, mean over seeds")
    for ax in axes:
        ax.set_xlabel("epoch (0 = before any update)")
    axes[1].legend(fontsize=8)
    save_figure(fig, args.output / "curves.png")

    write_markdown(args.output, "Study 10, softmax_beta: analysis", [
        f"{len(runs)} runs, output ŷ = softmax(β z[{L}]), categorical cross-entropy. Step 0: "
        f"before any update, on the full training set (‖∂J/∂Z[{L}]‖: the output layer's error). "
        f"Epochs to {TARGET:.0%} validation accuracy: mean over the runs that got there. Mean ± "
        "std over seeds.",
        md_table(["β", "outcomes", "J, step 0", "J / β, step 0", f"‖∂J/∂Z[{L}]‖, step 0",
                  "val accuracy, step 0", f"epochs to {TARGET:.0%}", "final val accuracy",
                  "final training cost"], rows),
        "![training cost and validation accuracy per β](curves.png)",
    ])


if __name__ == "__main__":
    main()
