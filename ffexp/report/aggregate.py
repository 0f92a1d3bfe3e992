"""Statistics over seeds: one value per run, then mean, spread, interval and count per group.

For a group with values x_1..x_n (one per seed):
    mean = (1/n) Σ x_i,   s = sqrt(Σ (x_i − mean)² / (n − 1)),
    95% CI = mean ± t_{0.975, n−1} · s / √n          (Student's t; none for n < 2).
The paired comparison of the best group B with a group G uses the seeds both share:
    d_s = ±(x_B,s − x_G,s)  (sign so that d > 0 means B is better),  then the same interval on d.
Runs that failed, were killed or are still running keep their row and their place in the outcome
counts, but have no value: their last logged number is not a result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import GROUP_OF, SEED
from .select import ReportError



def _main_metrics() -> dict[str, str]:
    """ffexp.metrics.MAIN_METRIC (imported late: it brings scikit-learn, ~1.5 s)."""
    from ffexp.metrics import MAIN_METRIC

    return MAIN_METRIC

#: outcome columns, in the order the tables show them
OUTCOMES = ("finished", "converged", "diverged", "failed", "killed", "running")
_STATUS = {"FAILED": "failed", "KILLED": "killed", "RUNNING": "running", "SCHEDULED": "running"}
#: outcomes whose final numbers are results
_RESULT = {"finished", "converged", "diverged"}
_LOWER = ("cost", "loss", "mse", "mae", "hamming_loss")


def main_metric(task: str) -> str:
    return f"val/{_main_metrics()[task]}"


def lower_is_better(metric: str) -> bool:
    return metric.split("/")[-1].endswith(_LOWER)


def outcomes_of(runs: pd.DataFrame) -> pd.Series:
    """finished | converged | diverged (tag ffexp.outcome) | failed | killed | running (status)."""
    tag = runs.get("tags.ffexp.outcome", pd.Series("", index=runs.index)).fillna("")
    status = runs["status"].map(_STATUS).fillna("")
    out = status.where(status != "", tag.where(tag != "", "finished"))
    return out.where(~tag.isin(["failed", "killed"]), tag)


def metric_names(runs: pd.DataFrame) -> list[str]:
    return sorted(c[len("metrics."):] for c in runs.columns if c.startswith("metrics."))


def _compact(names: list[str]) -> list[str]:
    """Per-layer names folded: grad_norm/W1, grad_norm/W2 -> grad_norm/W{1..2}."""
    layers: dict[str, list[int]] = {}
    out = []
    for n in names:
        m = re.fullmatch(r"(.*?)(\d+)", n)
        if m:
            layers.setdefault(m.group(1), []).append(int(m.group(2)))
        else:
            out.append(n)
    out += [f"{p}{{{min(v)}..{max(v)}}}" if len(v) > 1 else f"{p}{v[0]}" for p, v in layers.items()]
    return sorted(out)


def common_metric(runs: pd.DataFrame, tasks: list[str]) -> str | None:
    """A validation metric every task of the runs logged: one of their main metrics, else
    val/accuracy, else the first such metric by name; None when they share none."""
    task = runs["params.task"]
    common = None
    for t in tasks:
        sub = runs[task == t]
        have = {m for m in metric_names(runs)
                if m.startswith("val/") and sub[f"metrics.{m}"].notna().any()}
        common = have if common is None else common & have
    preferred = [main_metric(t) for t in tasks if t in _main_metrics()] + ["val/accuracy"]
    return next((m for m in preferred if m in common), min(common, default=None))


def resolve_metric(name: str | None, runs: pd.DataFrame) -> str:
    """--metric as given (``val/accuracy``; a bare ``accuracy`` means ``val/accuracy``), or the
    main validation metric of the runs' task."""
    available = metric_names(runs)
    if name is None:
        tasks = sorted(set(runs.get("params.task", pd.Series(dtype=str)).dropna()))
        if not tasks or (len(tasks) == 1 and tasks[0] not in _main_metrics()):
            raise ReportError(f"cannot choose a default metric for tasks {tasks or ['(none)']}; "
                              "pass --metric")
        if len(tasks) > 1:
            common = common_metric(runs, tasks)
            hint = (f"pass one common to them, e.g. --metric {common}" if common
                    else "pass --metric (no validation metric is common to them)")
            raise ReportError(f"cannot choose a default metric: the runs mix the tasks "
                              f"{', '.join(tasks)}; {hint}")
        name = main_metric(tasks[0])
    elif name not in available and f"val/{name}" in available:
        name = f"val/{name}"
    if name not in available:
        raise ReportError(f"unknown metric {name!r} (metrics: {', '.join(_compact(available))})")
    return name


def run_values(runs: pd.DataFrame, metric: str, at: str, history: pd.DataFrame | None) -> pd.Series:
    """One number per run: the final value, the best over epochs, or the value at ``epoch N``."""
    if at == "final":
        values = runs[f"metrics.{metric}"].astype(float)
    else:
        h = history[history["key"] == metric]
        if at == "best":
            g = h.groupby("run_id")["value"]
            per = g.min() if lower_is_better(metric) else g.max()
        else:
            step = int(at.split()[-1])
            per = h[h["step"] == step].set_index("run_id")["value"]
        values = runs["run_id"].map(per).astype(float)
    return values.where(outcomes_of(runs).isin(_RESULT))


def t_interval(x: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, std, lower, upper) of the 95% Student-t interval; NaN where n is too small."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        return (np.nan,) * 4
    mean = float(np.mean(x))
    if n < 2:
        return mean, np.nan, np.nan, np.nan
    from scipy.stats import t

    std = float(np.std(x, ddof=1))
    if std <= 1e-12 * max(1.0, abs(mean)):  # equal values up to rounding: say 0, not 1e-16
        std = 0.0
    half = float(t.ppf(0.975, n - 1)) * std / np.sqrt(n)
    return mean, std, float(mean - half), float(mean + half)


@dataclass
class Table:
    """A per-run frame (group keys, seed, outcome, value) and the per-group summary."""

    runs: pd.DataFrame
    groups: pd.DataFrame
    keys: list[str]
    metric: str
    at: str


def summarize(per_run: pd.DataFrame, keys: list[str], metric: str, at: str) -> Table:
    """Group statistics ranked best first (ties broken by the group keys' order)."""
    rows = []
    by = per_run.groupby(keys, sort=True, dropna=False) if keys else [((), per_run)]
    for label, g in by:
        label = label if isinstance(label, tuple) else (label,)
        vals = g["value"].dropna().to_numpy()
        mean, std, lo, hi = t_interval(vals)
        counts = g["outcome"].value_counts()
        rows.append({**dict(zip(keys, label)), "n": len(vals), "runs": len(g), "mean": mean,
                     "std": std, "ci_low": lo, "ci_high": hi,
                     **{o: int(counts.get(o, 0)) for o in OUTCOMES}})
    groups = pd.DataFrame(rows)
    # rounded: equal means that differ in the last bits (summation order) tie, keys decide
    order = (groups["mean"] if lower_is_better(metric) else -groups["mean"]).round(12)
    groups = groups.assign(_o=order).sort_values(["_o", *keys], kind="stable", na_position="last")
    groups = groups.drop(columns="_o").reset_index(drop=True)
    groups.insert(0, "rank", range(1, len(groups) + 1))
    return Table(per_run, groups, keys, metric, at)


def paired(table: Table) -> pd.DataFrame:
    """Best group vs each other group on shared seeds: n, mean difference, 95% CI, verdict."""
    if len(table.groups) < 2 or not table.keys:
        return pd.DataFrame()
    sign = -1.0 if lower_is_better(table.metric) else 1.0
    runs = table.runs.dropna(subset=["value"])
    runs = runs.drop_duplicates([*table.keys, SEED], keep="first")
    label = runs[table.keys].astype(str).agg(" | ".join, axis=1)
    by_label = {k: g.set_index(SEED)["value"] for k, g in runs.groupby(label, sort=True)}
    best = " | ".join(str(v) for v in table.groups.loc[0, table.keys])
    rows = []
    for _, row in table.groups.iloc[1:].iterrows():
        other = " | ".join(str(v) for v in row[table.keys])
        a, b = by_label.get(best, pd.Series()), by_label.get(other, pd.Series())
        shared = sorted(set(a.index) & set(b.index))
        d = sign * (a.loc[shared].to_numpy() - b.loc[shared].to_numpy())
        mean, _, lo, hi = t_interval(d)
        verdict = ("—" if len(shared) < 2 else "best is better" if lo > 0
                   else "indistinguishable" if hi >= 0 else "other is better")
        rows.append({**{k: row[k] for k in table.keys}, "shared_seeds": len(shared),
                     "diff": mean, "ci_low": lo, "ci_high": hi, "verdict": verdict})
    return pd.DataFrame(rows)


def variance_explained(per_run: pd.DataFrame, key: str) -> float:
    """η² of a factor: the share of the values' variance between its levels,
    Σ_levels n_j (mean_j − mean)² / Σ_runs (x − mean)²; 0 when the values do not vary."""
    v = per_run.dropna(subset=["value"])
    x = v["value"].astype(float)
    total = float(((x - x.mean()) ** 2).sum())
    if total <= 1e-12 * max(1.0, float((x ** 2).sum())):
        return 0.0
    g = x.groupby(v[key])
    return float((g.count() * (g.mean() - x.mean()) ** 2).sum() / total)


def nested_in(params: pd.DataFrame, a: str, b: str) -> bool:
    """Factor ``a`` is nested in ``b``: ``a`` is set inside ``b``'s config group (it, or a param
    equal to it in every run, is named ``b.…``) and not every combination of their levels ran —
    as ``init.scale`` varies only with ``init`` = random, ``optimizer.batch_size`` only with
    ``optimizer`` = minibatch."""
    inside = GROUP_OF.get(a) == b or any(c.startswith(b + ".") and (params[c] == params[a]).all()
                                         for c in params)
    crossed = len(params.groupby([a, b]).size()) == params[a].nunique() * params[b].nunique()
    return inside and not crossed


def heatmap_factors(per_run: pd.DataFrame, params: pd.DataFrame, keys: list[str]
                    ) -> tuple[list[tuple[str, float]], list[tuple[str, str]]]:
    """([(factor, η²)] of the (at most) two factors that explain the most variance of the value,
    nested factors left out; [(nested factor, its parent)]). Ties go to the earlier key."""
    parent: dict[str, str] = {}
    for k in keys:
        for o in keys:
            if o != k and k not in parent and nested_in(params, k, o):
                parent[k] = o
    scored = sorted((-variance_explained(per_run, k), keys.index(k), k)
                    for k in keys if k not in parent)
    return [(k, -s) for s, _, k in scored[:2]], list(parent.items())
