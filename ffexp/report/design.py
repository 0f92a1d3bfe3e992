"""The experimental design read back from the runs: which factors were swept, and what else varied.

A factor is a param whose value differs between the selected runs. Hydra flattens the resolved
config, so one override (``activation=tanh``) changes several params (``activation``,
``activation.name``, …); the group keys are a minimal set of varying params that determine all
the others, the contract's short names first. The seed is never a factor: it is what the report
averages over.
"""

from __future__ import annotations

import re
import shlex

import pandas as pd

from .render import code, esc
from .select import ReportError

#: the contract's headline params, preferred as group keys in this order
HEADLINE = ("dataset", "task", "activation", "init", "loss", "optimizer", "lr", "batch_size",
            "hidden_sizes", "epochs")
SEED = "seed"
#: the config group of each short param that is not a group's own choice (ffexp logs these
#: once, without the dotted alias ``optimizer.batch_size`` older stores also carry)
GROUP_OF = {"lr": "optimizer", "batch_size": "optimizer", "hidden_sizes": "model",
            "epochs": "train"}
#: tags that must agree between compared runs, with what a difference means
CONTROL_TAGS = {"mlflow.source.git.commit": "code commit", "ffexp.git_dirty": "uncommitted changes",
                "ffexp.version": "ffexp version"}
#: control tags whose values change on every rerun: the warning counts them, provenance.md
#: names them
VOLATILE_TAGS = {"mlflow.source.git.commit"}


def params_of(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs' params as strings, columns without the ``params.`` prefix, missing as ''."""
    cols = sorted(c for c in runs.columns if c.startswith("params."))
    out = runs[cols].astype(object).where(runs[cols].notna(), "").astype(str)
    out.columns = [c[len("params."):] for c in cols]
    return out


def _seed_aliases(params: pd.DataFrame) -> set[str]:
    """``seed`` and every param equal to it in every run (e.g. a dotted ``train.seed``)."""
    if SEED not in params:
        return set()
    return {c for c in params if (params[c] == params[SEED]).all()}


def _determined(params: pd.DataFrame, keys: list[str], col: str) -> bool:
    """True when ``col`` has one value within every group of ``keys``."""
    if not keys:
        return params[col].nunique() <= 1
    return bool((params.groupby(keys, sort=True)[col].nunique() <= 1).all())


def _order(names) -> list[str]:
    head = [h for h in HEADLINE if h in names]
    return head + sorted(n for n in names if n not in HEADLINE)


def swept_keys(command: str | None) -> set[str]:
    """Config keys a sweep's command line gives several values (``a=x,y``, ``range(…)``, …)."""
    if not command:
        return set()
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    keys = set()
    for tok in tokens:
        key, eq, value = tok.partition("=")
        key = key.lstrip("+~")
        if eq and not tok.startswith("-") and not key.startswith("hydra") and (
                "," in value or re.match(r"(range|choice|glob|interval)\(", value)):
            keys.add(key)
    return keys


def _swept(param: str, swept: set[str]) -> bool:
    last = param.split(".")[-1]
    return any(param == k or param.startswith(k + ".") or last == k.split(".")[-1]
               for k in swept)


def detect_group_keys(params: pd.DataFrame, swept: set[str] | None = None) -> list[str]:
    """The factors: a minimal set of varying params that determines every varying param —
    among those the sweep's command line names (``swept``) when it is known."""
    seeds = _seed_aliases(params)
    varying = [c for c in params if c not in seeds and params[c].nunique() > 1]
    if swept:
        varying = [c for c in varying if _swept(c, swept)] or varying
    keys: list[str] = []
    for col in _order(varying):
        if not _determined(params, keys, col):
            keys.append(col)
    return keys


def check_group_keys(keys: list[str], params: pd.DataFrame) -> list[str]:
    """``--group-by`` names validated against the params present (ReportError lists them)."""
    unknown = [k for k in keys if k not in params]
    if unknown:
        raise ReportError(f"unknown group key {unknown[0]!r} (params: {', '.join(_order(params))})")
    return keys


def uncontrolled(runs: pd.DataFrame, params: pd.DataFrame, keys: list[str]) -> list[str]:
    """What differs between the compared runs besides the group keys and the seed.

    - a param that varies and is not a function of the group keys (with --group-by, or when
      the sweep's command line says which keys were swept);
    - a code commit, dirty flag or ffexp version that is not the same for every run.
    """
    notes = []
    seeds = _seed_aliases(params)
    for col in _order(params):
        if col in keys or col in seeds or params[col].nunique() <= 1:
            continue
        if not _determined(params, keys, col):
            values = ", ".join(esc(v) for v in sorted(params[col].unique())[:6])
            notes.append(f"param {code(col)} varies within groups ({values})")
    for tag, what in CONTROL_TAGS.items():
        col = f"tags.{tag}"
        if col in runs:
            values = sorted(runs[col].fillna("(none)").astype(str).unique())
            if len(values) > 1 and tag in VOLATILE_TAGS:
                counts = runs[col].fillna("(none)").astype(str).value_counts()
                runs_per = " and ".join(str(n) for n in sorted(counts, reverse=True))
                notes.append(f"{what} differs ({code(tag)}: {len(values)} values, in {runs_per} "
                             "runs; which run ran which in provenance.md)")
            elif len(values) > 1:
                notes.append(f"{what} differs ({code(tag)}: "
                             f"{', '.join(esc(v) for v in values[:6])})")
    return notes


def _natural(value: str) -> tuple:
    """Sort key: numbers by value (2 before 10), before text."""
    try:
        x = float(value)
    except ValueError:
        return (1, 0.0, value)
    return (0, x, value) if x == x else (1, 0.0, value)


def run_order(params: pd.DataFrame, keys: list[str], run_ids) -> list[int]:
    """Row positions sorted by the factors, then the seed, then the run id (a tie-break only:
    a rerun of the sweep gets new ids but the same order)."""
    cols = [*keys, SEED] if SEED in params else list(keys)
    ids = list(run_ids)
    rows = [(*(_natural(params[c].iat[i]) for c in cols), ids[i]) for i in range(len(ids))]
    return sorted(range(len(ids)), key=rows.__getitem__)
