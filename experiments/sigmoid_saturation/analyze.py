"""Study 12 (sigmoid_saturation): Glorot & Bengio's Figure 2 at a small budget: the mean
activation of each sigmoid hidden layer over the epochs, standard init U(±1/√n) against Xavier.

ffexp's ``act_mean/<l>`` and ``act_std/<l>`` are the mean and standard deviation of A[l] over the
training set and the layer's units, measured at step 0 (before any update) and at every epoch's
end. Per init, over seeds: the top hidden layer's mean activation at step 0, its lowest value and
the epoch of it, its value at the last epoch, the share of its units saturated (outside
[0.01, 0.99]) at step 0 and at most, and the final validation accuracy. Writes
report/analysis.md and report/activations.png (each layer's mean ± std against epochs).

    python experiments/sigmoid_saturation/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, last, load_sweep, md_table, mean_curve, mean_std,  # noqa: E402
                      parse_args, pyplot, save_figure, wide, write_markdown)

INITS = ("standard", "xavier")


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    top = int(probe["params.hidden_sizes"].map(depth).max()) - 1
    keys = ["val/accuracy"] + [f"act_{s}/{l}" for s in ("mean", "std", "saturated")
                               for l in range(1, top + 1)]
    runs, hist = load_sweep(args.tracking_uri, keys)
    mean_top, sat_top = wide(hist, f"act_mean/{top}"), wide(hist, f"act_saturated/{top}")
    final = last(hist, "val/accuracy")

    rows = []
    for init in INITS:
        ids = list(runs[runs["params.init"] == init]["run_id"])
        if not ids:
            continue
        m = mean_top[ids]
        rows.append([init, str(len(ids)), mean_std(m.loc[0] if 0 in m.index else [float("nan")]),
                     mean_std(m.min()), mean_std(m.idxmin().astype(float)), mean_std(m.ffill().iloc[-1]),
                     mean_std(100 * at_step(hist, f"act_saturated/{top}", 0).reindex(ids)),
                     mean_std(100 * sat_top[ids].max()), mean_std(final.reindex(ids))])

    plt = pyplot()
    fig, axes = plt.subplots(1, len(INITS), figsize=(12, 4.3), sharey=True)
    for ax, init in zip(axes, INITS):
        ids = list(runs[runs["params.init"] == init]["run_id"])
        for l in range(1, top + 1):
            m, s = mean_curve(hist, f"act_mean/{l}", ids), mean_curve(hist, f"act_std/{l}", ids)
            ax.plot(m.index, m.to_numpy(), color=f"C{l - 1}", label=f"layer {l}")
            ax.fill_between(m.index, (m - s).to_numpy(), (m + s).to_numpy(), color=f"C{l - 1}",
                            alpha=0.12)
        ax.set_title(f"{init} init: mean ± std of A[l], sigmoid")
        ax.set_xlabel("epoch (0 = before any update)")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("activation (mean over seeds)")
    axes[0].legend(fontsize=8)
    save_figure(fig, args.output / "activations.png")

    write_markdown(args.output, "Study 12, sigmoid_saturation: analysis", [
        f"{len(runs)} runs, {top} sigmoid hidden layers; 'top' is hidden layer {top}. Mean "
        "activation: mean of A[l] over the training examples and the layer's units; step 0 is "
        "before any update. Saturated: % of the top layer's values outside [0.01, 0.99]. Mean ± "
        "std over seeds.",
        md_table(["init", "runs", "top layer mean, step 0", "lowest top-layer mean",
                  "epoch of the lowest", "top layer mean, last epoch", "top saturated %, step 0",
                  "top saturated %, highest", "final val accuracy"], rows),
        "![mean ± std of each hidden layer's activation against epochs](activations.png)",
    ])


if __name__ == "__main__":
    main()
