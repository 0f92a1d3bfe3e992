"""Statistics over seeds: one value per run, then mean, spread, interval and count per group.

One value per run (final, best or at epoch N); per group the mean, the std over seeds and a 95%
interval inside the metric's range (stats.py has the formulas). Groups are ranked by their
mean; groups whose means are equal tie and share a rank.

Comparisons are made within blocks, one factor at a time: the dataset and the task are blocks,
never treatments, and when a factor is compared every other factor is held fixed (a key nested
in the factor, ``init.scale`` in ``init``, varies with it). In each block the best-ranked group
(with n >= MIN_N) is the reference, compared with each other group of the block on their shared
seeds (paired t test, Holm-adjusted over all the report's comparisons; TOST for equivalence
within a stated margin). A block's best set is its reference with every group not shown to be
worse.

Runs that failed, were killed or are still running keep their row and their place in the outcome
counts, but have no value: their last logged number is not a result. Nor is a value that is
non-finite or beyond ±OVERFLOW (an R² of −1e262): such a run counts as failed for ranking, and
its group's ``overflowed`` column counts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ffexp.job.metrics import lower_is_better

from .design import GROUP_OF, SEED
from .select import ReportError
from .stats import (ALPHA, MIN_N, OVERFLOW, difference_range, equivalence_test, holm, interval,
                    metric_range, paired_test, snap)



def _main_metrics() -> dict[str, str]:
    """ffexp.job.metrics.MAIN_METRIC (imported late: it brings scikit-learn, ~1.5 s)."""
    from ffexp.job.metrics import MAIN_METRIC

    return MAIN_METRIC

#: outcome columns, in the order the tables show them; ``overflowed`` counts the runs of a
#: result outcome whose value is non-finite or beyond ±OVERFLOW (no value, failed for ranking)
OUTCOMES = ("finished", "converged", "diverged", "pruned", "failed", "killed", "running",
            "overflowed")
_STATUS = {"FAILED": "failed", "KILLED": "killed", "RUNNING": "running", "SCHEDULED": "running"}
#: outcomes whose final numbers are results (a pruned Optuna trial's training was stopped early)
_RESULT = {"finished", "converged", "diverged"}


def main_metric(task: str) -> str:
    return f"val/{_main_metrics()[task]}"


def outcomes_of(runs: pd.DataFrame) -> pd.Series:
    """finished | converged | diverged | pruned (tag ffexp.outcome) | failed | killed | running
    (status)."""
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
    """--metric as given (``val/accuracy``; a bare ``accuracy`` means ``val/accuracy``, else
    ``train/accuracy``), or the main validation metric of the runs' task — its ``train/`` twin
    when the runs have no validation split (``dataset.val_fraction=0``)."""
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
        if name not in available and "train/" + name[4:] in available:
            name = "train/" + name[4:]  # no validation split (dataset.val_fraction=0)
    elif name not in available and f"val/{name}" in available:
        name = f"val/{name}"
    elif name not in available and f"train/{name}" in available:
        name = f"train/{name}"
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
    return values.where(outcomes_of(runs).isin(_RESULT) & (values.abs() <= OVERFLOW))



@dataclass
class Table:
    """A per-run frame (group keys, seed, outcome, value) and the per-group summary."""

    runs: pd.DataFrame
    groups: pd.DataFrame
    keys: list[str]
    metric: str
    at: str


def summarize(per_run: pd.DataFrame, keys: list[str], metric: str, at: str) -> Table:
    """Group statistics ranked best first; equal means tie (one rank, ``tie`` True) and are
    ordered by the group keys."""
    rows = []
    bounds = metric_range(metric)
    by = per_run.groupby(keys, sort=True, dropna=False) if keys else [((), per_run)]
    for label, g in by:
        label = label if isinstance(label, tuple) else (label,)
        vals = g["value"].dropna().to_numpy()
        mean, std, lo, hi = interval(vals, bounds)
        counts = g["outcome"].value_counts()
        counts["overflowed"] = int((g["outcome"].isin(_RESULT) & g["value"].isna()).sum())
        rows.append({**dict(zip(keys, label)), "n": len(vals), "runs": len(g), "mean": mean,
                     "std": std, "ci_low": lo, "ci_high": hi,
                     **{o: int(counts.get(o, 0)) for o in OUTCOMES}})
    groups = pd.DataFrame(rows)
    # rounded: equal means that differ in the last bits (summation order) tie, keys decide
    order = (groups["mean"] if lower_is_better(metric) else -groups["mean"]).round(12)
    groups = groups.assign(_o=order).sort_values(["_o", *keys], kind="stable", na_position="last")
    o = groups["_o"].reset_index(drop=True)
    first = o.ne(o.shift()) | o.isna()
    rank = pd.Series(np.where(first, np.arange(1, len(o) + 1), np.nan)).ffill().astype(int)
    tie = o.duplicated(keep=False) & o.notna()
    groups = groups.drop(columns="_o").reset_index(drop=True)
    groups.insert(0, "rank", rank.to_numpy())
    groups.insert(1, "tie", tie.to_numpy())
    return Table(per_run, groups, keys, metric, at)


def _verdict(n: int, test: str, diff: float, p_holm: float, p_equiv_holm: float,
             margin: float | None) -> str:
    if n < MIN_N:
        return f"not comparable (n < {MIN_N})"
    if test == "tie":
        return "tie"
    if p_holm < ALPHA:
        return "best is better" if diff > 0 else "other is better"
    if margin is not None and p_equiv_holm < ALPHA:
        return f"equivalent (±{margin:g})"
    return "not shown to differ"


#: keys that are blocks, never treatments: runs are compared only within one dataset and task
BLOCKS = ("dataset", "task", "dataset.name", "dataset.task")


def _root(key: str, parents: dict[str, str]) -> str:
    while key in parents:
        key = parents[key]
    return key


def compared_factors(keys: list[str], parents: dict[str, str] | None = None
                     ) -> list[tuple[str, ...]]:
    """The factors a comparison varies, one at a time: each key that is neither a block
    (BLOCKS) nor nested in another key, together with the keys nested in it (``init`` with
    ``init.scale``: its levels are the combinations that ran)."""
    parents = parents or {}
    return [(k, *(n for n in keys if n in parents and _root(n, parents) == k))
            for k in keys if k not in BLOCKS and k not in parents]


@dataclass
class Block:
    """One family of comparisons: the levels of ``factor`` within one block (every other key
    fixed at ``level``); ``rows`` of table.groups best first, ``ref`` the reference row (None
    when no group of the block has a value)."""

    factor: tuple[str, ...]
    level: dict
    rows: list[int]
    ref: int | None


def blocks_of(table: Table, parents: dict[str, str] | None = None) -> list[Block]:
    """Every (factor, block) whose block holds at least two groups, in the order of
    ``compared_factors`` and then of the block's levels. The reference is the block's
    best-ranked group with n >= MIN_N, else its best-ranked group with a value."""
    out = []
    groups = table.groups
    for factor in compared_factors(table.keys, parents):
        fixed = [k for k in table.keys if k not in factor]
        block_of = groups[fixed].astype(str).agg(tuple, axis=1) if fixed else \
            pd.Series([()] * len(groups), index=groups.index)
        for _, rows in sorted(block_of.groupby(block_of, sort=False).groups.items()):
            rows = sorted(rows)
            if len(rows) < 2:
                continue
            n = groups.loc[rows, "n"].to_numpy()
            ok = [r for r, k in zip(rows, n) if k >= MIN_N] or [r for r, k in zip(rows, n) if k]
            level = {k: groups.at[rows[0], k] for k in fixed}
            out.append(Block(factor, level, rows, ok[0] if ok else None))
    return out


def reference(table: Table) -> int:
    """Row of the best-ranked group with n >= MIN_N (the best group itself unless it has too
    few values), else the best."""
    ok = np.flatnonzero(table.groups["n"].to_numpy() >= MIN_N)
    return int(ok[0]) if len(ok) else 0


def default_margin(metric: str) -> float | None:
    """The equivalence margin when none is given: 0.01 for a metric in [0, 1] (one point of
    accuracy), none otherwise (no equivalence is claimed for a cost without a stated margin)."""
    return 0.01 if metric_range(metric) == (0.0, 1.0) else None


def paired(table: Table, parents: dict[str, str] | None = None,
           margin: float | None = None) -> pd.DataFrame:
    """Within each block (blocks_of), its reference group vs each other group on shared seeds.

    One row per comparison: ``compared`` (the factor, its nested keys after a comma), the
    group's keys, ``ref_<key>`` (the reference group's keys), n of shared seeds, mean
    difference, 95% CI, test, p, Holm-adjusted p (over every row), the TOST p of equivalence
    within ±``margin`` (default_margin when None) and its Holm adjustment, the verdict;
    ``_row`` and ``_ref`` are the rows of table.groups compared (not written to paired.csv)."""
    if len(table.groups) < 2 or not table.keys:
        return pd.DataFrame()
    margin = default_margin(table.metric) if margin is None else margin
    sign = -1.0 if lower_is_better(table.metric) else 1.0
    runs = table.runs.dropna(subset=["value"])
    runs = runs.drop_duplicates([*table.keys, SEED], keep="first")
    label = runs[table.keys].astype(str).agg(" | ".join, axis=1) if len(runs) else None
    by_label = ({k: g.set_index(SEED)["value"] for k, g in runs.groupby(label, sort=True)}
                if len(runs) else {})
    bounds = difference_range(table.metric)
    rows = []
    for block in blocks_of(table, parents):
        if block.ref is None:
            continue
        ref = table.groups.loc[block.ref, table.keys]
        a = by_label.get(" | ".join(str(v) for v in ref), pd.Series())
        for i in block.rows:
            if i == block.ref:
                continue
            row = table.groups.loc[i]
            b = by_label.get(" | ".join(str(v) for v in row[table.keys]), pd.Series())
            shared = sorted(set(a.index) & set(b.index))
            x, y = a.loc[shared].to_numpy(), b.loc[shared].to_numpy()
            scale = float(np.max(np.abs(np.concatenate([x, y])))) if shared else 1.0
            d = np.array([snap(v, scale) for v in sign * (x - y)])
            mean, _, lo, hi = interval(d, bounds)
            enough = len(shared) >= MIN_N
            test, p = paired_test(d) if enough else ("—", np.nan)
            p_eq = equivalence_test(d, margin) if enough and margin is not None else np.nan
            rows.append({"_row": i, "_ref": block.ref, "compared": ", ".join(block.factor),
                         **{k: row[k] for k in table.keys},
                         **{f"ref_{k}": ref[k] for k in table.keys},
                         "shared_seeds": len(shared),
                         "diff": snap(mean, scale) if shared else np.nan, "ci_low": lo,
                         "ci_high": hi, "test": test, "p": p, "p_equiv": p_eq})
    if not rows:
        return pd.DataFrame()
    pairs = pd.DataFrame(rows)
    pairs["p_holm"] = holm(pairs["p"].to_numpy())
    pairs["p_equiv_holm"] = holm(pairs["p_equiv"].to_numpy())
    pairs["margin"] = np.nan if margin is None else margin
    pairs["verdict"] = [_verdict(r.shared_seeds, r.test, r.diff, r.p_holm, r.p_equiv_holm,
                                 margin) for r in pairs.itertuples()]
    return pairs


#: paired.csv's columns after the group's keys and before the ``ref_`` keys / the numbers
NUMBERS = ("shared_seeds", "diff", "ci_low", "ci_high", "test", "p", "p_holm", "p_equiv",
           "p_equiv_holm", "margin", "verdict")


def to_csv_frame(pairs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """paired.csv: the group's keys, ``compared``, the reference's ``ref_<key>``, the numbers."""
    return pairs[[*keys, "compared", *(f"ref_{k}" for k in keys), *NUMBERS]]


#: verdicts that keep a group in its block's best set: not shown to be worse than the best
SAME = ("tie", "not shown to differ")


def best_sets(table: Table, pairs: pd.DataFrame, parents: dict[str, str] | None = None
              ) -> list[tuple[Block, list[int], list[int]]]:
    """Per block (blocks_of): (the block, rows of table.groups in its best set — the reference
    and every group of the block that ties with it, is not shown to differ from it or is
    equivalent to it —, rows that cannot be compared with it). A group without MIN_N values
    is never in a best set, nor one whose values are all non-finite or overflowed (they have
    none); a block where no group has MIN_N values has an empty best set."""
    out = []
    for block in blocks_of(table, parents):
        if block.ref is None or table.groups.at[block.ref, "n"] < MIN_N:
            out.append((block, [], [r for r in block.rows]))
            continue
        mine = (pairs[(pairs["_ref"] == block.ref) & pairs["_row"].isin(block.rows)
                      & (pairs["compared"] == ", ".join(block.factor))]
                if len(pairs) else pairs)
        v = mine["verdict"] if len(mine) else pd.Series(dtype=str)
        same = [block.ref, *mine["_row"][v.isin(SAME) | v.str.startswith("equivalent")]]
        apart = list(mine["_row"][v.str.startswith("not comparable")])
        out.append((block, sorted(same), sorted(apart)))
    return out


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


def nested_parents(params: pd.DataFrame, keys: list[str]) -> dict[str, str]:
    """{nested factor: the factor it is nested in} among the group keys."""
    parent: dict[str, str] = {}
    for k in keys:
        for o in keys:
            if o != k and k not in parent and nested_in(params, k, o):
                parent[k] = o
    return parent


def inert(groups: pd.DataFrame, parents: dict[str, str]) -> pd.DataFrame:
    """Per group row and nested key: True where the key means nothing — it takes one value
    among all groups at that level of its parent (``init.scale`` for ``init`` = he)."""
    out = pd.DataFrame(False, index=groups.index, columns=list(parents))
    for k, p in parents.items():
        out[k] = groups.groupby(p, sort=False)[k].transform("nunique").le(1)
    return out


def heatmap_factors(per_run: pd.DataFrame, params: pd.DataFrame, keys: list[str]
                    ) -> tuple[list[tuple[str, float]], list[tuple[str, str]]]:
    """([(factor, η²)] of the (at most) two factors that explain the most variance of the value,
    nested factors left out; [(nested factor, its parent)]). Ties go to the earlier key."""
    parent = nested_parents(params, keys)
    scored = sorted((-variance_explained(per_run, k), keys.index(k), k)
                    for k in keys if k not in parent)
    return [(k, -s) for s, _, k in scored[:2]], list(parent.items())
