"""Study 3 (initialization): per-layer gradient norms at initialization, divergence, the
diagnosis tags of the tracking, and the accuracy reached, per init x activation.

Per cell, over seeds: the outcomes (and the epoch of divergence), ‖∂J/∂W[1]‖ and ‖∂J/∂W[L]‖ and
the ratio ‖∂J/∂Z[1]‖ / ‖∂J/∂Z[L-1]‖ (first against last hidden layer) at step 0 (before any
update, of the full training cost), how many runs carry each diagnosis tag
(ffexp.diag.*: vanishing or exploding gradients, saturated layers, symmetry not broken), and the
final validation accuracy. Writes report/analysis.md and report/profiles.png (‖∂J/∂W[l]‖ at
step 0 against l, geometric mean over seeds).

    python experiments/initialization/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (at_step, depth, last, load_sweep, md_table, mean_std, outcomes, param,  # noqa: E402
                      parse_args, pyplot, save_figure, write_markdown)

DIAGNOSES = ("vanishing_gradients", "exploding_gradients", "saturated_layers", "symmetry_not_broken")


def label(init: str, scale: str) -> str:
    return f"random {float(scale):g}" if init == "random" else init


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    probe, _ = load_sweep(args.tracking_uri, [])
    L = int(probe["params.hidden_sizes"].map(depth).max())
    keys = ["val/accuracy"] + [f"grad_norm/{t}{l}" for t in "WZ" for l in range(1, L + 1)]
    runs, hist = load_sweep(args.tracking_uri, keys)
    runs["cell"] = [label(i, s) for i, s in zip(runs["params.init"], param(runs, "init.scale"))]
    final = last(hist, "val/accuracy")
    g = {(t, l): at_step(hist, f"grad_norm/{t}{l}", 0) for t in "WZ" for l in range(1, L + 1)}
    order = ["random 0.01", "random 1", "xavier", "he", "zeros"]

    rows, profiles = [], {}
    for act in sorted(set(runs["params.activation"]), reverse=True):
        for cell in sorted(set(runs["cell"]), key=lambda c: order.index(c) if c in order else 99):
            sel = runs[(runs["params.activation"] == act) & (runs["cell"] == cell)]
            if not len(sel):
                continue
            ids = list(sel["run_id"])
            diag = ", ".join(f"{d.replace('_', ' ')} {int((sel.get(f'tags.ffexp.diag.{d}') == 'true').sum())}"
                             for d in DIAGNOSES if (sel.get(f"tags.ffexp.diag.{d}") == "true").any())
            ratio = [g["Z", 1].get(i, np.nan) / g["Z", L - 1].get(i, np.nan) for i in ids]
            rows.append([act, cell, outcomes(sel), mean_std(g["W", 1].reindex(ids)),
                         mean_std(g["W", L].reindex(ids)), mean_std(ratio), diag or "none",
                         mean_std(final.reindex(ids))])
            prof = [g["W", l].reindex(ids).to_numpy(dtype=float) for l in range(1, L + 1)]
            profiles[act, cell] = [float(np.exp(np.mean(np.log(p[np.isfinite(p) & (p > 0)]))))
                                   if (np.isfinite(p) & (p > 0)).any() else np.nan for p in prof]

    plt = pyplot()
    acts = sorted({a for a, _ in profiles}, reverse=True)
    fig, axes = plt.subplots(1, len(acts), figsize=(5.5 * len(acts), 4.2), sharey=True, squeeze=False)
    for ax, act in zip(axes[0], acts):
        for i, cell in enumerate(order):
            if (act, cell) in profiles:
                ax.semilogy(range(1, L + 1), profiles[act, cell], "o-", ms=3, color=f"C{i}", label=cell)
        ax.set_title(f"{act}: ‖∂J/∂W[l]‖ at step 0 (before any update)")
        ax.set_xlabel("layer l")
    axes[0][0].legend(fontsize=8)
    save_figure(fig, args.output / "profiles.png")

    write_markdown(args.output, "Study 3, initialization: analysis", [
        f"{len(runs)} runs, L = {L} layers ({L - 1} hidden). Gradient norms at step 0 (before "
        "any update, of the full training cost); diagnoses: how many runs carry the tracking's "
        "`ffexp.diag.*` tag (thresholds in ffexp/tracking/diagnose.py). Mean ± std over seeds; "
        "a diverged run's accuracy is the one of its last finite epoch.",
        md_table(["activation", "init", "outcomes", "‖∂J/∂W[1]‖, step 0", f"‖∂J/∂W[{L}]‖, step 0",
                  f"‖∂J/∂Z[1]‖ / ‖∂J/∂Z[{L - 1}]‖, step 0", "diagnoses (runs)", "final val accuracy"],
                 rows),
        "![‖∂J/∂W[l]‖ at step 0 per layer](profiles.png)\n\n(zeros: every ‖∂J/∂W[l]‖ is 0, "
        "which a log scale cannot draw)",
    ])


if __name__ == "__main__":
    main()
