"""Study 13 (softmax_output): softmax against independent sigmoids for 10 exclusive classes.

Per output activation, over seeds: the final validation accuracy and the epochs until it
reaches TARGET (from the runs' histories), and, on the validation set, what the trained output
layer says: the sum over the classes of the outputs, Σ_k ŷ_k (1 for a probability distribution
over exclusive classes), the share of examples whose sum lies outside [1 − BAND, 1 + BAND], and
the largest output max_k ŷ_k (the probability given to the predicted class).

The trained networks are not stored (tracking.log_model: false): each run is trained again in
this process from its logged params (``ffexp.report.probe.settings_from_params``, the engine's
``prepare`` / ``execute``, the run's BLAS threads), which reproduces its training bit for bit on
the same numeric environment; the script checks that each retrained network gives the run's
logged final validation accuracy and stops otherwise. Writes report/analysis.md and
report/output_sums.png (the distribution of Σ_k ŷ_k per output).

    python experiments/softmax_output/analyze.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # experiments/studylib.py (run as a script, not a package)

from studylib import (first_step, fmt, last, load_sweep, md_table, mean_std, param,  # noqa: E402
                      parse_args, pyplot, reached, save_figure, write_markdown)

TARGET = 0.9
BAND = 0.1


def retrain(row) -> tuple[np.ndarray, float]:
    """(Ŷ on the validation set (n[L], m_val), its accuracy) of the run's network trained again
    from its logged params."""
    from ffexp.job.app import execute, prepare
    from ffexp.job.blas import limit
    from ffexp.report.probe import settings_from_params

    params = {c[len("params."):]: v for c, v in row.items()
              if c.startswith("params.") and isinstance(v, str)}
    settings = settings_from_params(params)
    job = prepare(settings)
    with np.errstate(all="ignore"), limit(settings.train.blas_threads):
        result = execute(job)
    Yhat = result.net.forward(job.dataset.X_val)
    accuracy = float(np.mean(Yhat.argmax(axis=0) == job.dataset.Y_val.argmax(axis=0)))
    return Yhat, accuracy


def main() -> None:
    args = parse_args(HERE, __doc__.split("\n\n")[0])
    runs, hist = load_sweep(args.tracking_uri, ["val/accuracy"])
    runs["output"] = param(runs, "model.output_activation", "output_activation")
    final = last(hist, "val/accuracy")
    hit = first_step(hist, "val/accuracy", lambda v: v >= TARGET)

    sums: dict[str, list[np.ndarray]] = {}
    tops: dict[str, list[float]] = {}
    outside: dict[str, list[float]] = {}
    for _, row in runs.sort_values("run_id").iterrows():
        Yhat, accuracy = retrain(row)
        logged = float(final[row["run_id"]])
        if accuracy != logged:
            raise SystemExit(f"analysis: error: run {row['run_id']} retrained to val accuracy "
                             f"{accuracy!r}, logged {logged!r}: another numeric environment "
                             f"(OPENBLAS_CORETYPE, numpy)?")
        s = Yhat.sum(axis=0)
        sums.setdefault(row["output"], []).append(s)
        tops.setdefault(row["output"], []).append(float(Yhat.max(axis=0).mean()))
        outside.setdefault(row["output"], []).append(float(np.mean(np.abs(s - 1) > BAND)))

    rows = []
    names = sorted(sums, key=lambda n: (n != "softmax", n))
    for name in names:
        ids = list(runs.loc[runs["output"] == name, "run_id"])
        pooled = np.concatenate(sums[name])
        rows.append([name, len(ids), mean_std(final.reindex(ids)), reached(hit.reindex(ids)),
                     f"{fmt(float(pooled.mean()))} ({fmt(float(np.percentile(pooled, 5)))}–"
                     f"{fmt(float(np.percentile(pooled, 95)))})",
                     mean_std(100 * np.array(outside[name])), mean_std(tops[name])])

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    step = 1 / 30   # bins centred on 1, so that the softmax's sums (1 up to rounding) fall in one
    top = max(2.0, max(float(np.concatenate(v).max()) for v in sums.values()))
    bins = np.arange(-step / 2, top + step, step)
    for i, name in enumerate(names):
        ax.hist(np.concatenate(sums[name]), bins=bins, color=f"C{i}", alpha=0.6,
                label=f"{name} ({len(sums[name])} seeds pooled)")
    ax.axvline(1.0, color="gray", ls=":", lw=1)
    ax.set(xlabel="Σ_k ŷ_k on a validation example", ylabel="examples (log scale)", yscale="log",
           title="sum of the 10 outputs after training (validation set)")
    ax.legend(fontsize=8)
    save_figure(fig, args.output / "output_sums.png")

    write_markdown(args.output, "Study 13, softmax_output: analysis", [
        f"{len(runs)} runs (digits, 10 exclusive classes, binary cross-entropy for both outputs). "
        f"Mean ± std over seeds; Σ_k ŷ_k pooled over the seeds' validation examples (mean and "
        f"5th–95th percentile). Every network was trained again from its run's params and gave "
        f"the run's logged final validation accuracy.",
        md_table(["output", "runs", "final val accuracy", f"epochs to val accuracy ≥ {TARGET}",
                  "Σ_k ŷ_k, mean (5–95 %)", f"% of examples with Σ_k ŷ_k outside 1 ± {BAND}",
                  "mean of max_k ŷ_k"], rows),
        "![distribution of the sum of the outputs](output_sums.png)",
    ])


if __name__ == "__main__":
    main()
