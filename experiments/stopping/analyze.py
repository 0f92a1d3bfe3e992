"""Study 9 (stopping): a tolerance on the change of the cost against one on the change of the
parameters: the epochs each saves and the accuracy each loses, against training to the budget.

The run without a tolerance (``train.tol=null``) of the same seed is the reference: every other
run follows it exactly until it stops (same seed, same data, same updates), so the accuracy lost
is the reference's final validation accuracy minus the stopped run's. Per criterion x tolerance,
over seeds: the outcomes, the epoch it stopped at, the epochs saved, the final validation
accuracy and training cost, and the accuracy lost. Writes report/analysis.md and
report/stops.png (the reference's validation accuracy against epochs, with the stops marked).

    python experiments/stopping/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (last, load_sweep, md_table, mean_std, outcomes, param,  # noqa: E402
                      parse_args, pyplot, save_figure, wide, write_markdown)


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    runs, hist = load_sweep(args.tracking_uri, ["val/accuracy", "train/cost"])
    runs["tol"] = param(runs, "train.tol", "tol")
    runs["on"] = np.where(runs["tol"] == "null", "none", param(runs, "train.tol_on", "tol_on"))
    runs["seed"] = param(runs, "seed")
    acc = wide(hist, "val/accuracy")
    stop = acc.apply(lambda c: c.last_valid_index())
    final, cost = last(hist, "val/accuracy"), last(hist, "train/cost")
    ref = runs[runs["on"] == "none"].set_index("seed")["run_id"]
    budget = int(stop.reindex(ref).max())

    rows, marks = [], []
    order = {"none": 0, "cost": 1, "params": 2}
    cells = runs.groupby(["on", "tol"])
    for (on, tol), sel in sorted(cells, key=lambda kv: (order.get(kv[0][0], 9), -float(
            kv[0][1]) if kv[0][1] != "null" else 0)):
        ids = list(sel["run_id"])
        refs = [ref.get(s) for s in sel["seed"]]
        lost = [final.get(r, np.nan) - final.get(i, np.nan) for r, i in zip(refs, ids)]
        rows.append([on, "—" if tol == "null" else tol, outcomes(sel), mean_std(stop.reindex(ids)),
                     mean_std(budget - stop.reindex(ids)), mean_std(final.reindex(ids)),
                     mean_std(cost.reindex(ids)), mean_std(lost)])
        if on != "none":
            marks.append((on, tol, list(zip(refs, stop.reindex(ids)))))

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for n, (seed, r) in enumerate(sorted(ref.items())):
        c = acc[r].dropna()
        ax.plot(c.index, c.to_numpy(), color="gray", lw=1, label="no tolerance" if n == 0 else None)
    tols = sorted({t for _, t, _ in marks}, key=float, reverse=True)
    for on, tol, points in marks:
        for n, (r, epoch) in enumerate(points):
            ax.plot(epoch, acc[r].get(epoch, np.nan), "o" if on == "cost" else "s", mfc="none",
                    color=f"C{tols.index(tol)}", ms=8 if on == "cost" else 11,
                    label=f"stop: tol on {on} = {tol}" if n == 0 else None)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("epoch (0 = before any update; symlog)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("where each tolerance stops, on the runs trained to the budget")
    ax.legend(fontsize=8)
    save_figure(fig, args.output / "stops.png")

    write_markdown(args.output, "Study 9, stopping: analysis", [
        f"{len(runs)} runs, batch gradient descent, budget {budget} epochs. 'cost': stop once "
        "|J(epoch) − J(epoch − 1)| < tol; 'params': once the largest change of a weight or bias in "
        "the epoch is < tol (ffexp's train.tol_on). Epochs saved: the budget minus the last epoch "
        "run. Accuracy lost: the final validation accuracy of the same seed trained to the budget "
        "minus this run's. Mean ± std over seeds.",
        md_table(["criterion", "tol", "outcomes", "stopped at epoch", "epochs saved",
                  "final val accuracy", "final training cost", "accuracy lost"], rows),
        "![the stops on the validation-accuracy curves of the runs without a tolerance](stops.png)",
    ])


if __name__ == "__main__":
    main()
