"""report.md's text: group labels, the tables, the warnings, the methods, in reading order.

Everything that comes from the store goes through ``esc`` or ``code`` (render.py), so a run
name or a param value cannot inject markup into report.md or report.html.
"""

from __future__ import annotations

import pandas as pd

from . import provenance
from .aggregate import OUTCOMES, Table, best_sets, inert, lower_is_better
from .design import SEED
from .render import code, esc, fmt
from .stats import ALPHA, CHAOS_MARK, MIN_N, OVERFLOW, fmt_p, metric_range

_RESULT = ("finished", "converged", "diverged")


def group_labels(table: Table, parents: dict[str, str]) -> list[str]:
    """One plain-text label per row of table.groups, ``k=v`` for every key that means
    something there (a nested key is left out where it is inert)."""
    if not table.keys:
        return ["all runs"]
    hide = inert(table.groups, parents)
    return [", ".join(f"{k}={row[k]}" for k in table.keys
                      if not (k in hide and hide.at[i, k]))
            for i, row in table.groups.iterrows()]


def run_labels(table: Table, labels: list[str]) -> pd.Series:
    """Each per-run row's group label (index of table.runs)."""
    if not table.keys:
        return pd.Series(labels[0], index=table.runs.index)
    of = {tuple(str(v) for v in row[table.keys]): lab
          for (_, row), lab in zip(table.groups.iterrows(), labels)}
    return table.runs[table.keys].astype(str).apply(lambda r: of[tuple(r)], axis=1)


def _key_cells(row, keys, hidden) -> list[str]:
    return ["" if hidden.get(k, False) else esc(row[k]) for k in keys]


def fmt_pm(mean: float, std: float) -> str:
    """``mean ± std`` in one format (0.9623 ± 0.0005, not 0.9623 ± 5.414e-04)."""
    m = fmt(mean)
    if std != std:  # NaN: a single value
        return m
    return f"{m} ± {std:.4f}" if "e" not in m and m != "—" else f"{m} ± {fmt(std)}"


def _ci(g) -> str:
    if g["n"] < MIN_N:
        return f"— (n < {MIN_N})" if g["n"] else "—"
    return f"[{fmt(g['ci_low'])}, {fmt(g['ci_high'])}]"




def chaotic_rows(table: Table) -> set[int]:
    """Rows of table.groups the chaos probe marked chaotic (none when it did not run)."""
    if "chaotic" not in table.groups:
        return set()
    return {i for i, v in table.groups["chaotic"].items() if v is True}


def _mark(text: str, on: bool) -> str:
    return f"{text} {CHAOS_MARK}" if on else text


def chaos_note(table: Table) -> str | None:
    """The footnote under the ranking: what the probe found, or None when it did not run."""
    from .probe import CHAOS_FRACTION, PERTURBATION

    if "probe_change" not in table.groups:
        return None
    how = (f"Chaos probe (`--probe-chaos`): one seed per group rerun from its initial weights "
           f"and from W[l]·(1 + {PERTURBATION:g}); a group is chaotic when the metric moves "
           f"by more than {CHAOS_FRACTION:g} × its seeds' std (and more than rounding).")
    rows = sorted(chaotic_rows(table))
    if not rows:
        probed = int(table.groups["chaotic"].notna().sum())
        return f"{how} No group is chaotic ({probed} probed)."
    g = table.groups
    said = "; ".join(
        f"{esc(', '.join(f'{k}={g.at[i, k]}' for k in table.keys))} (seed {esc(g.at[i, 'probe_seed'])}: "
        f"{fmt(g.at[i, 'probe_value'])} → {fmt(g.at[i, 'probe_perturbed'])})" for i in rows)
    return (f"{CHAOS_MARK} **chaotic**: {how} {len(rows)} of {len(g)} groups are: {said}. "
            "Their single-seed values (the runs table, the curves) are not findings: a last-bit "
            "difference, such as another BLAS kernel, gives others; only their means over "
            "seeds are compared.")


def _rank_table(table: Table, hide: pd.DataFrame):
    k = table.keys
    shown = [o for o in OUTCOMES if o in _RESULT or table.groups[o].any()]
    chaos = chaotic_rows(table)
    rows = [[_mark(f"{g['rank']}=" if g["tie"] else str(g["rank"]), i in chaos),
             *_key_cells(g, k, hide.loc[i].to_dict() if len(hide.columns) else {}),
             str(g["n"]), str(g["runs"]), fmt(g["mean"]), fmt(g["std"]), _ci(g),
             *(str(g[o]) for o in shown)] for i, g in table.groups.iterrows()]
    return ["rank", *map(esc, k), "n", "runs", "mean", "std", "95% CI", *shown], rows


def _level(row, keys, hidden) -> str:
    """A group's levels of ``keys``, comma-separated, inert ones left out."""
    return ", ".join(esc(row[k]) for k in keys if not hidden.get(k, False)) or "—"


def _pair_table(table: Table, pairs: pd.DataFrame, hide: pd.DataFrame):
    k = table.keys
    rows = []
    for _, p in pairs.iterrows():
        hidden = hide.loc[p["_row"]].to_dict() if len(hide.columns) else {}
        ref_hidden = hide.loc[p["_ref"]].to_dict() if len(hide.columns) else {}
        factor = p["compared"].split(", ")
        ci = (f"[{fmt(p['ci_low'])}, {fmt(p['ci_high'])}]" if p["shared_seeds"] >= MIN_N
              else "—")
        ref = table.groups.loc[p["_ref"]]
        rows.append([code(factor[0]), *_key_cells(p, k, hidden), _level(ref, factor, ref_hidden),
                     str(p["shared_seeds"]), fmt(p["diff"]), ci, p["test"], fmt_p(p["p"]),
                     fmt_p(p["p_holm"]), fmt_p(p["p_equiv_holm"]), p["verdict"]])
    return ["compared", *map(esc, k), "reference", "shared seeds", "difference", "95% CI",
            "test", "p", "p (Holm)", "p equiv. (Holm)", "verdict"], rows


def _best_set_items(table: Table, pairs: pd.DataFrame, labels: list[str], parents) -> list[str]:
    """One line per block: the factor, the block's fixed levels, its best set."""
    out = []
    hide = inert(table.groups, parents)
    for block, same, apart in best_sets(table, pairs, parents):
        where = ", ".join(f"{k}={block.level[k]}" for k in block.level
                          if not (k in hide and hide.at[block.rows[0], k]))
        head = f"{code(block.factor[0])}" + (f" within {esc(where)}" if where else "")
        levels = lambda rows: "; ".join(  # noqa: E731
            _level(table.groups.loc[r], block.factor,
                   hide.loc[r].to_dict() if len(hide.columns) else {}) for r in rows)
        chaos = chaotic_rows(table)
        marked = lambda rows: "; ".join(  # noqa: E731
            _mark(levels([r]), r in chaos) for r in rows)
        body = (f"{marked(same)} ({len(same)} of {len(block.rows)})" if same
                else f"none (no group with {MIN_N} values)")
        out.append(f"{head}: {body}"
                   + (f"; not comparable with the reference: {levels(apart)}"
                      if apart and same else ""))
    return out


def _final_table(table: Table, runs: pd.DataFrame, labels: list[str], finals: list[str]):
    label = run_labels(table, labels)
    ok = table.runs["outcome"].isin(_RESULT).to_numpy()
    rows = []
    for group in labels:
        mask = (label == group).to_numpy() & ok
        cells = []
        for m in finals:
            v = runs.loc[mask, f"metrics.{m}"].astype(float).dropna()
            cells.append("—" if v.empty else fmt_pm(v.mean(), v.std(ddof=1) if len(v) > 1
                                                    else float("nan")))
        rows.append([esc(group), *cells])
    return ["group", *map(esc, finals)], rows


def _run_table(table: Table):
    k = table.keys
    chaos = {tuple(str(table.groups.at[i, c]) for c in k) for i in chaotic_rows(table)}
    return (["run", *map(esc, k), "seed", "outcome", f"{esc(table.metric)} ({table.at})"],
            [[esc(r["run_name"]), *(esc(r[c]) for c in k), esc(r[SEED]), r["outcome"],
              _mark(fmt(r["value"]), tuple(str(r[c]) for c in k) in chaos)]
             for _, r in table.runs.iterrows()])


def _sign_note(pairs: pd.DataFrame) -> str:
    """What a sign-test verdict means when it cannot reach significance with so few seeds."""
    weak = pairs[(pairs["test"] == "sign") & (pairs["p_holm"] >= ALPHA)]
    if not len(weak):
        return ""
    n = int(weak["shared_seeds"].min())
    return (f" {len(weak)} group(s) differ from the best by the same amount on every shared "
            f"seed: with no spread there is no t test, and the sign test's smallest p with "
            f"{n} seeds is 2·2^−{n} = {2.0 ** (1 - n):.2g}, so they count as not shown to "
            "differ for want of seeds, not because they agree — more seeds would decide.")


def seed_warning(table: Table) -> str | None:
    """The warning for groups with fewer than MIN_N values (None when every group has enough)."""
    n = table.groups["n"]
    if len(table.groups) and n.max() < MIN_N:
        seeds = "a single seed" if n.max() <= 1 else f"at most {n.max()} seeds"
        return (f"every group has {seeds} (n < {MIN_N}): no interval, and the groups **cannot "
                f"be compared** — a difference between them may be seed noise. Rerun the sweep "
                f"with {MIN_N} or more seeds (e.g. `seed=0,1,2`).")
    few = int((n < MIN_N).sum())
    if few:
        return (f"{few} of {len(n)} groups have fewer than {MIN_N} runs with a value: they have "
                "no interval and are not comparable (marked in the tables).")
    return None


def methods(metric: str, has_pairs: bool, margin: float | None = None,
            default: bool = True) -> list[str]:
    """The statistical methods, as report.md states them (``margin``: the equivalence margin,
    ``default`` when it was not given)."""
    lo, hi = metric_range(metric)
    rng = (f"cut to the range of {code(metric)}, {f'[{lo:g}' if lo > -1e300 else '(−∞'}, "
           f"{f'{hi:g}]' if hi < 1e300 else '∞)'} (the true mean lies in it, so the cut keeps "
           "the coverage)" if (lo, hi) != (float("-inf"), float("inf")) else "")
    items = [f"Interval: 95% Student's t over seeds, mean ± t(0.975, n−1)·s/√n{', ' + rng if rng else ''}; "
             f"none for a group with n < {MIN_N} (such a group is not comparable).",
             f"Failed for ranking: a value that is non-finite or beyond ±{OVERFLOW:g} is no "
             "result (column `overflowed`); its group has one value fewer.",
             "Ties: groups with equal means share a rank, marked `=`; their order is by the "
             "factors' values."]
    if has_pairs:
        items += ["Blocks: groups are compared only within a block — the same dataset and "
                  "task, and the same level of every factor but the one compared (a key nested "
                  "in it varies with it); one factor at a time.",
                  f"Paired comparison: in each block, its best group (with at least {MIN_N} "
                  "values) against each other group of the block on the seeds both share (at "
                  f"least {MIN_N}): paired t test, two-sided; where the "
                  "differences are the same on every seed (no spread, so no t) the exact sign "
                  "test, p = 2·2⁻ⁿ; equal on every seed: a tie (scipy.stats ttest_1samp on "
                  "the differences, binomtest).",
                  "Equivalence: two one-sided t tests (TOST) that the mean difference lies "
                  f"within ±{margin:g}" + (" (the default margin of a metric in [0, 1]: one "
                                           "point)" if default else "") +
                  "; a group is \"equivalent\" only if they reject at Holm-adjusted p < "
                  f"{ALPHA}, otherwise \"not shown to differ\", which is not a claim of no "
                  "difference." if margin is not None else
                  "Equivalence: no margin is stated for this metric (pass --margin), so no "
                  "group is claimed equivalent; \"not shown to differ\" is not a claim of no "
                  "difference.",
                  "Multiple comparisons: Holm's step-down correction over all the comparisons "
                  f"of this report; a difference counts at Holm-adjusted p < {ALPHA}.",
                  "Best set of a block: its best group and every group of the block that ties "
                  "with it, is not shown to differ from it or is equivalent to it."]
    return items + ["Numbers: 4 decimals; differences below 10⁻¹² of the values (float "
                    "rounding) are 0.",
                    "Figures: bands of ±1 std over seeds, geometric (exp(mean log ± std log)) "
                    "on log axes and cut to the metric's range on linear ones; one legend names "
                    "every group."]


def blocks(name, sel, table: Table, pairs, notes, figs, finals, parents, fallback,
           margin: float | None = None, default_margin: bool = True) -> list:
    """The report's blocks, in reading order (see render.py); nothing a rerun of the sweep
    changes (that is provenance.py's)."""
    keys, metric, at = table.keys, table.metric, table.at
    labels = group_labels(table, parents)
    hide = inert(table.groups, parents)
    direction = "lower" if lower_is_better(metric) else "higher"
    out = [("h", 1, f"ffexp report: {esc(name)}")]
    out += [("warn", "uncontrolled comparison — the runs differ in more than the swept "
                     "factors and the seed: " + "; ".join(notes))] if notes else []
    few = seed_warning(table)
    out += [("warn", few)] if few else []
    out += [("warn", fallback)] if fallback else []
    out += [("p", f"{len(table.runs)} runs in {len(table.groups)} groups by "
                  f"{', '.join(map(code, keys)) or '(no factor varies)'}, "
                  f"ranked by {code(metric)} ({at}, {direction} is better)."),
            ("h", 2, "Ranking"), ("table", *_rank_table(table, hide)),
            ("p", "n: runs with a value (finished, converged or diverged); runs: all runs "
                  "of the group, whatever their outcome; running: still RUNNING in the store "
                  "(a live job, or a process that died without closing its run). "
                  f"95% CI: Student's t over seeds inside the metric's range (none for n < "
                  f"{MIN_N}); `=` marks a tie. A blank factor is one that means nothing "
                  "for that group (nested in another factor and never varied there).")]
    note = chaos_note(table)
    out += [("p", note)] if note else []
    if len(pairs):
        out += [("h", 2, "Paired comparisons within blocks"),
                ("p", "Each factor is compared within blocks: the same dataset and task and the "
                      "same level of every other factor. In each block the best group (with "
                      f"{MIN_N} or more values) is the reference; difference = reference − "
                      "other on the seeds both share (sign so that > 0 means the reference is "
                      "better); p from a paired t test (sign test where the differences have "
                      "no spread) and p equiv. from the equivalence test (TOST), both adjusted "
                      "for the comparisons by Holm's method."),
                ("table", *_pair_table(table, pairs, hide)),
                ("p", f"**Best sets** (per block: the reference and the groups not shown to be "
                      f"worse at Holm-adjusted p < {ALPHA}):" + _sign_note(pairs)),
                ("ul", _best_set_items(table, pairs, labels, parents))]
    out += [("h", 2, "Final metrics (mean ± std over seeds)"),
            ("table", *_final_table(table, sel.runs, labels, finals)), ("h", 2, "Figures")]
    for title, path, caption in figs:
        out += [*([("h", 3, title)] if path else []), *([("p", caption)] if caption else []),
                *([("img", title, path.name)] if path else [])]
    return out + [("h", 2, "Runs"), ("table", *_run_table(table)),
                  ("h", 2, "Statistical methods"), ("ul", methods(metric, bool(len(pairs)), margin, default_margin)),
                  ("h", 2, "Selection"), ("ul", provenance.stable_items(sel))]
