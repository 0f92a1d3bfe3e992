"""``ffexp-report``: a reproducible report of a sweep from the MLflow store.

Heavy imports (MLflow, pandas, matplotlib) wait until the arguments are parsed, so ``--help``
and argument errors are instant.
"""

from __future__ import annotations

import argparse
import sys

PROG = "ffexp-report"

EPILOG = """\
selection: with none of --experiment/--sweep/--filter, the most recent sweep (the sweep parent
run started last). --experiment alone selects every job run of that experiment. --filter takes
MLflow's search syntax (names with dots in backquotes; single-quote it in the shell), e.g.
  --filter 'params.activation = "relu" and tags.`ffexp.outcome` != "diverged"'
output: report.md (+ PNG figures and CSV tables beside it) and a self-contained report.html;
the folder is also logged as artifact 'report/' of the sweep's parent run when one is selected.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Aggregate ffexp runs over seeds (mean, std, 95% t interval inside the "
                    "metric's range, paired t tests against the best group with Holm's "
                    "correction) and write a Markdown + HTML report with learning curves, "
                    "gradient-norm profiles and a heatmap.")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db "
                        "in the current directory, as ffexp)")
    p.add_argument("--experiment", metavar="NAME", help="select the runs of this experiment")
    p.add_argument("--sweep", metavar="ID",
                   help="select the jobs of one sweep: its parent run id or its ffexp.sweep_id")
    p.add_argument("--filter", metavar="SEARCH",
                   help="MLflow search string further restricting the runs")
    p.add_argument("--metric", metavar="NAME",
                   help="ranking metric, e.g. val/accuracy or test/f1 (a bare name means val/NAME; "
                        "default: the task's main validation metric: r2, accuracy or f1_micro)")
    p.add_argument("--at", default="final", metavar="WHEN",
                   help="which value of the metric per run: final (default), best (over epochs) "
                        "or 'epoch N'")
    p.add_argument("--group-by", metavar="P1,P2",
                   help="comma-separated params to group by (default: the params that vary "
                        "among the runs, the seed excluded)")
    p.add_argument("--margin", type=float, default=None, metavar="DELTA",
                   help="equivalence margin of the TOST test: a group is 'equivalent' to its "
                        "block's best when the mean paired difference is shown inside "
                        "±DELTA (default: 0.01 for a metric in [0, 1], none otherwise)")
    p.add_argument("--probe-chaos", action="store_true",
                   help="rerun one seed per group twice, from its initial weights and from "
                        "them times 1 + 1e-12, and mark a group chaotic when its metric moves "
                        "by more than 0.1 × its seeds' std (costs about 2 × groups × one "
                        "job's training; docs/reports.md)")
    p.add_argument("--output", "-o", metavar="DIR",
                   help="output folder (default: reports/<sweep or experiment name>/)")
    p.add_argument("--no-log-artifact", action="store_true",
                   help="do not log the report to the sweep's parent run")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="threads fetching metric histories (default: 8 for an http(s) tracking "
                        "server, whose round trips they overlap; 1 for SQLite, where they only "
                        "contend)")
    return p


def _unwritable(output: str | None) -> str | None:
    """Why the output folder (default: under ./reports) cannot be created, else None."""
    from pathlib import Path
    existing = Path(output or "reports").absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    import tempfile
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        return f"{existing} is not writable ({err.strerror or err})"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.margin is not None and not args.margin > 0:
        print(f"{PROG}: error: --margin {args.margin:g}: the equivalence margin must be a "
              "number > 0", file=sys.stderr)
        return 2
    problem = _unwritable(args.output)
    if problem:
        print(f"{PROG}: error: --output {args.output or 'reports/'}: cannot be created: "
              f"{problem}", file=sys.stderr)
        return 2
    from .build import Options, build
    from .select import ReportError

    opts = Options(tracking_uri=args.tracking_uri, experiment=args.experiment, sweep=args.sweep,
                   filter=args.filter, metric=args.metric, at=args.at,
                   group_by=[k.strip() for k in (args.group_by or "").split(",") if k.strip()],
                   output=args.output, log_artifact=not args.no_log_artifact,
                   workers=max(1, args.workers) if args.workers else None,
                   margin=args.margin, probe_chaos=args.probe_chaos)
    try:
        out, info = build(opts)
    except ReportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    if info.get("env_note"):
        print(f"{PROG}: note: {info['env_note']}", file=sys.stderr)
    logged = info["logged"]
    note = (f"; logged to run {logged}" if logged and " " not in logged
            else f"; {logged}" if logged else "")
    warn = f"; {info['warnings']} uncontrolled-comparison warning(s)" if info["warnings"] else ""
    print(f"{PROG}: {info['runs']} runs in {info['groups']} groups -> {out / 'report.md'}, "
          f"{out / 'report.html'}{note}{warn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
