"""Study 14 (relu_speed): does a ReLU network learn faster than a tanh or a sigmoid one?

Per activation x init x α, over seeds: the outcomes, the training cost after epochs 1 and 5 and
at the end, the epochs until the validation accuracy first reaches TARGET, and the final
validation accuracy. "Faster" is read per activation at its best cell (the init and α whose
seeds reach TARGET in the fewest epochs, mean over the seeds that reach it; ties broken by the
final accuracy), so that no activation is judged at a learning rate or init that suits another.
Writes report/analysis.md and report/cost_curves.png (mean training cost of each activation's
best cell against epochs).

    python experiments/relu_speed/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, first_step, last, load_sweep, md_table, mean_curve, mean_std,  # noqa: E402
                      outcomes, param, parse_args, pyplot, reached, save_figure, write_markdown)

TARGET = 0.95
ACTIVATIONS = ("relu", "tanh", "sigmoid")
EPOCHS = (1, 5)


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    runs, hist = load_sweep(args.tracking_uri, ["train/cost", "val/accuracy"])
    runs["act"] = param(runs, "activation.name", "activation")
    runs["init_"] = param(runs, "init.name", "init")
    runs["lr"] = param(runs, "optimizer.lr", "lr").astype(float)
    final = last(hist, "val/accuracy")
    final_cost = last(hist, "train/cost")
    hit = first_step(hist, "val/accuracy", lambda v: v >= TARGET)
    epochs = int(hist["step"].max())

    rows, best = [], {}
    for act in ACTIVATIONS:
        for init in sorted(set(runs["init_"])):
            for lr in sorted(set(runs["lr"])):
                sel = runs[(runs["act"] == act) & (runs["init_"] == init) & (runs["lr"] == lr)]
                if not len(sel):
                    continue
                ids = list(sel["run_id"])
                h = hit.reindex(ids).to_numpy(dtype=float)
                n_hit = int(np.isfinite(h).sum())
                key = (-n_hit, float(np.nanmean(h)) if n_hit else np.inf,
                       -float(final.reindex(ids).mean()))
                if act not in best or key < best[act][0]:
                    best[act] = (key, f"{init}, α = {lr:g}", ids)
                rows.append([act, init, f"{lr:g}", outcomes(sel),
                             *[mean_std(at_step(hist, "train/cost", e).reindex(ids)) for e in EPOCHS],
                             mean_std(final_cost.reindex(ids)), reached(h),
                             mean_std(final.reindex(ids))])
    best_rows = [[act, cell, reached(hit.reindex(ids)),
                  *[mean_std(at_step(hist, "train/cost", e).reindex(ids)) for e in EPOCHS],
                  mean_std(final.reindex(ids))] for act, (_, cell, ids) in best.items()]

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (act, (_, cell, ids)) in enumerate(best.items()):
        curve = mean_curve(hist, "train/cost", ids)
        ax.plot(curve.index, curve.to_numpy(), color=f"C{i}", label=f"{act} ({cell})")
    ax.set(xlabel="epoch (0 = before any update)", ylabel="training cost (mean over seeds)",
           yscale="log", title="each activation at its best init and α")
    ax.legend(fontsize=8)
    save_figure(fig, args.output / "cost_curves.png")

    write_markdown(args.output, "Study 14, relu_speed: analysis", [
        f"{len(runs)} runs of {epochs} epochs (digits, 3 hidden layers of 64). Mean ± std over "
        f"seeds. Target: validation accuracy ≥ {TARGET}.",
        "Each activation at its best cell (fewest epochs to the target, over the seeds that "
        "reach it):",
        md_table(["activation", "best cell", f"epochs to val accuracy ≥ {TARGET}",
                  *[f"train cost, epoch {e}" for e in EPOCHS], "final val accuracy"], best_rows),
        "![mean training cost of each activation's best cell](cost_curves.png)",
        "Every cell:",
        md_table(["activation", "init", "α", "outcomes",
                  *[f"train cost, epoch {e}" for e in EPOCHS], f"train cost, epoch {epochs}",
                  f"epochs to val accuracy ≥ {TARGET}", "final val accuracy"], rows),
    ])


if __name__ == "__main__":
    main()
