"""A sweep's conclusion, in the launching process when the sweep ends (the Hydra callback
``hydra.callbacks.sweep_conclusion``): the result table for the console, from the jobs'
status files alone, and the comparison figures on the parent run (ffexp.report.comparison).

The table has one line per group (the swept factors other than the seed, as ffexp-report
finds them: ffexp.report.design), with n (runs with a value), the mean of the main metric and
its 95% interval (ffexp.report.stats.interval), the runs that diverged, failed, were killed or
overflowed, and the best set marked as ffexp-report marks it (ffexp.report.aggregate.best_sets:
per block, the other factors fixed and never across datasets, the best group with n >= MIN_N
and every group not shown to be worse; tied groups share it). Jobs with different main
metrics (a sweep over datasets of different tasks) get one table per metric.

The launch layer cannot import the report (the report rebuilds jobs through it), so the lines
are handed over through ``SweepStatus.conclusion``, which ``report_sweep`` prints last.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback

from ffexp.launch.status import SweepStatus, sweep_records

from .aggregate import best_sets, nested_parents, paired, summarize
from .design import SEED, detect_group_keys, run_order
from .stats import MIN_N, OVERFLOW

#: outcomes of a status record that are results (their value counts)
_RESULT = {"finished", "converged", "diverged"}
#: outcomes counted in the table's last column
_BAD = ("diverged", "failed", "killed", "overflowed")
BEST = "★"


def _overrides(record: dict) -> dict[str, str]:
    out = {}
    for o in record.get("overrides") or ():
        key, eq, value = str(o).partition("=")
        key = key.lstrip("+~")
        if eq and not key.startswith("hydra."):
            out[key] = value
    return out


def _outcome(record: dict) -> str:
    status = record.get("status")
    if status == "ok":
        return record.get("outcome") or "finished"
    if status == "skipped":
        return "skipped"
    return "killed" if record.get("outcome") in ("timeout", "killed") else "failed"


def per_run(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(params of each job: its overrides, seed included; the per-run frame summarize takes;
    the group keys)."""
    params = pd.DataFrame([_overrides(r) for r in records]).fillna("").astype(str)
    if SEED not in params:
        params[SEED] = "0"   # not swept: the config's seed, the same for every job
    keys = detect_group_keys(params) if len(params.columns) > 1 else []
    rows = []
    for i, r in enumerate(records):
        outcome = _outcome(r)
        v = r.get("value")
        ok = outcome in _RESULT and v is not None and math.isfinite(v) and abs(v) <= OVERFLOW
        rows.append({**{k: params[k].iat[i] for k in keys}, SEED: params[SEED].iat[i],
                     "outcome": outcome, "value": float(v) if ok else math.nan,
                     "metric": r.get("metric"), "run_id": str(r.get("job_num"))})
    return params, pd.DataFrame(rows), keys


def _metric_of(frame: pd.DataFrame) -> pd.Series:
    """Each job's main metric; a job without one (it failed) takes its group's, else the most
    common."""
    metric = frame["metric"].astype(object)
    common = Counter(m for m in metric if m).most_common(1)
    fallback = common[0][0] if common else "value"
    return metric.where(metric.notna() & (metric != ""), None).fillna(fallback)


def _interval(g) -> str:
    if not g["n"]:
        return "—"
    if math.isnan(g["ci_low"]):
        return f"{g['mean']:.4f}"
    return f"{g['mean']:.4f} [{g['ci_low']:.4f}, {g['ci_high']:.4f}]"


def _bad(g) -> str:
    parts = [f"{int(g[o])} {o}" for o in _BAD if g.get(o, 0)]
    return ", ".join(parts) or "0"


def table_lines(records: list[dict]) -> list[str]:
    """The console table(s) of a finished sweep (module doc); [] for a sweep of one job."""
    if len(records) < 2:
        return []
    params, frame, keys = per_run(records)
    frame["metric"] = _metric_of(frame)
    lines: list[str] = []
    for metric in sorted(frame["metric"].unique()):
        mask = (frame["metric"] == metric).to_numpy()
        sub = frame[mask].drop(columns="metric").reset_index(drop=True)
        table = summarize(sub, keys, str(metric), "final")
        parents = nested_parents(params[mask].reset_index(drop=True), keys) if keys else {}
        pairs = paired(table, parents)
        best = _best_marks(table, pairs, parents)
        lines += _render(table, keys, str(metric), best, any(table.groups["n"] >= MIN_N))
    return lines


def _best_marks(table, pairs, parents) -> dict[int, list[str]]:
    """{group row: the factors in whose block it is in the best set}."""
    marks: dict[int, list[str]] = {}
    for block, same, _ in best_sets(table, pairs, parents):
        for r in same:
            marks.setdefault(r, []).append(block.factor[0])
    return marks


def _render(table, keys: list[str], metric: str, best: dict[int, list[str]],
            comparable: bool) -> list[str]:
    groups = table.groups
    factors = list(keys)
    several = len({f for fs in best.values() for f in fs}) > 1
    head = [*(factors or ["group"]), "n", f"{metric} mean [95% CI]", "diverged/failed", "best"]
    rows = []
    order = run_order(groups[keys].astype(str), keys, list(range(len(groups)))) if keys \
        else list(range(len(groups)))
    for i in order:
        g = groups.loc[i]
        mark = (BEST + (" " + ",".join(best[i]) if several else "")) if i in best else ""
        rows.append([*(str(g[k]) for k in factors), *([] if factors else ["all"]),
                     f"{int(g['n'])}/{int(g['runs'])}", _interval(g), _bad(g), mark])
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [f"ffexp: result by group ({metric}, final value; n = runs with a value / runs):",
           "  " + fmt(head), *("  " + fmt(r) for r in rows)]
    if best:
        out.append(f"  {BEST} best set, as ffexp-report marks it: per block (the other factors "
                   f"fixed, never across datasets) the best group and those not shown to be "
                   f"worse (paired t test on shared seeds, Holm)")
    elif not comparable:
        out.append(f"  no best set: the groups need {MIN_N} seeds each to be compared "
                   f"(e.g. seed=0,1,2)")
    return out


class SweepConclusion(Callback):
    """Registered in conf/config.yaml under ``hydra.callbacks``, before ``mlflow_sweep``: Hydra
    calls the callbacks' ends in reverse order, so this runs once the parent is closed."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        sweep_dir = SweepStatus.sweep_dir
        if sweep_dir is None:
            return
        from pathlib import Path
        lines: list[str] = []
        try:
            lines += table_lines(sweep_records(Path(sweep_dir)))
        except Exception as err:  # the sweep's verdict does not depend on its summary
            print(f"ffexp: warning: no result table: {type(err).__name__}: {err}",
                  file=sys.stderr, flush=True)
        if config.tracking.enabled:
            lines += _comparison(Path(sweep_dir))
            lines += _images_view(Path(sweep_dir))
        SweepStatus.conclusion = lines


def _warn(what: str, err: Exception) -> None:
    """``ffexp: warning: <what>: <error type>: <its first line, up to 200 characters>``."""
    first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
    print(f"ffexp: warning: {what}: {type(err).__name__}: {first}", file=sys.stderr, flush=True)


def _comparison(sweep_dir) -> list[str]:
    """Draw the comparison figures on the sweep's parent; the lines that say where they are."""
    from ffexp.tracking import handoff, store

    from .comparison import FOLDER, log_comparison
    target = handoff.read(sweep_dir)
    if target is None:
        return []
    try:
        client = store.client(target.tracking_uri)
        names = log_comparison(client, target.experiment_id, target.parent_run_id,
                               target.varied)
    except Exception as err:
        _warn("no comparison figures on the sweep's parent run", err)
        return []
    if not names:
        return []
    return [f"ffexp: comparison figures on the parent run {target.parent_run_id}: "
            + ", ".join(f"{FOLDER}/{n}" for n in names)]


def _images_view(sweep_dir) -> list[str]:
    """Save the view of the children's step images on the experiment (ffexp.tracking.views);
    the line that names it and its address."""
    from ffexp.tracking import handoff, store, views
    target = handoff.read(sweep_dir)
    if target is None:
        return []
    try:
        made = views.sweep_images_view(store.client(target.tracking_uri), target.experiment_id,
                                       target.parent_run_id)
    except Exception as err:
        _warn("no view of the step images", err)
        return []
    if made is None:
        return []
    name, query = made
    uri = target.tracking_uri
    base = uri if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return [f"ffexp: the children's step images, side by side (the UI's Views menu: {name}):",
            f"  {base.rstrip('/')}/#/experiments/{target.experiment_id}/runs?{query}"]
