"""From options to a report folder: select, aggregate, draw, render, and log it to the sweep."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import document, figures, provenance, style
from .aggregate import (Table, default_margin, heatmap_factors, inert, main_metric,
                        metric_names, nested_parents, outcomes_of, paired, resolve_metric,
                        run_values, summarize, to_csv_frame)
from .design import (SEED, check_group_keys, detect_group_keys, params_of, run_order,
                     swept_keys, uncontrolled)
from .render import code, to_html, to_markdown
from .stats import MIN_N, OVERFLOW
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
    margin: float | None = None  # None: aggregate.default_margin of the metric
    probe_chaos: bool = False


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
    """A folder name from a sweep's or experiment's name: one path component, never ``..``,
    ``.`` or absolute (``/``, ``..`` and other characters become ``_``)."""
    safe = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9._-]+|\.\.+", "_", name))
    return safe.strip("._-") or "report"


def output_dir(output: str | None, name: str) -> Path:
    """--output as given, else ``reports/<safe name>``: inside ``reports/`` whatever the name."""
    if output:
        return Path(output)
    out = Path("reports") / _safe(name)
    if out.resolve().parent != Path("reports").resolve():  # _safe makes this impossible
        raise ReportError(f"report folder name {name!r} leaves reports/")
    return out


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
    if df["value"].isna().all():
        counts = ", ".join(f"{o} {n}" for o, n in sorted(df["outcome"].value_counts().items()))
        raise ReportError(f"no run has a value of {metric} to rank ({len(df)} runs: {counts}; "
                          f"a non-finite value or one beyond ±{OVERFLOW:g} is none): nothing to "
                          "report")
    return df


def _history_keys(runs, names: list[str], metric: str, at: str) -> tuple[list[str], list[str]]:
    """(learning-curve metrics, every metric whose per-epoch history the report needs)."""
    tasks = sorted(set(runs.get("params.task", pd.Series(dtype=str)).dropna()))
    main = main_metric(tasks[0]) if len(tasks) == 1 else None
    if main and main not in names and "train/" + main[4:] in names:
        main = "train/" + main[4:]  # no validation split
    curve_metric = metric if metric.startswith(("val/", "train/")) else main
    curves = list(dict.fromkeys(m for m in ("train/cost", "val/cost", curve_metric)
                                if m in names))
    wanted = sorted(set(curves + [m for m in names if _GRAD.match(m)]
                        + ([metric] if at != "final" else [])))
    return curves, wanted


def _noise(pairs: pd.DataFrame) -> float:
    """The typical half-width of the paired 95% intervals (median of those with a width)."""
    if not len(pairs):
        return 0.0
    ok = pairs[pairs["shared_seeds"] >= MIN_N]
    half = ((ok["ci_high"] - ok["ci_low"]) / 2).to_numpy(dtype=float)
    half = half[np.isfinite(half) & (half > 0)]
    return float(np.median(half)) if len(half) else 0.0


def _layout(table: Table, parents: dict[str, str]) -> tuple[style.Layout, pd.Series]:
    """The figures' layout and each run's group label (indexed by run id)."""
    keys = table.keys
    chaos = document.chaotic_rows(table)
    labels = [f"{label} {document.CHAOS_MARK}" if i in chaos else label
              for i, label in enumerate(document.group_labels(table, parents))]
    if keys:
        hide = inert(table.groups, parents).reindex(columns=keys, fill_value=False)
        values = table.groups[keys].astype(str).mask(hide, "")
    else:
        values = pd.DataFrame(index=[0])
    by_run = pd.Series(document.run_labels(table, labels).to_numpy(),
                       index=table.runs["run_id"])
    return style.layout(values, keys, labels), by_run


def _heatmap(out: Path, params, table: Table, pairs) -> list:
    keys, metric, per_run = table.keys, table.metric, table.runs
    chosen, nested = heatmap_factors(per_run, params, keys)
    if len(chosen) < 2:
        left = ", ".join(f"{code(n)} is nested in {code(o)}" for n, o in nested)
        return ([("No heatmap", None, f"No heatmap: {left}, which leaves one factor.")]
                if len(keys) >= 2 else [])
    (rows, eta_r), (cols, eta_c) = chosen
    noise = _noise(pairs)
    left = "".join(f"; {code(n)} is left out, nested in {code(o)}" for n, o in nested)
    scale = (f"the colour scale spans at least {figures.NOISE_SPAN:g}× the median half-width "
             f"of the paired 95% intervals ({noise:.4f}), so a difference inside the noise "
             "takes at most a quarter of it" if noise > 0 else
             "no paired interval estimates the noise, so the colour scale spans the metric's "
             "whole range where it is bounded")
    chaos = document.chaotic_rows(table)
    marked = {tuple(str(table.groups.at[i, k]) for k in keys) for i in chaos}
    per_run = per_run.assign(chaotic=[tuple(str(r[k]) for k in keys) in marked
                                      for _, r in per_run.iterrows()])
    path = figures.heatmap(per_run, rows, cols, metric, noise, out / "heatmap.png")
    return [(f"Heatmap of {metric} over {rows} × {cols}", path,
             f"The two factors that explain the most variance of {code(metric)} over the "
             f"runs: {code(rows)} (η² = {eta_r:.2f}) and {code(cols)} (η² = {eta_c:.2f}){left}. "
             f"Each cell: the mean and n (runs with a value); {scale}."
             + (f" {document.CHAOS_MARK}: the cell holds a chaotic group." if chaos else ""))]


def _draw(out: Path, history, params, table: Table, pairs, parents, curves) -> list:
    """The figures that have data: [(title, path, caption or None)]."""
    lay, by_run = _layout(table, parents)
    chaos = (f"{document.CHAOS_MARK} after a group's name and at the end of its curve: a "
             "chaotic group (see the ranking's footnote); its curves from single seeds are not "
             "findings." if document.chaotic_rows(table) else None)
    figs = [("Learning curves", figures.learning_curves(history, by_run, lay, curves,
                                                        out / "learning_curves.png"), chaos)]
    grad = figures.grad_profiles(history, by_run, lay, out / "grad_norms.png")
    if grad:
        figs.append(("Gradient-norm profiles across layers", grad, chaos))
    return figs + _heatmap(out, params, table, pairs)


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
    fallback = (f"no validation metric (`dataset.val_fraction=0`, no validation split): ranked "
                f"by {code(metric)}, the training set's own score — it measures the fit, not "
                f"generalisation." if metric.startswith("train/") and opts.metric is None
                else None)
    names = metric_names(sel.runs)
    curves, wanted = _history_keys(sel.runs, names, metric, at)
    workers = opts.workers or (8 if uri.startswith(("http://", "https://")) else 1)
    history = _in_run_order(fetch_histories(client, list(sel.runs["run_id"]), wanted,
                                            workers=workers), sel.runs["run_id"])
    per_run = _per_run(sel, params, keys, metric, at, history)
    table = summarize(per_run, keys, metric, at)
    if opts.probe_chaos:
        from . import probe
        found = probe.probe(table, params)
        table.groups = pd.concat([table.groups, found], axis=1)
    else:
        table.groups["chaotic"] = None   # not probed: the column is empty
    parents = nested_parents(params, keys)
    margin = opts.margin if opts.margin is not None else default_margin(metric)
    pairs = paired(table, parents, margin)
    notes = uncontrolled(sel.runs, params, keys)

    name = (provenance.experiment_names(sel) if len(set(sel.experiments.values())) == 1
            else "selection")  # the title: the sweep's name would carry its date
    folder = sel.parent["run_name"] if sel.parent else name
    out = output_dir(opts.output, folder)
    out.mkdir(parents=True, exist_ok=True)
    env_note = provenance.changed_env(provenance.recorded_env(out / "provenance.md"), sel.runs)
    for old in OUTPUTS:  # a previous report's figure must not outlive it (nor be logged)
        (out / old).unlink(missing_ok=True)
    figs = _draw(out, history, params, table, pairs, parents, curves)
    finals = [m for m in names if _FINAL.match(m)]
    blocks = document.blocks(name, sel, table, pairs, notes, figs, finals, parents, fallback,
                             margin, opts.margin is None)
    regen = provenance.regenerate_command(sel, uri, metric, at,
                                          keys if opts.group_by else [], opts.output,
                                          [*(["--margin", f"{opts.margin:g}"]
                                             if opts.margin is not None else []),
                                           *(["--probe-chaos"] if opts.probe_chaos else [])])
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
        to_csv_frame(pairs, keys).to_csv(out / "paired.csv", index=False, float_format="%.10g")

    logged = None
    if sel.parent and opts.log_artifact:
        try:
            client.log_artifacts(sel.parent["run_id"], str(out), artifact_path="report")
            logged = sel.parent["run_id"]
        except Exception as exc:  # noqa: BLE001 - the files are written; logging is a bonus
            logged = f"not logged ({str(exc).splitlines()[0][:120] if str(exc) else exc!r})"
    return out, {"runs": len(per_run), "groups": len(table.groups), "logged": logged,
                 "warnings": len(notes), "env_note": env_note}
