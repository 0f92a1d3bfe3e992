"""Study 7 (learning_rate): what too large and too small a learning rate do to the cost J, per
hidden activation.

Per activation x α, over seeds: the outcomes (how many runs diverged, and at which epoch), the
training cost J at step 0 (before any update) and after the first update, how many runs had J
rise at the first update, the share of epochs at which J rose, the epochs to J ≤ TARGET, and J
and the validation R² at the last epoch. Batch gradient descent: each epoch is one exact step,
so a rise of J is the step's, not the noise of a mini-batch. The last-epoch columns are over
the runs with a result: not diverged, and J and R² within ±OVERFLOW (ffexp.report.stats: a
run that ends at J = 1e262 has overflowed, whether or not the engine stopped it). Writes
report/analysis.md and report/cost_curves.png (J against epochs, one panel per activation).

    python experiments/learning_rate/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ffexp.report.stats import OVERFLOW

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, first_step, fmt, last, load_sweep, md_table, mean_std,  # noqa: E402
                      outcomes, param, parse_args, pyplot, reached, save_figure, wide,
                      write_markdown)

ACTIVATIONS = ("sigmoid", "tanh", "relu")
#: a training cost (½ squared error on standardized targets: J(0) ≈ 0.5) that counts as learned
TARGET = 0.2
#: the top of the plots' cost axis (diverging runs go far beyond it)
YMAX = 1e4


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    runs, hist = load_sweep(args.tracking_uri, ["train/cost", "val/r2"] +
                            [f"act_dead/{l}" for l in (1, 2)])
    runs["lr"] = param(runs, "lr", "optimizer.lr").astype(float)
    cost = wide(hist, "train/cost")
    j0, j1 = at_step(hist, "train/cost", 0), at_step(hist, "train/cost", 1)
    hit = first_step(hist, "train/cost", lambda v: v <= TARGET)
    final_cost, final_r2 = last(hist, "train/cost"), last(hist, "val/r2")
    dead = (last(hist, "act_dead/1") + last(hist, "act_dead/2")) / 2

    def rose(run_id: str) -> float:
        c = cost[run_id].dropna().to_numpy()
        return float(np.mean(np.diff(c) > 0)) if len(c) > 1 else float("nan")

    rows = []
    for act in ACTIVATIONS:
        for lr in sorted(set(runs["lr"])):
            sel = runs[(runs["params.activation"] == act) & (runs["lr"] == lr)]
            if not len(sel):
                continue
            ids = list(sel["run_id"])
            ok = [i for i in sel[sel["outcome"] != "diverged"]["run_id"]   # trained to the end,
                  if abs(final_cost.get(i, np.inf)) <= OVERFLOW                 # and not overflowed
                  and abs(final_r2.get(i, np.inf)) <= OVERFLOW]
            pairs = [(j0[i], j1[i]) for i in ids if i in j0 and i in j1]
            up = f"{sum(b > a for a, b in pairs)} of {len(pairs)}" if pairs else "—"
            rows.append([act, f"{lr:g}", outcomes(sel), mean_std(j0.reindex(ids)),
                         mean_std(j1.reindex(ids)), up, mean_std(100 * rose(i) for i in ids),
                         reached(hit.reindex(ids)), f"{len(ok)} of {len(ids)}",
                         mean_std(final_cost.reindex(ok)),
                         mean_std(final_r2.reindex(ok)),
                         mean_std(100 * dead.reindex(ok)) if act == "relu" else "—"])

    plt = pyplot()
    fig, axes = plt.subplots(1, len(ACTIVATIONS), figsize=(15, 4.3), sharey=True)
    lrs = sorted(set(runs["lr"]))
    for ax, act in zip(axes, ACTIVATIONS):
        for k, lr in enumerate(lrs):
            sel = runs[(runs["params.activation"] == act) & (runs["lr"] == lr)]
            for n, i in enumerate(sel["run_id"]):
                c = cost[i].dropna()
                ax.semilogy(c.index, c.to_numpy(), color=f"C{k}", lw=1,
                            label=f"α = {lr:g}" if n == 0 else None)
                if sel.set_index("run_id").loc[i, "outcome"] == "diverged":
                    ax.plot(c.index[-1], min(c.iloc[-1], YMAX), "x", color=f"C{k}", ms=9, mew=2)
        ax.axhline(TARGET, color="gray", lw=0.8, ls=":")
        ax.set_ylim(0.02, YMAX)
        ax.set_title(f"{act}: training cost J (batch GD)")
        ax.set_xlabel("epoch (0 = before any update)")
    axes[0].set_ylabel("J, full training set")
    axes[0].legend(fontsize=8)
    save_figure(fig, args.output / "cost_curves.png")

    write_markdown(args.output, "Study 7, learning_rate: analysis", [
        f"{len(runs)} runs, batch gradient descent (one update per epoch). J: the training cost "
        "on the whole training set; step 0 is before any update, step 1 after the first. "
        f"'J rose, % of epochs': epochs whose J is above the previous epoch's (finite epochs). "
        f"Epochs to J ≤ {fmt(TARGET)}: mean over the runs that got there. J and validation R² "
        f"at the last epoch, over the runs with a result (not diverged, and both within "
        f"±{OVERFLOW:g}: beyond, the value has overflowed and is no result, as in ffexp-report); "
        "dead: % of the ReLU units with z ≤ 0 for every training example at the last epoch. "
        "Mean ± std over seeds.",
        md_table(["activation", "α", "outcomes", "J at step 0", "J at step 1",
                  "J rose at the first update", "J rose, % of epochs", f"epochs to J ≤ {fmt(TARGET)}",
                  "runs with a result", "J, last epoch (with a result)",
                  "val R², last epoch (with a result)",
                  "dead units %, last epoch"], rows),
        "![training cost against epochs per α; × a diverged run's last finite epoch, drawn at the top when beyond it](cost_curves.png)",
    ])


if __name__ == "__main__":
    main()
