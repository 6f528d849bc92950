"""Choosing a regime from pilot runs, by a rule fixed before any run.

A pilot trains the arms of a comparison on its own seeds and its own training subset.
The rule reads off, for each learning rate of the candidate grid, whether every arm
trained to (near) interpolation and how long that took, and at which learning rate the
arms differed most. The confirmation then runs on fresh seeds and a fresh subset at what
the pilot chose; only the confirmation enters a verdict, so the choice cannot flatter it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import stats

FIT_THRESHOLD = 0.99
"""Training accuracy at which a run counts as having fit its training set. Implicit
regularization is about which interpolating solution an optimizer finds: an arm below
this compares optimization speed instead."""


def fit_step(result, threshold: float = FIT_THRESHOLD) -> int | None:
    """The first evaluated step at which ``result``'s accuracy on its whole training set
    reaches ``threshold``; None when it never does or the run diverged."""
    if result.summary.get("diverged"):
        return None
    c = result.curve("accuracy", "train")
    hit = c[c["value"] >= threshold]
    return int(hit["step"].iloc[0]) if len(hit) else None


@dataclass
class PilotChoice:
    """What a pilot chose, and why, in words for the chapter."""
    usable: list[float]
    """Learning rates at which every arm of the pilot fit its training set, ascending."""
    epochs: dict[float, int]
    """Training length per usable learning rate, in epochs of the small batch."""
    best: float | None
    """The usable learning rate with the largest pilot difference (small − large arm);
    None when none is usable."""
    differences: dict[float, float] = field(default_factory=dict)
    """Pilot test-accuracy difference (small − large arm) per learning rate."""
    reasons: dict[float, str] = field(default_factory=dict)
    """Per learning rate: kept, or why it was dropped."""

    def describe(self) -> str:
        """One sentence per learning rate, then the choice."""
        lines = [f"ε = {lr:g}: {why}" for lr, why in sorted(self.reasons.items())]
        if self.best is None:
            lines.append("No learning rate of the grid is usable, so nothing is confirmed.")
        else:
            lines.append(f"Chosen: ε = {self.best:g} (the largest pilot difference) for the "
                         f"sweep over n and the penalty; the ε sweep uses "
                         f"{', '.join(f'{lr:g}' for lr in self.usable)}.")
        return " ".join(lines)


def choose_regime(pilot: Iterable[tuple[str, object]], *, small_arm: str, large_arm: str,
                  n_train: int, batch_size: int, max_epochs: int, margin: float = 1.25,
                  threshold: float = FIT_THRESHOLD) -> PilotChoice:
    """Apply the pilot rule to labelled pilot runs (``(arm, Result)`` pairs; one or more
    seeds per arm and learning rate):

    1. a learning rate is *usable* when no run of either arm diverged and every run fit
       its training set (``threshold``) within the pilot's ``max_epochs``;
    2. its training length is ``margin`` times the slowest run's fitting time, rounded up
       to whole epochs of the small batch (``batch_size``) and capped at ``max_epochs``;
    3. the chosen learning rate is the usable one with the largest mean test-accuracy
       difference small − large (ties: the larger learning rate).
    """
    by_lr: dict[float, dict[str, list]] = {}
    for arm, r in pilot:
        by_lr.setdefault(float(r.config.lr), {}).setdefault(arm, []).append(r)
    steps_per_epoch = n_train / batch_size
    usable, epochs, reasons, diffs = [], {}, {}, {}
    for lr in sorted(by_lr):
        arms = by_lr[lr]
        small, large = arms.get(small_arm, []), arms.get(large_arm, [])
        if not small or not large:
            reasons[lr] = "dropped: the pilot lacks one of the arms"
            continue
        diverged = [a for a, rs in ((small_arm, small), (large_arm, large))
                    if any(r.summary.get("diverged") for r in rs)]
        if diverged:
            reasons[lr] = f"dropped: {' and '.join(diverged)} diverged"
            continue
        diffs[lr] = (float(np.mean([r.final("accuracy", "test") for r in small]))
                     - float(np.mean([r.final("accuracy", "test") for r in large])))
        fits = {a: [fit_step(r, threshold) for r in rs]
                for a, rs in ((small_arm, small), (large_arm, large))}
        unfit = [a for a, f in fits.items() if any(s is None for s in f)]
        if unfit:
            reasons[lr] = (f"dropped: {' and '.join(unfit)} did not reach "
                           f"{100 * threshold:g}% training accuracy in {max_epochs} epochs")
            continue
        slowest = max(s for f in fits.values() for s in f)
        e = min(max_epochs, max(1, math.ceil(margin * slowest / steps_per_epoch)))
        usable.append(lr)
        epochs[lr] = e
        reasons[lr] = (f"kept: every arm fit its training set by step {slowest} "
                       f"({slowest / steps_per_epoch:.1f} epochs), so the confirmation "
                       f"trains for {e} epoch{'s' if e > 1 else ''}; pilot difference {100 * diffs[lr]:+.1f} points")
    best = max(usable, key=lambda lr: (diffs[lr], lr)) if usable else None
    return PilotChoice(usable, epochs, best, diffs, reasons)


def steps_for(epochs: int, n_train: int, batch_size: int) -> int:
    """Updates in ``epochs`` epochs of batch ``batch_size`` over ``n_train`` examples."""
    return max(1, math.ceil(epochs * n_train / batch_size))


def refined_grid(center: float, points: int, factor: float = math.sqrt(2)) -> list[float]:
    """``points`` learning rates spaced by ``factor`` and centred (on a log scale) on
    ``center``: the confirmation's finer grid around a pilot optimum."""
    half = (points - 1) / 2
    return [float(f"{center * factor ** (i - half):.6g}") for i in range(points)]


def subset_overlap(a: Sequence[int], b: Sequence[int]) -> int:
    """How many training examples two subsets (index arrays) share."""
    return int(len(np.intersect1d(np.asarray(a), np.asarray(b))))


# ------------------------------------------------------------------ power from a pilot
POWER = 0.8
"""The power every pilot-sized design and every negative verdict's statement aim at."""


def pilot_sd(groups: Mapping[Any, Sequence[float]]) -> float:
    """The SD a design takes from its pilot: the sample SD (n − 1) of a unit statistic over
    the pilot's units, the largest over the members of a family (noise levels, widths,
    arms) that have at least two finite values; NaN when none has."""
    sds = []
    for values in groups.values():
        v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
        if len(v) >= 2:
            sds.append(float(v.std(ddof=1)))
    return max(sds) if sds else float("nan")


def detectable_mean(sd: float, n: int, level: float, power: float = POWER) -> float:
    """How far a true mean must lie beyond a one-sided one-sample (or paired) t test's
    reference for the test at ``level`` to reject with probability ``power``, from n
    units of SD ``sd``: (t_{1−level} + t_{power}) · sd/√n with n − 1 degrees of freedom
    (NaN with fewer than two units or no SD)."""
    from scipy import stats

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    return float((stats.t.ppf(1 - level, n - 1) + stats.t.ppf(power, n - 1))
                 * sd / math.sqrt(n))


def detectable_welch(sd: float, n_a: int, n_b: int, level: float,
                     power: float = POWER) -> float:
    """:func:`detectable_mean` for a one-sided two-sample t test between n_a and n_b units
    of common SD ``sd`` (n_a + n_b − 2 degrees of freedom)."""
    from scipy import stats

    if min(n_a, n_b) < 2 or not np.isfinite(sd):
        return float("nan")
    dof = n_a + n_b - 2
    return float((stats.t.ppf(1 - level, dof) + stats.t.ppf(power, dof))
                 * sd * math.sqrt(1 / n_a + 1 / n_b))


def detectable_margin(sd: float, n: int, level: float, power: float = POWER) -> float:
    """The equivalence margin that two one-sided t tests at ``level`` (the interval at
    1 − 2·level inside ±margin) reach with probability ``power`` when the true mean is at
    the centre: (t_{1−level} + t_{1−(1−power)/2}) · sd/√n."""
    from scipy import stats

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    return float((stats.t.ppf(1 - level, n - 1) + stats.t.ppf(1 - (1 - power) / 2, n - 1))
                 * sd / math.sqrt(n))


@dataclass
class SeedChoice:
    """How many confirmation units (seeds, pairs, initializations) each section of a
    design trains, from its pilot by :func:`seeds_for`, and why, in words."""
    n: dict[str, int]
    """Section → units of the confirmation."""
    reasons: dict[str, str] = field(default_factory=dict)
    """Section → the pilot SDs, effects and detectable effects that chose it."""

    def describe(self) -> str:
        return " ".join(f"{k}: {self.n[k]} ({self.reasons.get(k, '')})." for k in self.n)


def seeds_for(detect: Callable[[int], float], effect: float, n_min: int, n_max: int
              ) -> int:
    """The registered rule for a confirmation's size: the smallest n from ``n_min`` to
    ``n_max`` at which the effect ``detect(n)`` detectable at 80% power is at most
    ``effect`` (the effect the design is sized for); ``n_max`` when none is, or when the
    pilot gave no SD (``detect`` NaN)."""
    for n in range(max(n_min, 2), n_max + 1):
        d = detect(n)
        if np.isfinite(d) and d <= effect:
            return n
    return max(n_max, min(n_min, n_max))


SD_LEVEL = 0.8
"""The one-sided confidence level at which a pilot's SD enters a power statement."""
SD_RULE = ("the SD for power is measured in the pilot stage of the same set: the SD across "
           "the pilot's seeds of the same statistic, pooled over the claim's cases (each "
           "case's deviations from its own mean), taken at its one-sided 80% upper "
           "confidence limit s·√(df/χ²₀.₂(df)); with no degree of freedom (fewer than two "
           "pilot seeds in every case) no power is stated")
"""The registered rule by which the workstation designs' power statements get their SD:
from the pilot that precedes the confirmation in the same result set, never from a value
typed in advance (which no run had measured)."""


@dataclass(frozen=True)
class PilotSD:
    """The SD of a statistic across a pilot's seeds, pooled over cases, and the SD a
    power statement uses (:data:`SD_RULE`)."""
    sd: float
    df: int
    power_sd: float

    @property
    def usable(self) -> bool:
        return self.df >= 1 and bool(np.isfinite(self.power_sd)) and self.power_sd > 0

    def text(self, digits: int = 3, unit: str = "") -> str:
        if not self.usable:
            return "no SD from the pilot (fewer than two pilot seeds per case)"
        return (f"SD across the pilot's seeds {self.sd:.{digits}f}{unit} ({self.df} degrees "
                f"of freedom), {self.power_sd:.{digits}f}{unit} at its 80% upper limit")


def pooled_pilot_sd(groups: Sequence[Sequence[float]], level: float = SD_LEVEL) -> PilotSD:
    """:class:`PilotSD` of the pilot values of a statistic, one group per case."""
    sd, df = stats.pooled_sd(groups)
    return PilotSD(sd, df, stats.sd_upper(sd, df, level))


NO_PILOT = PilotSD(float("nan"), 0, float("nan"))
