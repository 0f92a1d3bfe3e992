"""Study 8 (dead_relu): how many hidden units are inactive for every example, and what that
costs ReLU and leaky ReLU.

A unit is dead when z ≤ 0 for every training example (ffexp's ``act_dead/<l>``: the fraction of
layer l's units). Per activation x initial bias, over seeds: the mean dead fraction over the
hidden layers at step 0 (before any update) and at the last epoch, ‖∂J/∂W[1]‖ and
‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖ at step 0 (how much error reaches the first layer), the epochs to 85 %
validation accuracy and the final validation accuracy. Writes report/analysis.md and
report/dead_fraction.png (dead fraction and accuracy against epochs).

    python experiments/dead_relu/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, first_step, last, load_sweep, md_table, mean_curve,  # noqa: E402
                      mean_std, outcomes, param, parse_args, pyplot, reached, save_figure,
                      wide, write_markdown)

ACTIVATIONS = ("relu", "leaky_relu, c = 0.001", "leaky_relu, c = 0.01", "leaky_relu, c = 0.1")
TARGET = 0.85


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    L = int(probe["params.hidden_sizes"].map(depth).max())
    keys = ["val/accuracy", "grad_norm/W1", "grad_norm/Z1", f"grad_norm/Z{L - 1}"]
    keys += [f"act_dead/{l}" for l in range(1, L)]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["bias"] = param(runs, "init.bias").astype(float)
    runs["act"] = [a if a == "relu" else f"{a}, c = {float(c):g}"
                   for a, c in zip(runs["params.activation"], param(runs, "activation.slope"))]
    dead = sum(wide(hist, f"act_dead/{l}") for l in range(1, L)) / (L - 1)  # mean over layers
    dead0, dead_end = dead.reindex([0]).iloc[0], dead.ffill().iloc[-1]
    w1 = at_step(hist, "grad_norm/W1", 0)
    zr = at_step(hist, "grad_norm/Z1", 0) / at_step(hist, f"grad_norm/Z{L - 1}", 0)
    hit = first_step(hist, "val/accuracy", lambda v: v >= TARGET)
    final = last(hist, "val/accuracy")

    rows, cells = [], []
    for act in ACTIVATIONS:
        for b in sorted(set(runs["bias"]), reverse=True):
            sel = runs[(runs["act"] == act) & (runs["bias"] == b)]
            if not len(sel):
                continue
            ids = list(sel["run_id"])
            cells.append((act, b, ids))
            rows.append([act, f"{b:g}", outcomes(sel), mean_std(100 * dead0.reindex(ids)),
                         mean_std(100 * dead_end.reindex(ids)), mean_std(w1.reindex(ids)),
                         mean_std(zr.reindex(ids)), reached(hit.reindex(ids)),
                         mean_std(final.reindex(ids))])

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.3))
    styles = dict(zip(ACTIVATIONS, ("-", "--", ":")))
    biases = sorted(set(runs["bias"]), reverse=True)
    for act, b, ids in cells:
        color, style = f"C{biases.index(b)}", styles.get(act, ":")
        d = dead[[i for i in ids if i in dead.columns]].mean(axis=1)
        axes[0].plot(d.index, 100 * d.to_numpy(), style, color=color, label=f"{act}, b = {b:g}")
        acc = mean_curve(hist, "val/accuracy", ids)
        axes[1].plot(acc.index, acc.to_numpy(), style, color=color, label=f"{act}, b = {b:g}")
    axes[0].set_title(f"dead units (z ≤ 0 for every example), mean of {L - 1} hidden layers")
    axes[0].set_ylabel("% of units")
    axes[1].set_title("validation accuracy")
    for ax in axes:
        ax.set_xlabel("epoch (0 = before any update)")
    axes[1].legend(fontsize=8)
    save_figure(fig, args.output / "dead_fraction.png")

    write_markdown(args.output, "Study 8, dead_relu: analysis", [
        f"{len(runs)} runs, L = {L} layers ({L - 1} hidden). Dead: % of a hidden layer's units "
        "with z ≤ 0 for every training example, mean over the hidden layers. Step 0: before any "
        "update; gradient norms of the full training cost at step 0. Epochs to "
        f"{TARGET:.0%} validation accuracy: mean over the runs that got there. Mean ± std over "
        "seeds (curves: mean over seeds).",
        md_table(["activation", "initial bias b", "outcomes", "dead %, step 0", "dead %, last epoch",
                  "‖∂J/∂W[1]‖, step 0", f"‖∂J/∂Z[1]‖ / ‖∂J/∂Z[{L - 1}]‖, step 0",
                  f"epochs to {TARGET:.0%}", "final val accuracy"], rows),
        "![dead fraction and validation accuracy against epochs](dead_fraction.png)",
    ])


if __name__ == "__main__":
    main()
