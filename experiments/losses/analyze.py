"""Study 6 (losses): how fast the quadratic cost and cross-entropy reach a target accuracy, with
a normal and with a saturated start, for a sigmoid (binary) and a softmax (multiclass) output.

The saturated start multiplies only the output layer's weights W[L] by ``init.output_gain``
after a He init, so that z[L] is large and g′(z[L]) small while the hidden layers start as in
the normal start. Per dataset x start x loss x α, over seeds: ‖∂J/∂Z[L]‖ at step 0 (before any
update: the output error, which carries g′ for the quadratic cost and not for cross-entropy),
the ratio ‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖ between the hidden layers at step 0 (the chain product
of the hidden layers, which the cost does not enter: the article's "it does not help the hidden
layers"), the first epoch at which the validation accuracy reaches each target, the validation accuracy
at epoch 10 and at the end, and its mean over all epochs (the area under the learning curve,
which rewards speed as well as the end point). Two comparisons: every cost at the shared α, and
every cost at its own best α of the grid (the one with the highest mean over epochs, mean over
seeds; chosen on the validation set, as is what is reported, so equally optimistic for both
costs). Writes report/analysis.md and report/accuracy_curves.png (each cost at its best α).

    python experiments/losses/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, first_step, last, load_sweep, md_table, mean_std,  # noqa: E402
                      param, parse_args, pyplot, reached, save_figure, wide, write_markdown)

TARGETS = (0.85, 0.95)
EARLY = 10


SHARED_LR = 0.1


def start(gain: str) -> str:
    return f"saturated (W[L] × {float(gain):g})" if gain and float(gain) != 1 else "normal"


def loss_name(loss: str, task: str) -> str:
    """The cost the run used (``auto`` resolves to cross-entropy for classification)."""
    if loss != "auto":
        return loss
    return {"binary": "bce", "multiclass": "cce"}.get(task, "auto")


def cell_row(cell: tuple, ids: list, t: dict) -> list:
    """One table row: the cell, then its numbers over the runs ``ids``."""
    return [*cell, mean_std(t["out_err"].get(i) for i in ids), mean_std(t["hidden"][i] for i in ids),
            *[reached(h.reindex(ids)) for h in t["hits"]], mean_std(t["early"].reindex(ids)),
            mean_std(t["final"].reindex(ids)), mean_std(t["area"].reindex(ids))]


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    Ls = sorted(set(probe["params.hidden_sizes"].map(depth)))
    keys = ["val/accuracy", "grad_norm/Z1"] + [f"grad_norm/Z{L}" for L in Ls] + [
        f"grad_norm/Z{L - 1}" for L in Ls]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["L"] = runs["params.hidden_sizes"].map(depth)
    runs["loss"] = [loss_name(l, t) for l, t in zip(runs["params.loss"], runs["params.task"])]
    runs["start"] = [start(g) for g in param(runs, "init.output_gain")]
    runs["lr"] = param(runs, "lr", "optimizer.lr").astype(float)
    acc = wide(hist, "val/accuracy")
    t = {"final": last(hist, "val/accuracy"), "early": at_step(hist, "val/accuracy", EARLY),
         "hits": [first_step(hist, "val/accuracy", lambda v, x=x: v >= x) for x in TARGETS],
         "area": acc.loc[acc.index >= 1].mean(),
         "out_err": {r.run_id: at_step(hist, f"grad_norm/Z{r.L}", 0).get(r.run_id)
                     for r in runs.itertuples()},
         "hidden": {r.run_id: at_step(hist, "grad_norm/Z1", 0).get(r.run_id, np.nan) /
                    at_step(hist, f"grad_norm/Z{r.L - 1}", 0).get(r.run_id, np.nan)
                    for r in runs.itertuples()}}

    shared, best, grid, groups = [], [], [], []
    for (dataset, start_, loss), sel in runs.groupby(["params.dataset", "start", "loss"], sort=True):
        by_lr = {lr: list(s["run_id"]) for lr, s in sel.groupby("lr")}
        score = {lr: float(t["area"].reindex(ids).mean()) for lr, ids in by_lr.items()}
        top = max(sorted(score), key=lambda lr: score[lr])
        grid.append([dataset, start_, loss, *[f"{score[lr]:.4f}" + (" ◀" if lr == top else "")
                                              for lr in sorted(score)]])
        if SHARED_LR in by_lr:
            shared.append(cell_row((dataset, start_, loss), by_lr[SHARED_LR], t))
        best.append(cell_row((dataset, start_, loss, f"{top:g}"), by_lr[top], t))
        groups.append(((dataset, start_, loss, top), by_lr[top]))
    lrs = sorted(set(runs["lr"]))

    plt = pyplot()
    datasets = sorted(set(runs["params.dataset"]))
    starts = sorted(set(runs["start"]))
    fig, axes = plt.subplots(len(datasets), len(starts), figsize=(5 * len(starts), 3.6 * len(datasets)),
                             sharex=True, sharey=True, squeeze=False)
    colors = {}
    for (dataset, start_, loss, lr), ids in groups:
        ax = axes[datasets.index(dataset)][starts.index(start_)]
        c = colors.setdefault(loss, f"C{len(colors)}")
        ax.plot(acc.index, acc[ids].mean(axis=1), color=c, label=f"{loss}, best α = {lr:g}")
        ax.fill_between(acc.index, acc[ids].min(axis=1), acc[ids].max(axis=1), color=c, alpha=0.2)
        ax.set_title(f"{dataset}, {start_} start, each cost at its best α", fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("epoch (0 = before any update)")
    for row in axes:
        row[0].set_ylabel("val accuracy (mean, min–max)")
        for ax in row:
            ax.legend(fontsize=8)
    save_figure(fig, args.output / "accuracy_curves.png")

    head = ["‖∂J/∂Z[L]‖, step 0", "‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖, step 0", *[f"epochs to val accuracy ≥ {x}" for x in TARGETS],
            f"val accuracy, epoch {EARLY}", "final val accuracy", "mean val accuracy over epochs"]
    write_markdown(args.output, "Study 6, losses: analysis", [
        f"{len(runs)} runs. mse: the quadratic cost; bce / cce: cross-entropy. Mean ± std over "
        "seeds; 'epochs to' counts only the runs that got there; 'mean over epochs': the "
        "validation accuracy averaged over epochs 1 to the last.",
        f"## At the shared α = {SHARED_LR:g}",
        md_table(["dataset", "start", "loss", *head], shared),
        "## Each cost at its own best α",
        "Mean validation accuracy over epochs per α (mean over seeds; ◀ the best):",
        md_table(["dataset", "start", "loss", *[f"α = {lr:g}" for lr in lrs]], grid),
        md_table(["dataset", "start", "loss", "best α", *head], best),
        "![validation accuracy against epochs, each cost at its best α](accuracy_curves.png)",
    ])


if __name__ == "__main__":
    main()
