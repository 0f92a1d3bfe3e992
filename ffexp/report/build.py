"""From options to a report folder: select, aggregate, draw, render, and log it to the sweep."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import figures, provenance
from .aggregate import (OUTCOMES, Table, heatmap_factors, lower_is_better, main_metric,
                        metric_names, outcomes_of, paired, resolve_metric, run_values, summarize)
from .design import (SEED, check_group_keys, detect_group_keys, params_of, run_order,
                     swept_keys, uncontrolled)
from .render import fmt, to_html, to_markdown
from .select import ReportError, connect, fetch_histories, resolve_uri, select_runs, sweep_command

_GRAD = re.compile(r"grad_norm/[WZ]\d+$")
_FINAL = re.compile(r"(val|test)/[a-z0-9_]+$")
#: every file a report writes (removed first, so a rerun leaves no stale figure behind)
OUTPUTS = ("report.md", "provenance.md", "report.html", "groups.csv", "runs.csv", "paired.csv",
           "learning_curves.png", "grad_norms.png", "heatmap.png")


@dataclass
class Options:
    tracking_uri: str | None = None
    experiment: str | None = None
    sweep: str | None = None
    filter: str | None = None
    metric: str | None = None
    at: str = "final"
    group_by: list[str] = field(default_factory=list)
    output: str | None = None
    log_artifact: bool = True
    workers: int | None = None  # None: 8 threads for a tracking server, 1 for a local store


def parse_at(text: str) -> str:
    """``final``, ``best`` or ``epoch N`` (also ``N``) -> canonical form."""
    t = text.strip().lower()
    if t in ("final", "best"):
        return t
    m = re.fullmatch(r"(?:epoch\s*)?(\d+)", t)
    if not m or int(m.group(1)) < 1:
        raise ReportError(f"invalid --at {text!r} (final, best or epoch N with N >= 1)")
    return f"epoch {int(m.group(1))}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "report"


def _label(per_run: pd.DataFrame, keys: list[str]) -> pd.Series:
    if not keys:
        return pd.Series("all runs", index=per_run.index)
    return per_run[keys].astype(str).apply(
        lambda r: ", ".join(f"{k}={v}" for k, v in zip(keys, r)), axis=1)


def _in_run_order(history: pd.DataFrame, run_ids: pd.Series) -> pd.DataFrame:
    """Histories in the report's run order, so per-epoch means add up in the same order when
    the sweep is rerun under new run ids."""
    position = history["run_id"].map({r: i for i, r in enumerate(run_ids)})
    return (history.assign(_p=position).sort_values(["_p", "key", "step"], kind="stable")
            .drop(columns="_p").reset_index(drop=True))


def _per_run(sel, params, keys, metric, at, history) -> pd.DataFrame:
    runs = sel.runs
    df = pd.DataFrame({"run_id": runs["run_id"],
                       "run_name": runs.get("tags.mlflow.runName", runs["run_id"]).fillna("")})
    for k in keys:
        df[k] = params[k].to_numpy()
    df[SEED] = params[SEED].to_numpy() if SEED in params else ""
    df["outcome"] = outcomes_of(runs).to_numpy()
    df["value"] = run_values(runs, metric, at, history).to_numpy()
    if at.startswith("epoch") and df["value"].isna().all():
        raise ReportError(f"no run has {metric} at {at}")
    return df


def _tables(table: Table, pairs: pd.DataFrame, runs: pd.DataFrame, finals: list[str]):
    k = table.keys
    shown = [o for o in OUTCOMES if o in ("finished", "converged", "diverged")
             or table.groups[o].any()]
    rank = (["rank", *k, "n", "runs", "mean", "std", "95% CI", *shown],
            [[str(g["rank"]), *(str(g[c]) for c in k), str(g["n"]), str(g["runs"]), fmt(g["mean"]),
              fmt(g["std"]), f"[{fmt(g['ci_low'])}, {fmt(g['ci_high'])}]",
              *(str(g[o]) for o in shown)] for _, g in table.groups.iterrows()])
    pair = (([*k, "shared seeds", "difference", "95% CI", "verdict"],
             [[*(str(p[c]) for c in k), str(p["shared_seeds"]), fmt(p["diff"]),
               f"[{fmt(p['ci_low'])}, {fmt(p['ci_high'])}]", p["verdict"]]
              for _, p in pairs.iterrows()]) if len(pairs) else None)
    label = _label(table.runs, k)
    ok = table.runs["outcome"].isin(["finished", "converged", "diverged"]).to_numpy()
    fin_rows = []
    for group in _label(table.groups, k):
        mask = (label == group).to_numpy() & ok
        cells = []
        for m in finals:
            v = runs.loc[mask, f"metrics.{m}"].astype(float).dropna()
            cells.append("—" if v.empty else fmt(v.mean()) if len(v) < 2
                         else f"{fmt(v.mean())} ± {fmt(v.std(ddof=1))}")
        fin_rows.append([group, *cells])
    final = (["group", *finals], fin_rows)
    per = (["run", *k, "seed", "outcome", f"{table.metric} ({table.at})"],  # in run order
           [[row["run_name"], *(str(row[c]) for c in k), str(row[SEED]), row["outcome"],
             fmt(row["value"])] for _, row in table.runs.iterrows()])
    return rank, pair, final, per


def _history_keys(runs, names: list[str], metric: str, at: str) -> tuple[list[str], list[str]]:
    """(learning-curve metrics, every metric whose per-epoch history the report needs)."""
    tasks = sorted(set(runs.get("params.task", pd.Series(dtype=str)).dropna()))
    main = main_metric(tasks[0]) if len(tasks) == 1 else None
    curve_metric = metric if metric.startswith("val/") else main
    curves = list(dict.fromkeys(m for m in ("train/cost", "val/cost", curve_metric)
                                if m in names))
    wanted = sorted(set(curves + [m for m in names if _GRAD.match(m)]
                        + ([metric] if at != "final" else [])))
    return curves, wanted


def _draw(out: Path, history, per_run, params, table: Table, curves: list[str]) -> list:
    """The figures that have data: [(title, path, caption or None)]."""
    keys, metric = table.keys, table.metric
    labels = pd.Series(_label(per_run, keys).to_numpy(), index=per_run["run_id"])
    order = list(_label(table.groups, keys))
    figs = [("Learning curves", figures.learning_curves(history, labels, order, curves,
                                                        out / "learning_curves.png"), None)]
    grad = figures.grad_profiles(history, labels, order, out / "grad_norms.png")
    if grad:
        figs.append(("Gradient-norm profiles across layers", grad, None))
    chosen, nested = heatmap_factors(per_run, params, keys)
    if len(chosen) == 2:
        (rows, eta_r), (cols, eta_c) = chosen
        left = "".join(f"; `{n}` is left out, nested in `{o}`" for n, o in nested)
        figs.append((f"Heatmap of {metric} over {rows} × {cols}",
                     figures.heatmap(per_run, rows, cols, metric, out / "heatmap.png"),
                     f"The two factors that explain the most variance of {metric} over the runs: "
                     f"`{rows}` (η² = {eta_r:.2f}) and `{cols}` (η² = {eta_c:.2f}){left}."))
    elif len(keys) >= 2:
        left = ", ".join(f"`{n}` is nested in `{o}`" for n, o in nested)
        figs.append(("No heatmap", None, f"No heatmap: {left}, which leaves one factor."))
    return figs


def _document(name, sel, table: Table, pairs, notes, figs, finals) -> list:
    """The report's blocks, in reading order (see render.py); nothing a rerun of the sweep
    changes (that is provenance.py's)."""
    keys, metric, at = table.keys, table.metric, table.at
    rank, pair, final, per = _tables(table, pairs, sel.runs, finals)
    direction = "lower" if lower_is_better(metric) else "higher"
    blocks = [("h", 1, f"ffexp report: {name}")]
    blocks += [("warn", "uncontrolled comparison — the runs differ in more than the swept "
                        "factors and the seed: " + "; ".join(notes))] if notes else []
    blocks += [("p", f"{len(table.runs)} runs in {len(table.groups)} groups by "
                     f"{', '.join(f'`{k}`' for k in keys) or '(no factor varies)'}, "
                     f"ranked by `{metric}` ({at}, {direction} is better)."),
               ("h", 2, "Ranking"), ("table", *rank),
               ("p", "n: runs with a value (finished, converged or diverged); runs: all runs "
                     "of the group, whatever their outcome; running: still RUNNING in the store "
                     "(a live job, or a process that died without closing its run). "
                     "95% CI: Student's t over seeds.")]
    if pair:
        best = ", ".join(f"{k}={v}" for k, v in zip(keys, table.groups.loc[0, keys]))
        blocks += [("h", 2, "Paired comparison with the best group"),
                   ("p", f"Best group: {best}. Difference = best − other on the seeds both "
                         f"share (sign so that > 0 means the best group is better)."),
                   ("table", *pair)]
    blocks += [("h", 2, "Final metrics (mean ± std over seeds)"), ("table", *final),
               ("h", 2, "Figures")]
    for title, path, caption in figs:
        blocks += [*([("h", 3, title)] if path else []), *([("p", caption)] if caption else []),
                   *([("img", title, path.name)] if path else [])]
    return blocks + [("h", 2, "Runs"), ("table", *per), ("h", 2, "Selection"),
                     ("ul", provenance.stable_items(sel))]


def build(opts: Options) -> tuple[Path, dict]:
    """Write the report folder; returns it and a few numbers for the closing line."""
    uri = resolve_uri(opts.tracking_uri)
    at = parse_at(opts.at)
    client = connect(uri)
    sel = select_runs(client, opts.experiment, opts.sweep, opts.filter)
    params = params_of(sel.runs)
    swept = (swept_keys(" ".join(filter(None, (sweep_command(sel.parent["tags"]),
                                                sel.parent["tags"].get("ffexp.overrides")))))
             if sel.parent else None)
    keys = (check_group_keys(opts.group_by, params) if opts.group_by
            else detect_group_keys(params, swept))
    order = run_order(params, keys, sel.runs["run_id"])  # not by run id: a rerun keeps it
    sel.runs = sel.runs.iloc[order].reset_index(drop=True)
    params = params.iloc[order].reset_index(drop=True)
    metric = resolve_metric(opts.metric, sel.runs)
    names = metric_names(sel.runs)
    curves, wanted = _history_keys(sel.runs, names, metric, at)
    workers = opts.workers or (8 if uri.startswith(("http://", "https://")) else 1)
    history = _in_run_order(fetch_histories(client, list(sel.runs["run_id"]), wanted,
                                            workers=workers), sel.runs["run_id"])
    per_run = _per_run(sel, params, keys, metric, at, history)
    table = summarize(per_run, keys, metric, at)
    pairs = paired(table)
    notes = uncontrolled(sel.runs, params, keys)

    name = (provenance.experiment_names(sel) if len(set(sel.experiments.values())) == 1
            else "selection")  # the title: the sweep's name would carry its date
    folder = sel.parent["run_name"] if sel.parent else name
    out = Path(opts.output) if opts.output else Path("reports") / _safe(folder)
    out.mkdir(parents=True, exist_ok=True)
    for old in OUTPUTS:  # a previous report's figure must not outlive it (nor be logged)
        (out / old).unlink(missing_ok=True)
    figs = _draw(out, history, per_run, params, table, curves)
    finals = [m for m in names if _FINAL.match(m)]
    blocks = _document(name, sel, table, pairs, notes, figs, finals)
    regen = provenance.regenerate_command(sel, uri, metric, at,
                                          keys if opts.group_by else [], opts.output)
    (out / "report.md").write_text(to_markdown([*blocks, ("p", provenance.LINK_MD)]),
                                   encoding="utf-8")
    (out / "provenance.md").write_text(to_markdown(provenance.blocks(
        sel, params, keys, uri, regen, f"Provenance of the ffexp report: {name}")),
        encoding="utf-8")
    html_blocks = [*blocks, ("p", provenance.LINK_HTML),
                   *provenance.blocks(sel, params, keys, uri, regen, None)]
    (out / "report.html").write_text(to_html(html_blocks, out, f"ffexp report: {name}"),
                                     encoding="utf-8")
    table.groups.to_csv(out / "groups.csv", index=False, float_format="%.10g")
    table.runs.drop(columns="run_id").to_csv(out / "runs.csv", index=False,
                                             float_format="%.10g")
    if len(pairs):
        pairs.to_csv(out / "paired.csv", index=False, float_format="%.10g")

    logged = None
    if sel.parent and opts.log_artifact:
        try:
            client.log_artifacts(sel.parent["run_id"], str(out), artifact_path="report")
            logged = sel.parent["run_id"]
        except Exception as exc:  # noqa: BLE001 - the files are written; logging is a bonus
            logged = f"not logged ({str(exc).splitlines()[0][:120] if str(exc) else exc!r})"
    return out, {"runs": len(per_run), "groups": len(table.groups), "logged": logged,
                 "warnings": len(notes)}
