"""The report's statistics over seeds: intervals inside a metric's range, paired tests, Holm.

For a group with values x_1..x_n (one per seed), n >= 3:
    mean = (1/n) Σ x_i,   s = sqrt(Σ (x_i − mean)² / (n − 1)),
    95% CI = [mean ± t_{0.975, n−1} · s / √n] ∩ [lo, hi]      (Student's t, cut to the range)
where [lo, hi] is the metric's range ([0, 1] for accuracy, F1, ROC AUC; [0, ∞) for a cost;
(−∞, 1] for r2). The true mean lies in the range, so cutting the interval there never changes
whether it covers it: the coverage stays that of the t interval. Groups with n < 3 get no
interval and are "not comparable".

The paired comparison of the best group B with a group G uses the seeds both share (n >= 3):
    d_s = ±(x_B,s − x_G,s)  (sign so that d > 0 means B is better),
    p = paired t test, t = mean(d) / (s_d / √n) on n − 1 degrees of freedom, two-sided
        (scipy.stats.ttest_1samp on d, the same as ttest_rel on the two groups' values);
    when every d_s is the same non-zero number the t statistic is undefined (no spread), and
    p = 2 · 2^−n, the exact two-sided sign test (scipy.stats.binomtest) — a zero-width interval
    is not evidence; when every d_s is 0 the groups tie (p = 1).
The k p-values of one report are adjusted together by Holm's step-down method:
    p_(i) sorted ascending,  p̃_(i) = max_{j <= i} min(1, (k − j + 1) · p_(j)).

"Not shown to differ" is not "equal". Equivalence within a margin δ > 0 is tested by two
one-sided tests (TOST) on the same differences:
    H0⁻: mean(d) <= −δ  vs  mean(d) > −δ      (scipy.stats.ttest_1samp(d, −δ, 'greater'))
    H0⁺: mean(d) >= +δ  vs  mean(d) < +δ      (scipy.stats.ttest_1samp(d, +δ, 'less'))
    p_equiv = max(p⁻, p⁺); equivalent at p_equiv < α (the interval [mean ± t_{0.95}·s/√n] lies
    inside (−δ, δ)). With no spread in d the t statistics are undefined and each one-sided test
    is the exact sign test: p = 2^−n if every d_s is inside (−δ, δ), else 1.
The equivalence p-values are Holm-adjusted together, like the difference p-values.

A value that is non-finite or beyond ±OVERFLOW is no result (an R² of −1e262 after the weights
overflowed): its run counts as failed for ranking and its group has one value fewer.
"""

from __future__ import annotations

import math

import numpy as np

#: fewest values for an interval or a comparison
MIN_N = 3
#: the mark of a group the chaos probe (probe.py) found chaotic, in tables and figures
CHAOS_MARK = "†"
#: the largest magnitude a value may have and still count as a result
OVERFLOW = 1e12
ALPHA = 0.05
_UNIT = ("accuracy", "f1", "f1_micro", "f1_macro", "roc_auc", "hamming_loss", "precision",
         "recall")
_NONNEGATIVE = ("cost", "loss", "mse", "mae")


def metric_range(metric: str) -> tuple[float, float]:
    """(lo, hi) a metric's values cannot leave: [0, 1], [0, ∞), (−∞, 1] or unbounded."""
    last = metric.split("/")[-1]
    if last.endswith(_UNIT):
        return 0.0, 1.0
    if last.endswith(_NONNEGATIVE) or metric.startswith(("grad_norm/", "time/")):
        return 0.0, math.inf
    if last == "r2":
        return -math.inf, 1.0
    return -math.inf, math.inf


def difference_range(metric: str) -> tuple[float, float]:
    """The range of a difference of two values of the metric: [−1, 1] for a [0, 1] metric."""
    lo, hi = metric_range(metric)
    return lo - hi, hi - lo


def snap(x: float, scale: float) -> float:
    """0 for a number that is rounding noise next to ``scale`` (3.7e-17 beside 0.96), else x."""
    return 0.0 if abs(x) <= 1e-12 * max(abs(scale), 1e-300) else x


def interval(x, bounds: tuple[float, float] = (-math.inf, math.inf)
             ) -> tuple[float, float, float, float]:
    """(mean, std, lower, upper): the Student-t 95% interval cut to ``bounds`` (the metric's
    range); std NaN for n < 2, the interval NaN for n < MIN_N."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        return (math.nan,) * 4
    mean = float(np.mean(x))
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    scale = float(np.max(np.abs(x)))
    std = snap(float(np.std(x, ddof=1)), scale)
    if n < MIN_N:
        return mean, std, math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    lo, hi = bounds
    return mean, std, max(lo, mean - half), min(hi, mean + half)


def paired_test(d) -> tuple[str, float]:
    """(test name, two-sided p) for paired differences d (n >= MIN_N): see the module doc."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    scale = float(np.max(np.abs(d))) if n else 0.0
    if scale == 0.0:
        return "tie", 1.0
    if snap(float(np.std(d, ddof=1)), scale) == 0.0:
        from scipy.stats import binomtest

        return "sign", float(binomtest(n, n, 0.5).pvalue)
    from scipy.stats import ttest_1samp

    return "paired t", float(ttest_1samp(d, 0.0).pvalue)


def equivalence_test(d, margin: float) -> float:
    """The TOST p that the mean of the paired differences d lies within ±margin (see the
    module doc); d has n >= MIN_N values, margin > 0."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    scale = float(np.max(np.abs(d))) if n else 0.0
    if scale == 0.0 or snap(float(np.std(d, ddof=1)), scale) == 0.0:
        return 2.0 ** -n if bool(np.all(np.abs(d) < margin)) else 1.0
    from scipy.stats import ttest_1samp

    lower = float(ttest_1samp(d, -margin, alternative="greater").pvalue)
    upper = float(ttest_1samp(d, margin, alternative="less").pvalue)
    return max(lower, upper)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    k = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (k - rank) * p[i]))
        out[i] = running
    return out


def fmt_p(p: float) -> str:
    """p-values with two significant digits, '< 0.001' below that, '—' when missing."""
    if p is None or not math.isfinite(p):
        return "—"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"
