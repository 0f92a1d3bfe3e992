"""Study 6 (losses): how fast the quadratic cost and cross-entropy reach a target accuracy, with
a normal and with a saturated start, for a sigmoid (binary) and a softmax (multiclass) output.

Per dataset x loss x init, over seeds: ‖∂J/∂Z[L]‖ at epoch 1 (the output error, which carries
g′ for the quadratic cost and not for cross-entropy), the first epoch at which the validation
accuracy reaches each target, the validation accuracy at epoch 10 and at the end. Writes
report/analysis.md and report/accuracy_curves.png.

    python experiments/losses/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, first_step, last, load_sweep, md_table, mean_std,  # noqa: E402
                      parse_args, pyplot, reached, save_figure, wide, write_markdown)

TARGETS = (0.85, 0.95)
EARLY = 10


def start(init: str, scale: str) -> str:
    return f"saturated (random {float(scale):g})" if init == "random" else f"normal ({init})"


def loss_name(loss: str, task: str) -> str:
    """The cost the run used (``auto`` resolves to cross-entropy for classification)."""
    if loss != "auto":
        return loss
    return {"binary": "bce", "multiclass": "cce"}.get(task, "auto")


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    Ls = sorted(set(probe["params.hidden_sizes"].map(depth)))
    keys = ["val/accuracy"] + [f"grad_norm/Z{L}" for L in Ls]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["L"] = runs["params.hidden_sizes"].map(depth)
    runs["loss"] = [loss_name(l, t) for l, t in zip(runs["params.loss"], runs["params.task"])]
    runs["start"] = [start(i, s) for i, s in zip(runs["params.init"], runs["params.init.scale"])]
    acc, final = wide(hist, "val/accuracy"), last(hist, "val/accuracy")
    early = at_step(hist, "val/accuracy", EARLY)
    hits = {t: first_step(hist, "val/accuracy", lambda v, t=t: v >= t) for t in TARGETS}
    out_err = {r.run_id: at_step(hist, f"grad_norm/Z{r.L}", 1).get(r.run_id) for r in runs.itertuples()}

    rows, groups = [], []
    for (dataset, start_, loss), sel in runs.groupby(["params.dataset", "start", "loss"], sort=True):
        ids = list(sel["run_id"])
        groups.append(((dataset, start_, loss), ids))
        rows.append([dataset, start_, loss, mean_std(out_err[i] for i in ids),
                     *[reached(hits[t].reindex(ids)) for t in TARGETS],
                     mean_std(early.reindex(ids)), mean_std(final.reindex(ids))])

    plt = pyplot()
    datasets = sorted(set(runs["params.dataset"]))
    starts = sorted(set(runs["start"]))
    fig, axes = plt.subplots(len(datasets), len(starts), figsize=(5 * len(starts), 3.6 * len(datasets)),
                             sharex=True, sharey=True, squeeze=False)
    colors = {}
    for (dataset, start_, loss), ids in groups:
        ax = axes[datasets.index(dataset)][starts.index(start_)]
        c = colors.setdefault(loss, f"C{len(colors)}")
        ax.plot(acc.index, acc[ids].mean(axis=1), color=c, label=loss)
        ax.fill_between(acc.index, acc[ids].min(axis=1), acc[ids].max(axis=1), color=c, alpha=0.2)
        ax.set_title(f"{dataset}, {start_} start", fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for row in axes:
        row[0].set_ylabel("val accuracy (mean, min–max)")
        row[0].legend(fontsize=8)
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    save_figure(fig, args.output / "accuracy_curves.png")

    write_markdown(args.output, "Study 6, losses: analysis", [
        f"{len(runs)} runs. mse: the quadratic cost; bce / cce: cross-entropy. Mean ± std over "
        "seeds; 'epochs to' counts only the runs that got there.",
        md_table(["dataset", "start", "loss", "‖∂J/∂Z[L]‖, epoch 1",
                  *[f"epochs to val accuracy ≥ {t}" for t in TARGETS],
                  f"val accuracy, epoch {EARLY}", "final val accuracy"], rows),
        "![validation accuracy against epochs](accuracy_curves.png)",
    ])


if __name__ == "__main__":
    main()
