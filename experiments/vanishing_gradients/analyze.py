"""Study 2 (vanishing_gradients): the first-epoch gradient ratios between the first and the last
layer, which ffexp-report does not compute, with the accuracy each net reached.

Per activation x init x depth, mean ± std over seeds of

- ‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L]‖ at epoch 1 (the back-propagated error: the article's chain product),
- ‖∂J/∂W[1]‖ / ‖∂J/∂W[L]‖ at epoch 1 (what the update of each layer actually gets),
- validation accuracy at epoch 10 (how fast) and at the last epoch.

The epoch-1 norms are the mean over the epoch's mini-batch updates (ffexp's default). Writes
report/analysis.md and report/ratios.png.

    python experiments/vanishing_gradients/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, last, load_sweep, md_table, mean_std, parse_args,  # noqa: E402
                      pyplot, save_figure, write_markdown)

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")
EARLY = 10


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    max_L = int(probe["params.hidden_sizes"].map(depth).max())
    keys = ["val/accuracy"] + [f"grad_norm/{t}{l}" for t in "ZW" for l in range(1, max_L + 1)]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["L"] = runs["params.hidden_sizes"].map(depth)
    final, early = last(hist, "val/accuracy"), at_step(hist, "val/accuracy", EARLY)

    ratio = {}
    for t in "ZW":
        first = at_step(hist, f"grad_norm/{t}1", 1)
        ratio[t] = {r.run_id: first.get(r.run_id, np.nan) /
                    at_step(hist, f"grad_norm/{t}{r.L}", 1).get(r.run_id, np.nan)
                    for r in runs.itertuples()}
    rows, curves = [], {}
    order = {a: i for i, a in enumerate(ACTIVATIONS)}
    cells = runs.groupby(["params.activation", "params.init", "L"])
    for (act, init, L), cell in sorted(cells, key=lambda kv: (order.get(kv[0][0], 99), *kv[0][1:])):
        ids = list(cell["run_id"])
        rows.append([act, init, str(L - 1), str(L), mean_std(ratio["Z"][i] for i in ids),
                     mean_std(ratio["W"][i] for i in ids), mean_std(early.reindex(ids)),
                     mean_std(final.reindex(ids)), ", ".join(
                         f"{k} {v}" for k, v in sorted(cell["outcome"].value_counts().items()))])
        for t in "ZW":
            curves.setdefault((act, init, t), []).append(
                (L - 1, float(np.exp(np.mean(np.log([ratio[t][i] for i in ids]))))))

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    styles = {"xavier": "o-", "he": "s--"}
    for ax, t, what in ((axes[0], "Z", "‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L]‖"), (axes[1], "W", "‖∂J/∂W[1]‖ / ‖∂J/∂W[L]‖")):
        for i, act in enumerate(ACTIVATIONS):
            for init in sorted({k[1] for k in curves}):
                if (act, init, t) in curves:
                    xs, ys = zip(*curves[act, init, t])
                    ax.semilogy(xs, ys, styles.get(init, "^:"), color=f"C{i}", label=f"{act}, {init}")
        ax.axhline(1.0, color="gray", lw=0.8, ls=":")
        ax.set_xlabel("hidden layers")
        ax.set_title(f"{what} at epoch 1")
    axes[0].set_ylabel("ratio (geometric mean over seeds)")
    axes[0].legend()
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    save_figure(fig, args.output / "ratios.png")

    write_markdown(args.output, "Study 2, vanishing_gradients: analysis", [
        f"{len(runs)} runs. Ratios at epoch 1 (mean over the epoch's mini-batches of each norm); "
        "below 1: the first layer gets less than the last. Accuracy: validation, at epoch "
        f"{EARLY} and at the last epoch. Mean ± std over seeds.",
        md_table(["activation", "init", "hidden layers", "L", "‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L]‖",
                  "‖∂J/∂W[1]‖ / ‖∂J/∂W[L]‖", f"val accuracy, epoch {EARLY}",
                  "val accuracy, last epoch", "outcomes"], rows),
        "![first-epoch gradient ratios against depth](ratios.png)",
    ])


if __name__ == "__main__":
    main()
