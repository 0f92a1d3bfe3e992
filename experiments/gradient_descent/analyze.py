"""Study 4 (gradient_descent): cost against epochs and against seconds, at an equal number of
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

    python experiments/gradient_descent/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (depth, first_step, fmt, last, load_sweep, md_table, mean_std, parse_args,  # noqa: E402
                      pyplot, reached, save_figure, wide, write_markdown)

TARGET = 0.3


def variant(optimizer: str, batch_size: str) -> str:
    return {"batch": "batch (s = m)", "sgd": "sgd (s = 1)"}.get(optimizer, f"minibatch s = {batch_size}")


def sort_key(name: str) -> tuple:
    return (0, 0) if name.startswith("batch") else (2, 0) if name.startswith("sgd") else \
        (1, -int(name.rsplit(" ", 1)[-1]))


def spread(changes: np.ndarray) -> float:
    """Standard deviation of the epoch-to-epoch changes (NaN with fewer than two)."""
    return float(np.std(changes, ddof=1)) if len(changes) > 1 else float("nan")


def main(here: Path = HERE, study: str = "Study 4, gradient_descent",
         doc: str = __doc__) -> None:
    """The analysis of the study in folder ``here`` (its store, its report/), titled ``study``:
    gradient_descent's own, and large_training_set's (the same measures at m = 12,000)."""
    args = parse_args(here, doc.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    L = int(probe["params.hidden_sizes"].map(depth).max())
    runs, hist = load_sweep(args.tracking_uri, ["train/cost", "time/elapsed", "val/accuracy",
                                                "grad_norm/W1", f"grad_norm/W{L}"])
    runs["variant"] = [variant(o, b) for o, b in zip(runs["params.optimizer"], runs["params.batch_size"])]
    cost, elapsed = wide(hist, "train/cost"), wide(hist, "time/elapsed")
    total = last(hist, "time/elapsed")
    T = float(total.min())
    epochs = int(cost.index.max())
    at_T = {r: float(cost[r][elapsed[r] <= T].dropna().iloc[-1]) if (elapsed[r] <= T).any() else np.nan
            for r in cost.columns}
    hit = first_step(hist, "train/cost", lambda v: v <= TARGET)
    hit_seconds = {r: float(elapsed[r].get(e, np.nan)) if np.isfinite(e) else np.nan
                   for r, e in hit.items()}
    half = cost.index > epochs // 2
    rough = {r: spread(np.diff(cost.loc[half, r].dropna().to_numpy())) for r in cost.columns}
    rises = {r: float((np.diff(cost[r].dropna().to_numpy()) > 0).mean()) for r in cost.columns}

    gw = {l: wide(hist, f"grad_norm/W{l}") for l in (1, L)}

    rows, timing = [], []
    names = sorted(set(runs["variant"]), key=sort_key)
    for name in names:
        ids = list(runs.loc[runs["variant"] == name, "run_id"])
        rows.append([name, mean_std(cost[ids].ffill().iloc[-1]), reached(hit.reindex(ids)),
                     mean_std(rough[i] for i in ids), mean_std(rises[i] for i in ids),
                     mean_std(gw[1][ids].ffill().iloc[-1]), mean_std(gw[L][ids].ffill().iloc[-1])])
        timing.append([name, mean_std(total.reindex(ids) / epochs * 1000),
                       mean_std(total.reindex(ids)), mean_std(at_T[i] for i in ids),
                       reached(hit_seconds[i] for i in ids)])

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for i, name in enumerate(names):
        for j, r in enumerate(runs.loc[runs["variant"] == name, "run_id"]):
            axes[0].plot(cost.index, cost[r], color=f"C{i}", lw=0.8, label=name if j == 0 else None)
            axes[1].plot(elapsed[r], cost[r], color=f"C{i}", lw=0.8)
    axes[1].axvline(T, color="gray", ls=":", lw=1)
    axes[1].set_xscale("log")
    axes[0].set(xlabel="epoch", ylabel="training cost", yscale="log", title="cost against epochs")
    axes[1].set(xlabel="seconds (time/elapsed, log scale)", title=f"cost against seconds (T = dotted line)")
    axes[0].legend(fontsize=8)
    save_figure(fig, args.output / "cost_curves.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, l in zip(axes, (1, L)):
        for i, name in enumerate(names):
            for j, r in enumerate(runs.loc[runs["variant"] == name, "run_id"]):
                ax.semilogy(gw[l].index, gw[l][r], color=f"C{i}", lw=0.8, label=name if j == 0 else None)
        ax.set(xlabel="epoch (0 = before any update)", title=f"‖∂J/∂W[{l}]‖ of the full training "
               "cost, at the epoch's end")
    axes[0].set_ylabel("gradient norm (all m examples)")
    axes[0].legend(fontsize=8)
    save_figure(fig, args.output / "full_gradients.png")

    write_markdown(args.output, f"{study}: analysis", [
        f"{len(runs)} runs of {epochs} epochs. Target: training cost ≤ {TARGET}. Smoothness over "
        f"epochs {epochs // 2 + 1}–{epochs}. Gradient norms: of the full training cost at the "
        "last epoch's end, the same quantity for every variant. Mean ± std over seeds. The "
        "wall-clock numbers are in [timing.md](timing.md).",
        md_table(["variant", f"cost at epoch {epochs}", f"epochs to cost ≤ {TARGET}",
                  "std of Δcost per epoch (2nd half)", "fraction of epochs where the cost rose",
                  f"‖∂J/∂W[1]‖, epoch {epochs}", f"‖∂J/∂W[{L}]‖, epoch {epochs}"], rows),
        "![training cost against epochs and against seconds](cost_curves.png)",
        "![full-gradient norms of the first and last layer against epochs](full_gradients.png)",
    ])
    write_markdown(args.output, f"{study}: wall clock", [
        f"Measured seconds (time/elapsed), so these change from one run of the study to the next. "
        f"Equal wall clock: T = {fmt(T)} s, the shortest total time of any run. The epochs "
        "include the extra full-gradient pass of train.epoch_gradients=full, the same for "
        "every variant. Mean ± std over seeds.",
        md_table(["variant", "ms per epoch", "seconds in all", f"cost at T = {fmt(T)} s",
                  f"seconds to cost ≤ {TARGET}"], timing),
    ], name="timing.md")


if __name__ == "__main__":
    main()
