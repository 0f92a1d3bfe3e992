"""Study 2 (vanishing_gradients): the gradient ratios between the first and the last hidden
layer at initialization, which ffexp-report does not compute, with the accuracy each net reached.

Per activation x start x depth, mean ± std over seeds of

- ‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖ at step 0 (the back-propagated error of the first hidden layer
  against the last hidden layer's: the article's chain product over L-2 layers, without the
  1-unit output layer whose error is of another size),
- ‖∂J/∂W[1]‖ / ‖∂J/∂W[L-1]‖ at step 0 (what the update of each layer gets),
- the per-layer factor of the error ratio, (ratio)^(1/(L-2)),
- validation accuracy at epoch 10 (how fast) and at the last epoch.

Step 0 is before any update: the norms are those of the full training cost at the initial
parameters. Writes report/analysis.md and report/ratios.png.

    python experiments/vanishing_gradients/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, geomean, last, load_sweep, md_table, mean_std,  # noqa: E402
                      outcomes, param, parse_args, pyplot, save_figure, write_markdown)

ACTIVATIONS = ("sigmoid", "tanh", "relu")
STARTS = ("xavier", "he", "standard", "standard, b = 2")
EARLY = 10


def start(init: str, bias: str) -> str:
    return f"{init}, b = {float(bias):g}" if bias and float(bias) != 0 else init


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    max_L = int(probe["params.hidden_sizes"].map(depth).max())
    keys = ["val/accuracy"] + [f"grad_norm/{t}{l}" for t in "ZW" for l in range(1, max_L)]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["L"] = runs["params.hidden_sizes"].map(depth)
    runs["start"] = [start(i, b) for i, b in zip(runs["params.init"], param(runs, "init.bias"))]
    final, early = last(hist, "val/accuracy"), at_step(hist, "val/accuracy", EARLY)

    ratio = {}
    for t in "ZW":
        first = at_step(hist, f"grad_norm/{t}1", 0)
        ratio[t] = {r.run_id: first.get(r.run_id, np.nan) /
                    at_step(hist, f"grad_norm/{t}{r.L - 1}", 0).get(r.run_id, np.nan)
                    for r in runs.itertuples()}
    rows, curves = [], {}
    rank = {a: i for i, a in enumerate(ACTIVATIONS)}
    cells = runs.groupby(["params.activation", "start", "L"])
    for (act, st, L), cell in sorted(cells, key=lambda kv: (rank.get(kv[0][0], 99), STARTS.index(
            kv[0][1]) if kv[0][1] in STARTS else 99, kv[0][2])):
        ids = list(cell["run_id"])
        z = [ratio["Z"][i] for i in ids]
        rows.append([act, st, str(L - 1), mean_std(z), mean_std(ratio["W"][i] for i in ids),
                     mean_std(r ** (1 / (L - 2)) if np.isfinite(r) and r > 0 else np.nan for r in z),
                     mean_std(early.reindex(ids)), mean_std(final.reindex(ids)), outcomes(cell)])
        for t in "ZW":
            curves.setdefault((act, st, t), []).append((L - 1, geomean(ratio[t][i] for i in ids)))

    plt = pyplot()
    fig, axes = plt.subplots(2, len(ACTIVATIONS), figsize=(16, 7.5), sharey="row", sharex=True)
    for col, act in enumerate(ACTIVATIONS):
        for row, (t, what) in enumerate((("Z", "‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖"),
                                         ("W", "‖∂J/∂W[1]‖ / ‖∂J/∂W[L-1]‖"))):
            ax = axes[row][col]
            for k, st in enumerate(STARTS):
                if (act, st, t) in curves:
                    xs, ys = zip(*curves[act, st, t])
                    ax.semilogy(xs, ys, "o-", color=f"C{k}", label=st)
            ax.axhline(1.0, color="gray", lw=0.8, ls=":")
            ax.set_title(f"{act}: {what}, step 0", fontsize=9)
            if row == 1:
                ax.set_xlabel("hidden layers (L - 1)")
    for row in range(2):
        axes[row][0].set_ylabel("ratio (geometric mean over seeds)")
    axes[0][0].legend(fontsize=8)
    save_figure(fig, args.output / "ratios.png")

    write_markdown(args.output, "Study 2, vanishing_gradients: analysis", [
        f"{len(runs)} runs. Ratios at step 0 (before any update; norms of the full training "
        "cost's gradient), between the first and the last hidden layer (L-1): below 1, the "
        "first hidden layer gets less than the last. Per-layer factor: the error ratio to the "
        f"power 1/(L-2). Accuracy: validation, at epoch {EARLY} and at the last epoch. Mean ± "
        "std over seeds.",
        md_table(["activation", "start", "hidden layers", "‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖",
                  "‖∂J/∂W[1]‖ / ‖∂J/∂W[L-1]‖", "per-layer factor", f"val accuracy, epoch {EARLY}",
                  "val accuracy, last epoch", "outcomes"], rows),
        "![step-0 gradient ratios against depth](ratios.png)",
    ])


if __name__ == "__main__":
    main()
