"""Statistics the chapters report: means with confidence intervals over seeds, the
fraction of a gap that a treatment closes, log-log slopes, best learning rate per batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval."""
    value: float
    low: float
    high: float
    n: int
    diverged: int = 0  # runs (seeds) left out because they diverged

    @property
    def missing(self) -> str | None:
        """Why there is no value, in words (None when there is one): every run
        diverged, there was no run, or the quantity is undefined (e.g. a zero gap)."""
        if self.n > 0 and np.isfinite(self.value):
            return None
        if self.diverged:
            return diverged_text(self.diverged, self.n + self.diverged)
        return "no run finished" if self.n == 0 else "undefined for these runs"

    def fmt(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        if self.missing is not None:
            return self.missing
        note = (f"; {diverged_text(self.diverged, self.n + self.diverged)}"
                if self.diverged else "")
        if self.n < 2 or not np.isfinite(self.low):
            return f"{self.value * scale:.{digits}f}{unit} (n={self.n}, no interval{note})"
        return (f"{self.value * scale:.{digits}f}{unit} "
                f"[{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
                + (f" ({note[2:]})" if note else ""))


def diverged_text(diverged: int, total: int, unit: str = "seeds") -> str:
    """"diverged in 2 of 3 seeds" (or "in all 3 seeds")."""
    if total and diverged == total and total > 2:
        return f"diverged in all {total} {unit}"
    return f"diverged in {diverged} of {total} {unit}"


def mean_ci_runs(values: Sequence[float], diverged: Sequence[bool] | None = None,
                 level: float = 0.95) -> Estimate:
    """:func:`mean_ci` over the runs that did not diverge; runs flagged ``diverged``, or
    whose value is not finite, are counted in ``Estimate.diverged`` instead of averaged."""
    v = np.asarray(values, dtype=float)
    bad = ~np.isfinite(v)
    if diverged is not None:
        bad |= np.asarray(diverged, dtype=bool)
    e = mean_ci(v[~bad], level)
    return Estimate(e.value, e.low, e.high, e.n, int(bad.sum()))


def mean_ci(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean and Student-t confidence interval (seeds are few, so not a normal interval)."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    n = len(v)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    m = float(v.mean())
    if n == 1:
        return Estimate(m, float("nan"), float("nan"), 1)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return Estimate(m, m - half, m + half, n)


def gap_closure(small: Sequence[float], large: Sequence[float], treated: Sequence[float],
                level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> Estimate:
    """Fraction of the gap between ``small`` (e.g. small-batch SGD) and ``large`` (e.g.
    full-batch GD) that ``treated`` (GD + penalty) closes: (T − L)/(S − L), with a
    percentile bootstrap interval resampling the seeds of each arm independently."""
    s, l_, t = (np.asarray(a, dtype=float) for a in (small, large, treated))

    def frac(s_: np.ndarray, l2: np.ndarray, t_: np.ndarray) -> np.ndarray:
        gap = s_.mean(-1) - l2.mean(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (t_.mean(-1) - l2.mean(-1)) / gap

    point = float(frac(s, l_, t))
    if min(len(s), len(l_), len(t)) < 2:
        return Estimate(point, float("nan"), float("nan"), min(len(s), len(l_), len(t)))
    g = np.random.default_rng(seed)
    boots = frac(s[g.integers(0, len(s), (n_boot, len(s)))],
                 l_[g.integers(0, len(l_), (n_boot, len(l_)))],
                 t[g.integers(0, len(t), (n_boot, len(t)))])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(point, float(lo), float(hi), min(len(s), len(l_), len(t)))


@dataclass(frozen=True)
class Slope:
    slope: float
    stderr: float
    intercept: float
    low: float
    high: float
    detectable: float = float("nan")
    """The smallest true slope the fit detects as above zero (two-sided, at the interval's
    level) with 80% power, at this number of points and this scatter."""


def loglog_slope(x: Sequence[float], y: Sequence[float], level: float = 0.95) -> Slope:
    """Least-squares slope of log y on log x, with the fit's standard error and a
    Student-t interval."""
    from scipy import stats

    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    ok = np.isfinite(lx) & np.isfinite(ly)
    lx, ly = lx[ok], ly[ok]
    if len(lx) < 3:
        raise ValueError(f"a slope with an error needs at least 3 points, got {len(lx)}")
    res = stats.linregress(lx, ly)
    dof = len(lx) - 2
    half = float(stats.t.ppf(0.5 + level / 2, dof) * res.stderr)
    detectable = float((stats.t.ppf(0.5 + level / 2, dof) + stats.t.ppf(0.8, dof))
                       * res.stderr)
    return Slope(float(res.slope), float(res.stderr), float(res.intercept),
                 float(res.slope - half), float(res.slope + half), detectable)


def best_by_group(df: pd.DataFrame, group: str, x: str, y: str = "value") -> pd.DataFrame:
    """For each ``group`` value, the ``x`` with the highest mean ``y`` (mean over seeds
    and any other rows sharing (group, x)); diverged rows should be removed first."""
    means = df.groupby([group, x], as_index=False)[y].mean()
    idx = means.groupby(group)[y].idxmax()
    return means.loc[idx].reset_index(drop=True)


def proper_accuracy(noise: float, classes: int = 10) -> float:
    """Training accuracy of a model that learns the true labels and nothing else, when a
    fraction ``noise`` of labels were permuted (≈ uniformly random): 1 − p + p/classes."""
    return 1 - noise + noise / classes


def expected_train_accuracy(test_accuracy: float, noise: float, classes: int = 10) -> float:
    """Training accuracy expected from generalization alone: pristine examples are fitted
    as often as test examples, corrupt ones by chance (1/classes)."""
    return (1 - noise) * test_accuracy + noise / classes


def _welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(mean(a) − mean(b), its standard error, Welch's degrees of freedom)."""
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    d = float(a_.mean() - b_.mean())
    va, vb = a_.var(ddof=1) / len(a_), b_.var(ddof=1) / len(b_)
    se = float(np.sqrt(va + vb))
    dof = ((va + vb) ** 2 / (va ** 2 / (len(a_) - 1) + vb ** 2 / (len(b_) - 1))
           if se > 0 else float("inf"))
    return d, se, float(dof)


def diff_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Estimate:
    """mean(a) − mean(b) with a Welch t interval (unequal variances)."""
    from scipy import stats

    n = min(len(a), len(b))
    if n < 2:
        d = float(np.mean(a) - np.mean(b)) if n else float("nan")
        return Estimate(d, float("nan"), float("nan"), n)
    d, se, dof = _welch(a, b)
    if se == 0:
        return Estimate(d, d, d, n)
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return Estimate(d, d - half, d + half, n)


def detectable_difference(a: Sequence[float], b: Sequence[float], power: float = 0.8,
                          level: float = 0.95) -> float:
    """The smallest true difference of means that the two-sided Welch test at ``level``
    detects with probability ``power``, at these sample sizes and the measured spreads:
    (t_{(1+level)/2} + t_{power}) × SE. NaN with fewer than two values per group."""
    from scipy import stats

    if min(len(a), len(b)) < 2:
        return float("nan")
    _, se, dof = _welch(a, b)
    if se == 0:
        return 0.0
    return float((stats.t.ppf(0.5 + level / 2, dof) + stats.t.ppf(power, dof)) * se)


def difference_verdict(d: Estimate, detectable: float, reference: float, a: str,
                       b: str, opposite_first: bool = True) -> str:
    """The verdict on "``a`` beats ``b``" from the interval of a − b (``d``), the smallest
    difference the test detects at 80% power (``detectable``) and the published effect it
    looks for (``reference``): a negative verdict needs the power to see that effect.

    ``opposite_first=False`` is the order registered first (and kept for the chapters'
    recorded revisions): the power check came before the sign, so an underpowered test
    with a significant effect the other way read "inconclusive"."""
    if d.n < 2 or not np.isfinite(d.low):
        return "not assessable: fewer than two finished seeds per arm"
    if d.low > 0:
        return "reproduced"
    opposite = f"not reproduced ({b} is larger at this scale)"
    if opposite_first and d.high < 0:  # a significant effect the other way needs no power
        return opposite
    if not (np.isfinite(detectable) and detectable <= reference):
        return ("inconclusive at this scale: the test detects (80% power) only differences "
                f"above {100 * detectable:.1f} points, more than the published "
                f"{100 * reference:.1f}")
    if d.high < 0:
        return opposite
    return "not reproduced (no significant difference at this scale)"


def closure_verdict(closure: Estimate, full: float = 0.5) -> str:
    """The ladder of a fraction of a gap closed (a penalty standing in for what a smaller
    batch or a larger ε brings): reproduced when its 95% interval lies above ``full``,
    partly when above 0 only, not reproduced otherwise; not assessable when the fraction
    has no value or no interval."""
    if closure.missing is not None:
        return f"not assessable: the fraction is {closure.missing}"
    if not np.isfinite(closure.low):
        return "not assessable: the fraction has no interval (fewer than two seeds per arm)"
    if closure.low > full:
        return "reproduced"
    return "partly reproduced" if closure.low > 0 else "not reproduced"


def detectable_from_sd(sd: float, n_a: int, n_b: int, power: float = 0.8,
                       level: float = 0.95) -> float:
    """The smallest true difference of means that a two-sided t test at ``level`` detects
    with probability ``power`` when both arms have the standard deviation ``sd`` (a
    registered value, e.g. a pilot's pooled SD) and ``n_a``, ``n_b`` seeds:
    (t_{(1+level)/2} + t_{power}) × sd·√(1/n_a + 1/n_b), with n_a + n_b − 2 degrees of
    freedom. Unlike :func:`detectable_difference` it does not move with the cell's own
    spread, so a verdict's power is fixed before the cell is run."""
    from scipy import stats

    if min(n_a, n_b) < 2:
        return float("nan")
    dof = n_a + n_b - 2
    se = sd * np.sqrt(1 / n_a + 1 / n_b)
    return float((stats.t.ppf(0.5 + level / 2, dof) + stats.t.ppf(power, dof)) * se)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t test of mean(a) = mean(b); NaN with fewer than two
    values per group, 0 or 1 when both groups are constant."""
    from scipy import stats

    if min(len(a), len(b)) < 2:
        return float("nan")
    d, se, dof = _welch(a, b)
    if se == 0:
        return 0.0 if d != 0 else 1.0
    return float(2 * stats.t.sf(abs(d) / se, dof))


def holm(pvalues: Mapping[str, float], alpha: float = 0.05) -> dict[str, float]:
    """Holm's step-down adjusted p-values of a family of tests (a claim tested over a
    sweep of n or ε): reject test k at family-wise level ``alpha`` when its adjusted
    value is ≤ ``alpha``. NaN p-values (untestable cells) stay NaN and do not count
    towards the family's size."""
    items = sorted(((p, k) for k, p in pvalues.items() if np.isfinite(p)))
    m = len(items)
    out = {k: float("nan") for k in pvalues}
    running = 0.0
    for i, (p, k) in enumerate(items):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def paired_p_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided p-value of the paired t test of mean(a − b) > 0; NaN with fewer than two
    pairs, 0 or 1 when every difference is the same."""
    from scipy import stats

    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) < 2:
        return float("nan")
    if np.all(d == d[0]):
        return 0.0 if d[0] > 0 else 1.0
    return float(stats.ttest_rel(a, b, alternative="greater").pvalue)


def welch_p_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided p-value of Welch's t test of mean(a) > mean(b) (:func:`welch_p`
    is two-sided); NaN with fewer than two values per group."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if min(len(a), len(b)) < 2:
        return float("nan")
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 0.0 if a.mean() > b.mean() else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def detectable_paired(d: np.ndarray, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest mean drop the one-sided paired t test at ``alpha`` detects with
    probability ``power``, at the measured spread of the differences ``d``."""
    from scipy import stats

    n = len(d)
    if n < 2:
        return float("nan")
    return float((stats.t.ppf(1 - alpha, n - 1) + stats.t.ppf(power, n - 1))
                 * np.std(d, ddof=1) / np.sqrt(n))


def one_sample_p(values: Sequence[float], reference: float = 0.0,
                 alternative: str = "greater") -> float:
    """One-sided p-value of Student's one-sample t test of mean(values) > ``reference``
    (``alternative="greater"``) or < it (``"less"``), over the finite values; NaN with
    fewer than two, 0 or 1 when every value is the same."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) < 2:
        return float("nan")
    if np.ptp(v) == 0:
        above = v[0] > reference if alternative == "greater" else v[0] < reference
        return 0.0 if above else 1.0
    return float(stats.ttest_1samp(v, reference, alternative=alternative).pvalue)


def binom_p_greater(k: int, n: int, share: float = 0.5) -> float:
    """One-sided exact binomial p-value of k successes in n under a success probability
    of ``share``: P(X ≥ k); NaN when n is 0."""
    from scipy import stats

    if n <= 0:
        return float("nan")
    return float(stats.binom.sf(k - 1, n, share))


def detectable_share(n: int, level: float, power: float = 0.8, share: float = 0.5) -> float:
    """The smallest true success probability at which the exact one-sided binomial test
    of :func:`binom_p_greater` (n trials, H0: probability ≤ ``share``) reaches ``level``
    with probability ``power``; NaN when no number of successes out of n reaches it."""
    from scipy import stats

    if n <= 0:
        return float("nan")
    k = next((k for k in range(n + 1) if stats.binom.sf(k - 1, n, share) <= level), None)
    if k is None:
        return float("nan")
    lo, hi = share, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if stats.binom.sf(k - 1, n, mid) < power else (lo, mid)
    return float(hi)


def t_factor(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """(t_{1−α} + t_{power}) / √n with n − 1 degrees of freedom: times the SD across seeds,
    the smallest mean shift a one-sided one-sample (or paired) t test at ``alpha`` detects
    with probability ``power`` from ``n`` seeds (NaN with fewer than two)."""
    from scipy import stats

    if n < 2:
        return float("nan")
    return float((stats.t.ppf(1 - alpha, n - 1) + stats.t.ppf(power, n - 1)) / np.sqrt(n))


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The SD pooled over ``groups`` (each group's deviations from its own mean; the
    finite values only) and its degrees of freedom Σ(n_g − 1); (NaN, 0) when no group has
    two values."""
    ss, df = 0.0, 0
    for g in groups:
        v = np.asarray([a for a in g if np.isfinite(a)], dtype=float)
        if len(v) >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            df += len(v) - 1
    return (float(np.sqrt(ss / df)), df) if df else (float("nan"), 0)


def sd_upper(sd: float, df: int, level: float = 0.8) -> float:
    """The one-sided upper ``level`` confidence limit of an SD estimated with ``df``
    degrees of freedom, sd·√(df/χ²_{1−level}(df)): the SD a power statement computed from
    a small pilot uses, so that it is not too optimistic (NaN without a degree of
    freedom)."""
    from scipy import stats

    if not df or not np.isfinite(sd):
        return float("nan")
    return float(sd * np.sqrt(df / stats.chi2.ppf(1 - level, df)))


__all__ = ["Estimate", "mean_ci", "mean_ci_runs", "diverged_text", "gap_closure", "Slope",
           "loglog_slope", "best_by_group", "proper_accuracy", "expected_train_accuracy",
           "diff_ci", "detectable_difference", "difference_verdict", "closure_verdict",
           "detectable_from_sd", "welch_p", "holm", "paired_p_greater", "welch_p_greater",
           "detectable_paired", "one_sample_p", "binom_p_greater",
           "detectable_share", "t_factor", "pooled_sd", "sd_upper"]
