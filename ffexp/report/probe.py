"""The chaos probe (``ffexp-report --probe-chaos``): does a group's result hang on the last bits?

For each group, its first run with a value (in run order: the lowest seed) is trained twice
more in this process with the engine (ffexp.job.app prepare / execute, no tracking), from its
logged params:
    m⁰ = the metric of the rerun from the seed's initial weights W[l],
    m⁺ = the metric of the rerun from W[l]·(1 + ε), ε = PERTURBATION = 1e-12, every layer,
    Δ  = |m⁺ − m⁰|   (read as the report reads its value: final, best, or at epoch N).
A smooth dependence on the initial weights moves m by about ε times its sensitivity, far below
any float tolerance; in a chaotic group, ε grows into a different outcome, as different as
another seed's. The group is **chaotic** when
    Δ > CHAOS_FRACTION · s   and   Δ > FLOAT_FLOOR · max(|m⁰|, |m⁺|, 1),
where s is the std of the group's values over its seeds (0 for a single value): the probe moved
the metric by more than a tenth of what changing the seed does, and by more than rounding. Were
the perturbed rerun an independent draw, Δ would be |N(0, 2s²)| and exceed 0.1·s with
probability 0.94. When exactly one of m⁰, m⁺ has a value (the other diverged to a non-finite
or overflowed value), the group is chaotic; when neither has one, the probe says nothing
(``chaotic`` empty).

Cost: two trainings of one job per group (no tracking), one BLAS thread each, in the report's
process: about 2 × groups × one job's training time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np
import pandas as pd

from .aggregate import Table, lower_is_better
from .design import SEED
from .select import ReportError
from .stats import OVERFLOW

#: the relative perturbation of every initial weight
PERTURBATION = 1e-12
#: Δ above this fraction of the seeds' std marks a group chaotic
CHAOS_FRACTION = 0.1
#: Δ at most this relative size is rounding, never chaos
FLOAT_FLOOR = 1e-6
#: groups.csv's probe columns
COLUMNS = ("chaotic", "probe_seed", "probe_value", "probe_perturbed", "probe_change")


def settings_from_params(params: Mapping[str, str]):
    """The job's Settings from its logged MLflow params (ffexp.tracking.params: the flattened
    resolved config, a dotted alias dropped where it equals its short name); tracking off."""
    import yaml
    from omegaconf import OmegaConf

    from ffexp.job.settings import Settings, TrackingSettings
    from ffexp.launch.config import _writable, to_settings
    from ffexp.tracking.params import ALIASES

    flat = {k: v for k, v in params.items() if v != ""}
    for short, dotted in ALIASES.items():
        if short in flat and dotted not in flat:
            flat[dotted] = flat[short]
        flat.pop(short, None)
    nested: dict = {}
    for key, text in sorted(flat.items()):
        *path, last = key.split(".")
        node = nested
        for part in path:
            node = node.setdefault(part, {})
        try:
            node[last] = yaml.safe_load(text)
        except yaml.YAMLError:
            node[last] = text
    # tracking as a plain dict: the schema node holds _writable's thawed copy of the class
    cfg = OmegaConf.merge(_writable(Settings), nested,
                          {"tracking": dataclasses.asdict(TrackingSettings(enabled=False))})
    return to_settings(cfg)


def _value(result, metric: str, at: str) -> float:
    """The metric of one training, read as the report reads a run (aggregate.run_values):
    the last finite value, the best over epochs, or the value at epoch N; NaN when there is
    none or it is non-finite or beyond ±OVERFLOW."""
    per_epoch = {s.epoch: s.flat().get(metric) for s in result.train.history}
    if result.train.history and metric in result.metrics:
        per_epoch[result.train.history[-1].epoch] = result.metrics[metric]
    values = {e: v for e, v in per_epoch.items() if v is not None and math.isfinite(v)}
    if at == "final":
        v = values[max(values)] if values else math.nan
    elif at == "best":
        pick = min if lower_is_better(metric) else max
        v = pick(values.values()) if values else math.nan
    else:
        v = values.get(int(at.split()[-1]), math.nan)
    return v if abs(v) <= OVERFLOW else math.nan


def rerun(settings, metric: str, at: str, epsilon: float = 0.0) -> float:
    """Train the job of ``settings`` from W[l]·(1 + epsilon) and read its metric."""
    from ffexp.job.app import execute, prepare
    from ffexp.job.blas import limit

    job = prepare(settings)
    if epsilon:
        for W in job.net.weights:
            W *= W.dtype.type(1.0 + epsilon)
    with np.errstate(all="ignore"), limit(settings.train.blas_threads):
        return _value(execute(job), metric, at)


def is_chaotic(m0: float, m1: float, std: float) -> bool | None:
    """The rule of the module doc: None when neither rerun has a value."""
    ok0, ok1 = math.isfinite(m0), math.isfinite(m1)
    if not (ok0 or ok1):
        return None
    if ok0 != ok1:
        return True
    change = abs(m1 - m0)
    spread = std if math.isfinite(std) else 0.0
    return change > CHAOS_FRACTION * spread and change > FLOAT_FLOOR * max(abs(m0), abs(m1), 1.0)


def probe(table: Table, params: pd.DataFrame, progress=None) -> pd.DataFrame:
    """The probe columns (COLUMNS) for each row of table.groups: the seed probed, m⁰, m⁺, Δ and
    the verdict (empty where no run of the group has a value)."""
    runs = table.runs.reset_index(drop=True)
    out = pd.DataFrame({c: pd.Series([None] * len(table.groups), dtype=object)
                        for c in COLUMNS}, index=table.groups.index)
    for i, g in table.groups.iterrows():
        mask = runs["value"].notna()
        for k in table.keys:
            mask &= runs[k].astype(str) == str(g[k])
        if not mask.any():
            continue
        row = int(np.flatnonzero(mask.to_numpy())[0])
        try:
            settings = settings_from_params(params.iloc[row].to_dict())
            m0 = rerun(settings, table.metric, table.at)
            m1 = rerun(settings, table.metric, table.at, PERTURBATION)
        except (ValueError, TypeError) as err:
            raise ReportError(f"--probe-chaos: cannot rerun run {runs.at[row, 'run_name']} "
                              f"from its params: {str(err).splitlines()[0][:200]}") from None
        verdict = is_chaotic(m0, m1, float(g["std"]))
        out.loc[i] = [verdict, runs.at[row, SEED], m0, m1,
                      abs(m1 - m0) if math.isfinite(m0) and math.isfinite(m1) else math.nan]
        if progress:
            progress(i)
    return out
