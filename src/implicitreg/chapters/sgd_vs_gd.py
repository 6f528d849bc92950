"""The chapter on SGD, a large batch (or GD) and the penalty that stands in for SGD's
noise, as a module: its parameters, the runs it makes, what it computes from them, its
registered criteria and its figures.

Smith et al. (2021) and Novack et al. (2023): at the same learning rate ε and number of
updates, small-batch SGD reaches a higher test accuracy than a large batch; the
difference shrinks as ε → 0; adding the minibatch-gradient-variance term explicitly to
the large batch recovers much of it. The notebook ``notebooks/sgd_vs_gd.ipynb`` is prose
around the functions here:

- :class:`Params`, whose named instances are the profiles of
  ``notebooks/profiles/sgd_vs_gd.yaml`` (:func:`profile`);
- :func:`design` (the pilot's runs), :func:`choose` (the pilot rule) and
  :func:`design_confirmation` (the confirmation at what the pilot chose), all labelled
  :class:`Cell` → :class:`~implicitreg.engine.config.RunConfig`; :func:`run` executes
  the three stages;
- :func:`analyze`: from the runs' results to tables, verdicts and the values the prose
  glues; :func:`measure_landscape` re-measures sharpness from the headline cell's weights;
- :data:`CRITERIA` and :data:`REVISIONS`: the claims' criteria as registered before the
  runs, and every later change of them;
- :func:`fig_pilot`, :func:`fig_gaps`, :func:`fig_headline`, :func:`fig_terms`,
  :func:`fig_landscape`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np
import pandas as pd

from ..analysis import stats
from ..analysis import pilot as pilot_rule
from .base import ChapterParams
from .criteria import (NOT_ASSESSABLE, SD_FACTOR, Criterion, Premise, Revision, Verdict,
                       fit_premise, not_assessable, premise_failure, register,
                       sd_premise)

CHAPTER = "sgd_vs_gd"
PUBLISHED_GAP = 0.9264 - 0.8983
"""Novack et al., ResNet-18 on CIFAR-10: batch 128 against 5,120."""


# ------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Params(ChapterParams):
    """The values the chapter runs with. Every profile gives all of them, so that a named
    profile means exactly its values (plus whatever is overridden)."""
    dataset: str
    """Dataset name (cifar10, mnist, synthetic)."""
    n_test: int | None
    """Test examples (None: all)."""
    downsample: int
    """Average-pool the images by this factor (2: CIFAR-10 at 16×16)."""
    model: str
    """Architecture: mlp, cnn, resnet18-gn (see RunConfig.model)."""
    cnn_width: int
    """Channels of the first layer of model "cnn"."""
    widths: tuple[int, ...]
    """Hidden widths of the MLP (model "mlp")."""
    batch_size: int
    """SGD's B, and the micro-batch size of the penalty."""
    large_batch: int
    """The other arm's batch (several small batches); 0: the full batch (GD)."""
    reg_scale: float
    """Penalty strength λ in units of ε/4."""
    augment: bool
    """Random crops and flips of the training images."""
    lr_grid: tuple[float, ...]
    """Candidate learning rates ε; the pilot keeps those where every arm fits."""
    n_grid: tuple[int, ...]
    """Training-set sizes n of the confirmation (the largest carries the ε sweep and the
    penalty)."""
    max_epochs: int
    """The pilot's training length, in epochs of the small batch."""
    fit_threshold: float
    """Training accuracy at which a run counts as fitting its training set (the pilot's
    rule and every verdict's premise)."""
    steps: int
    """0: training length chosen by the pilot; > 0: this many updates at every ε."""
    evals_per_run: int
    """Evaluations per confirmation run (the pilot evaluates twice as often)."""
    seeds: tuple[int, ...]
    """Confirmation seeds (initialization and data order)."""
    data_seed: int
    """The confirmation's training subset."""
    pilot_seeds: tuple[int, ...]
    """Pilot seeds; empty: no pilot (the profile fixes ε and steps)."""
    pilot_data_seed: int
    """The pilot's training subset."""
    pilot_n_train: int
    """The pilot's training-set size."""
    sharpness_examples: int
    """Training examples on which the final sharpness is measured."""

    CHAPTER: ClassVar[str] = CHAPTER

    def __post_init__(self) -> None:
        self._tuples("widths", "lr_grid", "n_grid", "seeds", "pilot_seeds")
        self._positive_ints("downsample", "cnn_width", "batch_size",
                             "max_epochs", "evals_per_run", "pilot_n_train",
                             "sharpness_examples")
        if not (isinstance(self.large_batch, int) and self.large_batch >= 0):
            raise ValueError(f"Params.large_batch = {self.large_batch!r}: 0 (GD) or a batch")
        if not self.lr_grid or any(not (lr > 0) for lr in self.lr_grid):
            raise ValueError(f"Params.lr_grid = {self.lr_grid!r}: learning rates > 0")
        if not self.n_grid or any(n < self.batch_size for n in self.n_grid):
            raise ValueError(f"Params.n_grid = {self.n_grid!r}: sizes >= batch_size")
        if not self.seeds:
            raise ValueError("Params.seeds: at least one confirmation seed")
        if not 0 <= self.fit_threshold <= 1:
            raise ValueError(f"Params.fit_threshold = {self.fit_threshold!r}: in [0, 1]")
        if self.steps < 0:
            raise ValueError(f"Params.steps = {self.steps!r}: 0 (from the pilot) or more")

    @property
    def n_max(self) -> int:
        return max(self.n_grid)


# The named profile's values plus overrides (see :meth:`ChapterParams.profile`).
profile = Params.profile


# ------------------------------------------------------------------ design
@dataclass(frozen=True, order=True)
class Cell:
    """One run of the chapter: its stage (``pilot`` or ``confirmation``), its arm (as
    the chapter names it: "SGD", "B = 256" or "GD", "… + penalty"), n, ε and seed."""
    stage: str
    arm: str
    n: int
    lr: float
    seed: int


def arm_names(p: Params) -> tuple[str, str, str]:
    """(SGD, the large batch or GD, the large batch with the penalty)."""
    large = "GD" if not p.large_batch else f"B = {p.large_batch}"
    return "SGD", large, f"{large} + penalty"


def base_config(p: Params):
    from ..engine.config import RunConfig

    return RunConfig(dataset=p.dataset, n_test=p.n_test, model=p.model,
                     widths=tuple(p.widths), cnn_width=p.cnn_width, downsample=p.downsample,
                     batch_size=p.batch_size, augment=p.augment, progress=False)


def cell_arms(p: Params, stage: str, n: int, lr: float, n_steps: int, seed: int,
              subset: int, penalty: bool = False, evals: int | None = None
              ) -> list[tuple[Cell, Any]]:
    """The arms at one cell (n, ε): same initialization, data and number of updates."""
    sgd, large, pen = arm_names(p)
    cell = base_config(p).replace(n_train=n, lr=lr, steps=n_steps, seed=seed,
                                  data_seed=subset,
                                  eval_every=max(1, n_steps // (evals or p.evals_per_run)))
    big = (cell.replace(method="gd") if not p.large_batch else
           cell.replace(method="sgd", batch_size=p.large_batch))
    out = [(Cell(stage, sgd, n, lr, seed), cell.replace(method="sgd")),
           (Cell(stage, large, n, lr, seed), big)]
    if penalty:
        out.append((Cell(stage, pen, n, lr, seed),
                    big.replace(reg="sgd-modified", micro_batch=p.batch_size,
                                reg_scale=p.reg_scale)))
    return out


def design(p: Params) -> list[tuple[Cell, Any]]:
    """The pilot: its own seeds and subset, every candidate ε, the longest training
    (empty when the profile has no pilot)."""
    if not p.pilot_seeds:
        return []
    n_steps = p.steps or pilot_rule.steps_for(p.max_epochs, p.pilot_n_train, p.batch_size)
    return [pair for lr in p.lr_grid for s in p.pilot_seeds
            for pair in cell_arms(p, "pilot", p.pilot_n_train, lr, n_steps, s,
                                  p.pilot_data_seed, evals=2 * p.evals_per_run)]


def choose(p: Params, pilot: Iterable[tuple[Cell, Any]]) -> pilot_rule.PilotChoice:
    """The pilot rule (:func:`~implicitreg.analysis.pilot.choose_regime`) on the pilot's
    results; without a pilot, the profile's grid at its fixed training length."""
    sgd, large, _ = arm_names(p)
    pilot = list(pilot)
    if not p.pilot_seeds:
        return pilot_rule.PilotChoice(
            usable=sorted(p.lr_grid), epochs={}, best=max(p.lr_grid),
            reasons={lr: "set by the profile (no pilot at this profile)" for lr in p.lr_grid})
    return pilot_rule.choose_regime(
        [(c.arm, r) for c, r in pilot], small_arm=sgd, large_arm=large,
        n_train=p.pilot_n_train, batch_size=p.batch_size, max_epochs=p.max_epochs,
        threshold=p.fit_threshold)


def steps_at(p: Params, choice: pilot_rule.PilotChoice, lr: float, n: int) -> int:
    return p.steps or pilot_rule.steps_for(choice.epochs[lr], n, p.batch_size)


def design_confirmation(p: Params, choice: pilot_rule.PilotChoice
                        ) -> list[tuple[Cell, Any]]:
    """The confirmation, on fresh seeds and a fresh subset, at what the pilot chose: the
    headline cell (n_max, ε*) with the penalty, the other usable ε at n_max, the other n
    at ε*. Empty when the pilot found no usable ε."""
    eps = choice.best
    if eps is None:
        return []
    n_max = p.n_max
    out = [pair for s in p.seeds for pair in cell_arms(
        p, "confirmation", n_max, eps, steps_at(p, choice, eps, n_max), s, p.data_seed,
        penalty=True)]
    out += [pair for lr in choice.usable if lr != eps for s in p.seeds
            for pair in cell_arms(p, "confirmation", n_max, lr, steps_at(p, choice, lr, n_max),
                                  s, p.data_seed)]
    out += [pair for n in sorted(p.n_grid) if n != n_max for s in p.seeds
            for pair in cell_arms(p, "confirmation", n, eps, steps_at(p, choice, eps, n), s,
                                  p.data_seed)]
    return out


@dataclass
class Runs:
    """The chapter's results: the pilot's, the pilot's choice, the confirmation's."""
    pilot: list[tuple[Cell, Any]]
    choice: pilot_rule.PilotChoice
    confirmation: list[tuple[Cell, Any]]

    def headline(self, p: Params) -> list[tuple[str, Any]]:
        """(arm, result) pairs of the headline cell (n_max, ε*)."""
        return [(c.arm, r) for c, r in self.confirmation
                if c.n == p.n_max and c.lr == self.choice.best]

    def all(self) -> list[tuple[Cell, Any]]:
        return self.pilot + self.confirmation


STAGED = ("the confirmation's learning rates and training lengths are chosen from the "
          "pilot's results (:func:`choose`), so :func:`design` is the pilot and "
          ":func:`run` makes the confirmation after it")


def run(p: Params, **options: Any) -> Runs:
    """Pilot, choice, confirmation: load each run from the store or train it. The
    headline cell keeps its weights (sharpness is re-measured from them)."""
    from ..runs.sweeps import run_labeled

    pilot = run_labeled(design(p), **options) if p.pilot_seeds else []
    choice = choose(p, pilot)
    pairs = design_confirmation(p, choice)
    head = [(c, cfg) for c, cfg in pairs if c.n == p.n_max and c.lr == choice.best]
    rest = [(c, cfg) for c, cfg in pairs if not (c.n == p.n_max and c.lr == choice.best)]
    conf = run_labeled(head, keep_model=True, **options) if head else []
    conf += run_labeled(rest, **options) if rest else []
    return Runs(pilot, choice, conf)


# ------------------------------------------------------------------ criteria
REGISTERED = "2026-11-26T20:34:42+00:00"
"""When the pilot/confirmation design and its four criteria were fixed (commit 7871833)."""
ALPHA = 0.05
SD_ARM = 0.005
"""SD across seeds of one arm's final test accuracy assumed for power: the power pilot of
shared/pilots (same CNN at 16×16, n = 2,040, ε = 0.1, 8 seeds) measured 0.54 and 0.41
points for B = 32 and B = 640."""
SD_GAP = 0.004
"""SD across seeds of a per-seed gap (SGD − large batch, same initialization) assumed for
power: 0.39 points in the same pilot."""
CLOSURE_FULL = 0.5

_GAP_STAT = ("at the headline cell (n_max, ε*): the mean final test accuracy of SGD minus "
             "that of the large batch over the confirmation seeds that did not diverge, "
             "with a 95% Welch interval")
_LADDER_OLD = ("reproduced when the interval lies above 0; otherwise inconclusive at this "
               "scale when the smallest difference the test detects at 80% power exceeds "
               "Novack et al.'s gap (2.8 points), not reproduced when it does not")
_LADDER_NEW = ("reproduced when the interval lies above 0; not reproduced when it lies "
               "below 0; otherwise inconclusive at this scale when the smallest difference "
               "the test detects at 80% power exceeds Novack et al.'s gap (2.8 points), "
               "not reproduced when it does not")
_EPS_NOTE = "Novack et al.'s gap (the shrinkage expected is of its order)"
_FIT = ("every compared arm's runs at the compared point reach the fit threshold of "
        "training accuracy (Params.fit_threshold) and none diverged")
_SD = (f"where the verdict rests on the power (no significant difference either way): the "
       f"measured SD across seeds is at most {SD_FACTOR:g}× the SD assumed for power")

CRITERIA = (
    Criterion(
        claim="gap",
        statement="Small-batch SGD reaches a higher test accuracy than the large batch (or "
                  "GD) at the same ε and number of updates.",
        statistic=_GAP_STAT + "; power from the two arms' own spread",
        threshold=_LADDER_OLD,
        premises=("the pilot found a usable ε (every pilot arm fit its training set)",
                  "each arm has at least two seeds that did not diverge"),
        alpha=ALPHA, registered=REGISTERED),
    Criterion(
        claim="eps",
        statement="The SGD advantage shrinks toward small ε, where both arms follow the "
                  "same gradient flow.",
        statistic="at n_max: per-seed gaps (SGD − large batch) at ε* minus those at the "
                  "smallest usable ε, with a 95% Welch interval",
        threshold="reproduced when the interval lies above 0; not reproduced otherwise",
        premises=("ε* is not the smallest usable ε",),
        alpha=ALPHA, registered=REGISTERED),
    Criterion(
        claim="n",
        statement="Where the SGD advantage appears: the smallest training-set size n at "
                  "which it is detectable.",
        statistic="at ε*, for each n of the grid: the gap's 95% Welch interval",
        threshold="the smallest n whose interval lies above 0",
        premises=("a confirmation exists",),
        alpha=ALPHA, registered=REGISTERED),
    Criterion(
        claim="penalty",
        statement="The explicit SGD-modified penalty lets the large batch close most of the "
                  "gap to SGD.",
        statistic="at the headline cell: (penalty − large)/(SGD − large) of the mean final "
                  "test accuracies, with a 95% percentile bootstrap interval over seeds",
        threshold=f"reproduced when the interval lies above {CLOSURE_FULL:g}; partly when "
                  "above 0 only; not reproduced otherwise",
        premises=("the gap criterion is reproduced (there is a gap to close)",
                  "the penalized arm has a seed that did not diverge"),
        alpha=ALPHA, registered=REGISTERED),
)

_TODAY = "2026-12-01T03:57:00+00:00"
_TODAY_REASON = (
    "Made explicit when the chapter became a tested module, after the workstation and gpu "
    "result sets existed: the gpu set's SGD runs fit 91–98% of their training images while "
    "the large batch fit 100%, and the workstation set's ε comparison rested on SGD runs at "
    "ε = 0.2 that fit 80–89%, so the registered statistic compared optimization speed "
    "rather than implicit regularization. Every premise is now checked before the "
    "statistic; power comes from an SD fixed in advance (the power pilot of "
    "shared/pilots) rather than from the cell under test; the n sweep is one family "
    "(Holm). The registered criteria and their verdicts stay shown.")

REVISIONS = (
    Revision(
        original="eps",
        revised=dataclasses.replace(
            CRITERIA[1], claim="eps-r1",
            statistic="at n_max: per-seed gaps at the largest usable ε minus those at the "
                      "smallest usable ε, with a 95% Welch interval; power from their own "
                      "spread",
            threshold=_LADDER_OLD.replace("Novack et al.'s gap", _EPS_NOTE),
            premises=("at least two usable ε",), registered="2026-11-26T22:25:51+00:00"),
        reason="After the first workstation set had finished (commit 01c943b): there, ε* "
               "was the smallest usable ε, so the registered comparison had nothing to "
               "compare; the revision compares the ends of the usable range.",
        date="2026-11-26T22:25:51+00:00"),
    Revision(
        original="gap",
        revised=dataclasses.replace(CRITERIA[0], claim="gap-r1", threshold=_LADDER_NEW,
                                    registered="2026-11-26T22:55:18+00:00"),
        reason="stats.difference_verdict reordered minutes after a result set was "
               "committed (commit 5f251c9, after 140b495): a significant effect in the "
               "opposite direction reads 'not reproduced' rather than 'inconclusive', "
               "whatever the power.",
        date="2026-11-26T22:55:18+00:00"),
    Revision(
        original="eps-r1",
        revised=dataclasses.replace(CRITERIA[1], claim="eps-r2",
                                    statistic="as eps-r1",
                                    threshold=_LADDER_NEW.replace("Novack et al.'s gap",
                                                                  _EPS_NOTE),
                                    premises=("at least two usable ε",),
                                    registered="2026-11-26T22:55:18+00:00"),
        reason="The same reordering of stats.difference_verdict (commit 5f251c9) applied to "
               "the ε comparison.",
        date="2026-11-26T22:55:18+00:00"),
    Revision(
        original="gap-r1",
        revised=dataclasses.replace(
            CRITERIA[0], claim="gap-r2",
            statistic=_GAP_STAT + "; power from the SD assumed (stats.detectable_from_sd)",
            threshold=_LADDER_NEW, premises=(_FIT, _SD + " (each arm's final test accuracy)",
                                             "at least two seeds per arm"),
            sd_assumed=SD_ARM, registered=_TODAY),
        reason=_TODAY_REASON, date=_TODAY),
    Revision(
        original="eps-r2",
        revised=dataclasses.replace(
            CRITERIA[1], claim="eps-r3",
            statistic="at n_max: per-seed gaps at the largest usable ε minus those at the "
                      "smallest usable ε, with a 95% Welch interval; power from the SD of a "
                      "per-seed gap assumed (stats.detectable_from_sd)",
            threshold=_LADDER_NEW.replace("Novack et al.'s gap", _EPS_NOTE),
            premises=("at least two usable ε", _FIT + " (both arms, at both ε)",
                      _SD + " (the per-seed gaps at each ε)"),
            sd_assumed=SD_GAP,
            aggregate="one test (the two ends of the usable range); no adjustment",
            registered=_TODAY),
        reason=_TODAY_REASON, date=_TODAY),
    Revision(
        original="n",
        revised=dataclasses.replace(
            CRITERIA[2], claim="n-r1",
            statistic="at ε*, for each n of the grid whose premises hold: the gap's mean, "
                      "its 95% Welch interval and Welch's two-sided p-value; power per n "
                      "from the SD assumed",
            threshold=f"the smallest n whose gap is positive with a Holm-adjusted p-value "
                      f"≤ {ALPHA:g}",
            premises=(_FIT + " (both arms, per n)",
                      "an n whose premises fail is left out of the family and reported"),
            sd_assumed=SD_ARM,
            aggregate="Holm's adjustment (stats.holm) over the assessable n of the sweep",
            registered=_TODAY),
        reason=_TODAY_REASON, date=_TODAY),
    Revision(
        original="penalty",
        revised=dataclasses.replace(
            CRITERIA[3], claim="penalty-r1",
            premises=("the gap criterion (gap-r2) is reproduced",
                      _FIT + " (SGD, the large batch and the penalized arm)"),
            registered=_TODAY),
        reason=_TODAY_REASON, date=_TODAY),
)

# What each claim's verdict is now judged by (the last revision of its chain).
CURRENT = {"gap": "gap-r2", "eps": "eps-r3", "n": "n-r1", "penalty": "penalty-r1"}

# The glue keys of each criterion's statistic and verdict, for the claims ledger: a row
# there quotes only the numbers its verdict was computed from.
STATISTIC_GLUE = {"gap": ("gap", "detectable_own"), "gap-r2": ("gap", "detectable"),
                  "eps": ("eps_text_registered",), "eps-r3": ("eps_text",),
                  "n": ("n_text_registered",), "n-r1": ("n_text",),
                  "penalty": ("closure_registered",), "penalty-r1": ("closure",)}
_GLUE_PREFIX = {"gap": "sgd", "eps": "eps", "n": "n", "penalty": "pen"}
VERDICT_GLUE = {
    c.claim: f"{_GLUE_PREFIX[c.claim.split('-')[0]]}_verdict_{c.claim.replace('-', '_')}"
    for c in CRITERIA + tuple(r.revised for r in REVISIONS)}


def all_criteria() -> tuple[Criterion, ...]:
    return CRITERIA + tuple(r.revised for r in REVISIONS)


# Fingerprints of the criteria (as registered; the revisions apart) and their table.
registered_hash, revisions_hash, criteria_table = register(CRITERIA, REVISIONS, CHAPTER)


# ------------------------------------------------------------------ analysis
@dataclass
class Analysis:
    pilot: pd.DataFrame
    """One row per pilot run: stage, arm, n, lr, seed, steps, test, train, diverged."""
    cells: pd.DataFrame
    """The same for the confirmation's runs."""
    gaps: pd.DataFrame
    """One row per confirmation cell (n, ε): SGD − large batch, its interval, power (from
    the SD assumed and from the cell's own spread), p-value (Holm-adjusted over the n
    sweep), fit and premise."""
    estimates: dict[str, Any]
    """Headline cell: final test accuracy per arm (Estimate)."""
    fit: dict[str, Any]
    """Headline cell: final training accuracy per arm (Estimate)."""
    closure: Any
    """The fraction of the gap the penalty closes (Estimate), or None."""
    verdicts: dict[str, Verdict]
    """Per criterion id (registered and revised): its verdict."""
    glue: dict[str, Any] = field(default_factory=dict)

    def verdict_table(self) -> pd.DataFrame:
        """Every criterion's verdict beside when the criterion was fixed; the current one
        of each claim marked."""
        current = set(CURRENT.values())
        return pd.DataFrame([{"criterion": c.claim, "registered": c.registered.replace("T", " "),
                              "judges the claim now": "yes" if c.claim in current else "",
                              "verdict": self.verdicts[c.claim].text}
                             for c in all_criteria() if c.claim in self.verdicts]
                            ).set_index("criterion")


def cell_table(results: Iterable[tuple[Cell, Any]]) -> pd.DataFrame:
    """One row per run: stage, arm, n, ε, seed, steps, final test and training accuracy,
    diverged."""
    cols = ["stage", "arm", "n", "lr", "seed", "steps", "test", "train", "diverged"]
    return pd.DataFrame([{"stage": c.stage, "arm": c.arm, "n": c.n, "lr": c.lr,
                          "seed": c.seed, "steps": r.config.steps,
                          "test": r.final("accuracy", "test"),
                          "train": r.final("accuracy", "train"),
                          "diverged": bool(r.summary.get("diverged"))} for c, r in results],
                        columns=cols)


def _where(n: int, lr: float) -> str:
    return f"n = {n:,}, ε = {lr:g}"


def fit_premises(ct: pd.DataFrame, p: Params, n: int, lr: float,
                 arms: Sequence[str]) -> list[Premise]:
    """Every ``arms`` run at (n, ε) fit its training set and none diverged."""
    out = []
    for arm in arms:
        d = ct[(ct.n == n) & (ct.lr == lr) & (ct.arm == arm)]
        out.append(fit_premise(arm, d.train.tolist(), d.diverged.tolist(), p.fit_threshold,
                               _where(n, lr)))
    return out


def gap_row(ct: pd.DataFrame, p: Params, n: int, lr: float) -> dict[str, Any]:
    """SGD − large batch at one cell: interval, power, p-value, fit, premise."""
    sgd, large, _ = arm_names(p)
    d = ct[(ct.n == n) & (ct.lr == lr)]
    ok = d[~d.diverged]
    a, b = (ok[ok.arm == arm].test.to_numpy() for arm in (sgd, large))
    e = stats.diff_ci(a, b) if len(a) and len(b) else stats.Estimate(
        float("nan"), float("nan"), float("nan"), 0)
    fail = premise_failure(fit_premises(ct, p, n, lr, (sgd, large)))
    sd_fail = premise_failure([sd_premise(f"{arm}'s test accuracy at {_where(n, lr)}", x,
                                          SD_ARM) for arm, x in ((sgd, a), (large, b))])
    return {"n": n, "lr": lr, "gap": e.value, "low": e.low, "high": e.high, "seeds": e.n,
            "detectable": stats.detectable_from_sd(SD_ARM, len(a), len(b)),
            "detectable (own spread)": stats.detectable_difference(a, b),
            "p": stats.welch_p(a, b), "diverged": int(d.diverged.sum()),
            "min train acc": float(d[~d.diverged].train.min()) if len(ok) else float("nan"),
            "premise": fail or "", "power premise": sd_fail or "", "estimate": e}


def powered_verdict(d: stats.Estimate, detectable: float, reference: float, a: str, b: str,
                    power_failure: str | None) -> str:
    """:func:`~implicitreg.analysis.stats.difference_verdict` with the power from the SD
    assumed; where the verdict rests on that power (no significant difference either
    way) and the runs do not bear the SD out, "not assessable" with the measured SD."""
    v = stats.difference_verdict(d, detectable, reference, a, b)
    significant = v == "reproduced" or v.endswith("is larger at this scale)")
    return v if significant or not power_failure else power_failure


def _seed_gaps(ct: pd.DataFrame, p: Params, n: int, lr: float) -> np.ndarray:
    sgd, large, _ = arm_names(p)
    d = ct[(ct.n == n) & (ct.lr == lr) & ~ct.diverged]
    piv = d.pivot_table(index="seed", columns="arm", values="test")
    return (piv[sgd] - piv[large]).dropna().to_numpy() if {sgd, large} <= set(piv) else np.array([])


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _eps_difference(high: float, low: float, d: stats.Estimate) -> str:
    return (f"gap at ε = {high:g} minus gap at ε = {low:g}: {_pct(d.value)} points"
            + (f" [{_pct(d.low)}, {_pct(d.high)}]" if np.isfinite(d.low) else
               " (no interval)"))


def analyze(runs: Runs, p: Params) -> Analysis:
    """Tables, every criterion's verdict and the glue values, from the runs (anything
    with ``config.steps``, ``config.seed``, ``final(metric, split)`` and ``summary``)."""
    from ..analysis import tables

    sgd, large, pen = arm_names(p)
    choice, n_max, eps_star = runs.choice, p.n_max, runs.choice.best
    pt, ct = cell_table(runs.pilot), cell_table(runs.confirmation)
    have = len(ct) > 0
    eps_rows = [gap_row(ct, p, n_max, lr) for lr in choice.usable] if have else []
    n_rows = [gap_row(ct, p, n, eps_star) for n in sorted(p.n_grid)] if have else []
    adjusted = stats.holm({r["n"]: r["p"] for r in n_rows if not r["premise"]}, ALPHA)
    for r in n_rows:
        r["p (Holm over n)"] = adjusted.get(r["n"], float("nan"))
    gaps = pd.DataFrame(eps_rows + [r for r in n_rows if r["n"] != n_max])
    head = runs.headline(p)
    final = tables.final_values(head) if head else pd.DataFrame(
        columns=["arm", "seed", "value", "diverged"])
    train_final = tables.final_values(head, "accuracy", "train") if head else final
    est = tables.arm_estimates(final, [sgd, large, pen])
    fit = tables.arm_estimates(train_final, [sgd, large, pen])
    v: dict[str, str] = {}

    # The headline gap: as registered, its first revision, and premises first.
    headline = next((r for r in eps_rows if r["lr"] == eps_star), None)
    if headline is None:
        why = ("the pilot found no learning rate at which every arm fits its training set"
               if p.pilot_seeds else "no confirmation run")
        v["gap"] = v["gap-r1"] = v["gap-r2"] = not_assessable(why)
        gap_text = detectable_text = own_text = f"not computed: {why}"
    else:
        e = headline["estimate"]
        why_gap = tables.not_assessable({a: est[a] for a in (sgd, large)})
        for cid, first in (("gap", False), ("gap-r1", True)):
            v[cid] = (not_assessable(why_gap) if why_gap else stats.difference_verdict(
                e, headline["detectable (own spread)"], PUBLISHED_GAP, "SGD", large,
                opposite_first=first))
        v["gap-r2"] = headline["premise"] or powered_verdict(
            e, headline["detectable"], PUBLISHED_GAP, "SGD", large, headline["power premise"])
        gap_text = (f"not computed: {why_gap}" if why_gap else
                    f"{_pct(e.value)} percentage points [{_pct(e.low)}, {_pct(e.high)}]"
                    if np.isfinite(e.low) else
                    f"{_pct(e.value)} percentage points (n={e.n}, no interval)")
        det = headline["detectable"]
        detectable_text = (f"{_pct(det)} percentage points (SD across seeds assumed: "
                           f"{_pct(SD_ARM)} points)" if np.isfinite(det) else
                           "not computable with fewer than two seeds per arm")
        own = headline["detectable (own spread)"]
        own_text = (f"{_pct(own)} percentage points (from the two arms' own spread)"
                    if np.isfinite(own) else "not computable with fewer than two seeds per arm")

    # The gap against ε.
    eps_low = min(choice.usable) if have and choice.usable else None
    eps_high = max(choice.usable) if have and choice.usable else None
    eps_text = eps_text_registered = "not computed"
    if headline is None:
        v["eps"] = v["eps-r1"] = v["eps-r2"] = v["eps-r3"] = not_assessable("no confirmation run")
    else:
        if eps_low == eps_star:
            v["eps"] = not_assessable("ε* is the smallest usable learning rate, so there is "
                                      "no smaller ε to compare with")
            eps_text_registered = "not computed: " + v["eps"].partition(": ")[2]
        else:
            de0 = stats.diff_ci(_seed_gaps(ct, p, n_max, eps_star),
                                _seed_gaps(ct, p, n_max, eps_low))
            eps_text_registered = _eps_difference(eps_star, eps_low, de0)
            v["eps"] = ("reproduced" if np.isfinite(de0.low) and de0.low > 0 else
                        "not reproduced (no significant shrinkage toward small ε at this scale)")
        if eps_low == eps_high:
            for cid in ("eps-r1", "eps-r2", "eps-r3"):
                v[cid] = not_assessable("only one learning rate is usable, so there is no ε "
                                        "dependence to measure")
        else:
            hi, lo = _seed_gaps(ct, p, n_max, eps_high), _seed_gaps(ct, p, n_max, eps_low)
            de = stats.diff_ci(hi, lo)
            names = (f"the gap at ε = {eps_high:g}", f"the gap at ε = {eps_low:g}")
            own = stats.detectable_difference(hi, lo)
            for cid, first in (("eps-r1", False), ("eps-r2", True)):
                v[cid] = stats.difference_verdict(de, own, PUBLISHED_GAP, *names,
                                                  opposite_first=first)
            det = stats.detectable_from_sd(SD_GAP, len(hi), len(lo))
            fail = premise_failure(fit_premises(ct, p, n_max, eps_low, (sgd, large))
                                   + fit_premises(ct, p, n_max, eps_high, (sgd, large)))
            sd_fail = premise_failure([sd_premise(f"the gap at ε = {lr:g}", x, SD_GAP)
                                       for lr, x in ((eps_high, hi), (eps_low, lo))])
            v["eps-r3"] = fail or powered_verdict(de, det, PUBLISHED_GAP, *names, sd_fail)
            eps_text = (_eps_difference(eps_high, eps_low, de)
                        + (f"; detectable at 80% power: {_pct(det)} points" if np.isfinite(det)
                           else ""))

    # The gap against n.
    detected0 = [r["n"] for r in n_rows if np.isfinite(r["low"]) and r["low"] > 0]
    v["n"] = (f"the gap is detectable from n = {min(detected0):,}" if detected0 else
              "no n of the grid shows a detectable gap" if n_rows else NOT_ASSESSABLE)
    excluded = [r for r in n_rows if r["premise"]]
    family = [r for r in n_rows if not r["premise"] and np.isfinite(r["p (Holm over n)"])]
    detected = [r["n"] for r in family if r["p (Holm over n)"] <= ALPHA and r["gap"] > 0]
    if not n_rows:
        v["n-r1"] = not_assessable("no confirmation run")
    elif not family:
        v["n-r1"] = not_assessable("; ".join(
            f"n = {r['n']:,}: {r['premise'].removeprefix(NOT_ASSESSABLE + ': ')}"
            if r["premise"] else f"n = {r['n']:,}: fewer than two seeds per arm"
            for r in n_rows))
    else:
        v["n-r1"] = (f"the gap is detectable from n = {min(detected):,}" if detected else
                     "no n of the grid shows a detectable gap")
        if excluded:
            v["n-r1"] += "; " + "; ".join(
                f"n = {r['n']:,} {r['premise']}" for r in excluded)
    n_text_registered = "; ".join(f"n = {r['n']:,}: {r['estimate'].fmt(100, 1)}"
                                  for r in n_rows) or "not computed"
    n_text = ("; ".join(
        f"n = {r['n']:,}: {r['estimate'].fmt(100, 1)}"
        + (f", detectable {_pct(r['detectable'])}" if np.isfinite(r["detectable"]) else "")
        + (f", Holm-adjusted p = {r['p (Holm over n)']:.3f}"
           if np.isfinite(r["p (Holm over n)"]) else "")
        for r in n_rows) if n_rows else "not computed")

    # The penalty at the headline cell.
    vals = {arm: final[(final.arm == arm) & ~final.diverged.astype(bool)].value.to_numpy()
            for arm in (sgd, large, pen)}
    closure = closure0 = None
    why_pen = tables.not_assessable({pen: est[pen]}) if head else "no confirmation run"
    if v["gap"] != "reproduced":
        v["penalty"] = not_assessable("there is no established SGD–large-batch gap to close")
    elif why_pen:
        v["penalty"] = not_assessable(why_pen)
    else:
        closure0 = stats.gap_closure(vals[sgd], vals[large], vals[pen])
        v["penalty"] = stats.closure_verdict(closure0, CLOSURE_FULL)
    if v["gap-r2"] != "reproduced":
        v["penalty-r1"] = not_assessable("there is no established SGD–large-batch gap to "
                                         f"close (gap: {v['gap-r2']})")
    else:
        fail = premise_failure(fit_premises(ct, p, n_max, eps_star, (sgd, large, pen)))
        if fail:
            v["penalty-r1"] = fail
        else:
            closure = stats.gap_closure(vals[sgd], vals[large], vals[pen])
            v["penalty-r1"] = stats.closure_verdict(closure, CLOSURE_FULL)

    verdicts = {cid: Verdict(cid, text.split(":")[0] if text.startswith(NOT_ASSESSABLE)
                             else text, text.partition(": ")[2]
                             if text.startswith(NOT_ASSESSABLE) else "")
                for cid, text in v.items()}
    a = Analysis(pt, ct, gaps, est, fit, closure, verdicts)
    all_fit = bool(head) and all(f.missing is None and f.value >= p.fit_threshold
                                 for f in fit.values())
    g: dict[str, Any] = {
        "gap": gap_text, "detectable": detectable_text, "detectable_own": own_text,
        "published_gap": f"{_pct(PUBLISHED_GAP)} percentage points",
        "train_fit": "; ".join(f"{arm} {fit[arm].fmt(100, 1, '%')}" for arm in fit)
        if head else "not run",
        "fit_note": "every arm fits its training set, so the comparison is between "
                    "interpolating solutions" if all_fit else "not every arm fits its "
                    "training set, so part of any difference is optimization speed rather "
                    "than implicit regularization",
        "closure": closure.fmt(1, 2) if closure is not None else
        f"not computed: {v['penalty-r1'].removeprefix(NOT_ASSESSABLE + ': ')}",
        "closure_registered": closure0.fmt(1, 2) if closure0 is not None else
        f"not computed: {v['penalty'].removeprefix(NOT_ASSESSABLE + ': ')}",
        "sgd_verdict": v[CURRENT["gap"]], "pen_verdict": v[CURRENT["penalty"]],
        "eps_text": eps_text, "eps_verdict": v[CURRENT["eps"]],
        "eps_text_registered": eps_text_registered,
        "n_text": n_text, "n_verdict": v[CURRENT["n"]], "n_text_registered": n_text_registered,
        "pilot_text": choice.describe() if p.pilot_seeds else
        "This profile has no pilot: its learning rate and training length were fixed from "
        "the measurements in shared/pilots.",
        "eps_star": "none" if eps_star is None else f"{eps_star:g}",
        "n_max": f"{n_max:,}", "n_seeds": len(p.seeds), "gd_arm": large, "pen_arm": pen,
        "data_source": _data_source(runs),
        "criteria_hash": registered_hash(), "criteria_registered": REGISTERED.replace("T", " "),
        "sd_assumed": f"{_pct(SD_ARM)} points per arm, {_pct(SD_GAP)} points for a per-seed gap",
    }
    for arm, key in ((sgd, "sgd"), (large, "gd"), (pen, "pen")):
        g[f"acc_{key}"] = est[arm].fmt(100, 1, "%") if head else "not run"
    g.update({VERDICT_GLUE[cid]: text for cid, text in v.items()})
    a.glue = g
    return a


def _data_source(runs: Runs) -> str:
    rs = [r for _, r in runs.confirmation or runs.pilot]
    return (getattr(rs[0], "provenance", {}) or {}).get("data_source_detail", "(not recorded)") \
        if rs else "(no run)"


def summary(a: Analysis, p: Params) -> dict[str, str]:
    """This set's headline cell in words and the current verdict of each claim (a row of
    :func:`~implicitreg.chapters.result_sets.side_by_side`)."""
    g = a.glue
    return {"headline cell": f"n = {g['n_max']}, ε* = {g['eps_star']}: SGD − {g['gd_arm']} "
                             f"{g['gap']}; final training accuracy {g['train_fit']}",
            **{claim: a.verdicts[cid].text for claim, cid in CURRENT.items()}}


def scale_description(p: Params) -> str:
    """What the runs were, for the sentence on the scale (after the profile's name)."""
    net = {"mlp": f"an MLP with hidden widths {list(p.widths)}",
           "cnn": f"a CNN of width {p.cnn_width}"}.get(p.model, f"a {p.model}")
    name = {"cifar10": "CIFAR-10", "mnist": "MNIST"}.get(p.dataset, p.dataset)
    side = {"cifar10": 32, "mnist": 28}.get(p.dataset)
    res = f" at {side // p.downsample}×{side // p.downsample} pixels" if side else ""
    return (f"{net} trained on {', '.join(f'{n:,}' for n in sorted(p.n_grid))} {name} "
            f"training images{res}, {len(p.seeds)} confirmation seed(s) per arm and cell, "
            f"{len(p.pilot_seeds)} pilot seed(s), {'with' if p.augment else 'without'} data "
            "augmentation.")


# ------------------------------------------------------------------ measurements from weights
@dataclass
class Landscape:
    sharpness: pd.DataFrame
    """One row per headline run: arm, seed, top Hessian eigenvalue, diverged."""
    slices: pd.DataFrame
    """Training loss along one filter-normalized direction through each arm's solution
    (first seed)."""
    estimates: dict[str, Any]
    glue: dict[str, str]


def measure_landscape(runs: Runs, p: Params) -> Landscape:
    """Sharpness at the final weights of the headline cell and a 1-D slice through each
    solution (restores the stored weights; measures, trains nothing); also how far the
    pilot's subset is from the confirmation's."""
    import torch

    from ..analysis.landscape import filter_normalized_direction, loss_along, top_eigenvalue
    from ..analysis import tables
    from ..runs.runner import restore

    arms = arm_names(p)
    head = runs.headline(p)
    rows, slices = [], []
    alphas = torch.linspace(-1, 1, 21)
    for arm, r in head:
        net, data = restore(r)
        xs, ys = data.x_train[:p.sharpness_examples], data.y_train[:p.sharpness_examples]
        diverged = bool(r.summary["diverged"])
        lam = float("nan") if diverged else float(top_eigenvalue(net, xs, ys, iters=50, seed=0))
        rows.append({"arm": arm, "seed": r.config.seed, "value": lam, "diverged": diverged})
        if r.config.seed == p.seeds[0]:
            d = filter_normalized_direction(net, seed=123)
            vals = loss_along(net, xs, ys, [d], alphas[:, None].to(xs.dtype))
            slices.append(pd.DataFrame({"arm": arm, "alpha": alphas.numpy(),
                                        "loss": vals.numpy()}))
    sharp = pd.DataFrame(rows, columns=["arm", "seed", "value", "diverged"])
    est = tables.arm_estimates(sharp, arms)
    g = {f"sharp_{k}": est[a].fmt(1, 2) if head else "not run"
         for a, k in zip(arms, ("sgd", "gd", "pen"))}
    g["overlap"] = "there is no pilot subset to compare"
    if runs.pilot and head:
        from ..engine.data import load_for

        overlap = pilot_rule.subset_overlap(load_for(runs.pilot[0][1].config).train_index,
                                            load_for(head[0][1].config).train_index)
        g["overlap"] = (f"{overlap:,} of the pilot's {p.pilot_n_train:,} training images are "
                        f"also in the confirmation's {p.n_max:,} (both are seeded "
                        "class-stratified draws from the same pool, so some overlap is "
                        "expected; seeds and data order are all fresh)")
    return Landscape(sharp, pd.concat(slices, ignore_index=True) if slices else
                     pd.DataFrame(columns=["arm", "alpha", "loss"]), est, g)


# ------------------------------------------------------------------ figures
def fig_pilot(a: Analysis, p: Params, runs: Runs):
    """Final test and training accuracy of each pilot arm at every candidate ε; a cross
    marks an ε the rule dropped."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    pt = a.pilot
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    for ax, col, title in [(axes[0], "test", "Pilot: final test accuracy"),
                           (axes[1], "train", "Pilot: final training accuracy")]:
        sns.lineplot(data=pt[~pt.diverged], x="lr", y=col, hue="arm", marker="o", ax=ax,
                     errorbar=None)
        dropped = [lr for lr in p.lr_grid if lr not in runs.choice.usable]
        ax.plot(dropped, [pt[col].min()] * len(dropped), "x", color="k", ms=10,
                label="dropped by the rule")
        ax.set(xscale="log", xlabel="learning rate ε", ylabel=col + " accuracy", title=title)
        ax.legend(fontsize="small")
    axes[1].axhline(p.fit_threshold, color="0.5", ls=":")
    fig.tight_layout()
    return fig


def fig_gaps(a: Analysis, p: Params, runs: Runs):
    """SGD − large batch with its 95% interval against ε (at n_max) and against n (at
    ε*); shaded: the difference detectable at 80% power; dashed: Novack et al.'s gap."""
    import matplotlib.pyplot as plt

    _, large, _ = arm_names(p)
    g = a.gaps
    eps_star = runs.choice.best
    parts = [(g[g.n == p.n_max] if len(g) else g, "lr", "learning rate ε"),
             (g[g.lr == eps_star].sort_values("n") if len(g) else g, "n", "training-set size n")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (rows, x, label) in zip(axes, parts):
        if len(rows):
            ax.errorbar(rows[x], 100 * rows.gap, yerr=[100 * (rows.gap - rows.low),
                                                       100 * (rows.high - rows.gap)],
                        fmt="o-", capsize=4, color="C0", label="SGD − " + large)
            ax.fill_between(rows[x], -100 * rows.detectable, 100 * rows.detectable,
                            color="0.85", label="detectable at 80% power")
            ax.set_xscale("log")
            ax.set_xticks(rows[x], [f"{v:g}" for v in rows[x]])
            ax.minorticks_off()
        ax.axhline(0, color="k", lw=0.8)
        ax.axhline(100 * PUBLISHED_GAP, color="C3", ls="--", lw=1, label="Novack et al.'s gap")
        ax.set(xlabel=label, ylabel="test accuracy difference (points)")
        ax.legend(fontsize="small")
    axes[0].set_title(f"Gap against ε (n = {p.n_max:,})")
    axes[1].set_title("Gap against n" + (f" (ε = {eps_star:g})" if eps_star else ""))
    fig.tight_layout()
    return fig


def gap_table(a: Analysis) -> pd.DataFrame:
    """The cells of the two sweeps, in points."""
    if not len(a.gaps):
        return pd.DataFrame()
    t = a.gaps.drop(columns=["estimate"]).copy()
    for col in ["gap", "low", "high", "detectable", "detectable (own spread)", "min train acc"]:
        t[col] = (100 * t[col]).round(1)
    return t.rename(columns={"lr": "ε", "gap": "SGD − large (points)", "low": "95% low",
                             "high": "95% high", "detectable": "detectable (points)"})


def fig_headline(runs: Runs, p: Params):
    """Test and training accuracy of the three arms at the headline cell (means over
    seeds, 95% bands)."""
    import matplotlib.pyplot as plt

    from ..analysis import plots, tables

    head, arms = runs.headline(p), list(arm_names(p))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, split, title in [(axes[0], "test", "Test accuracy"),
                             (axes[1], "train", "Training accuracy (whole training subset)")]:
        plots.band_plot(tables.tidy(head, "accuracy", split), "step", "value", "arm",
                          ax=ax, order=arms)
        ax.set(xlabel="update (step)", ylabel=f"{split} accuracy", title=title)
    axes[1].axhline(p.fit_threshold, color="0.5", ls=":")
    fig.tight_layout()
    return fig


def fig_terms(runs: Runs, p: Params):
    """The full-batch gradient norm and the minibatch-gradient variance along the
    headline cell's arms."""
    import matplotlib.pyplot as plt

    from ..analysis import plots, tables

    head, arms = runs.headline(p), list(arm_names(p))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, metric, title in [(axes[0], "grad_norm2_full", r"$\|\nabla C\|^2$"),
                              (axes[1], "grad_variance",
                               r"$\frac{1}{m}\sum_k\|\nabla \hat C_k-\nabla C\|^2$")]:
        plots.band_plot(tables.tidy(head, metric, "eval"), "step", "value", "arm", ax=ax,
                          order=arms, log=True)
        ax.set(xlabel="update (step)", ylabel=title, title=title)
    fig.tight_layout()
    return fig


def fig_landscape(m: Landscape, p: Params):
    """Sharpness at the end per arm (95% intervals) and the 1-D slices."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from ..analysis import plots

    arms = list(arm_names(p))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sns.stripplot(data=m.sharpness, x="arm", y="value", order=arms, ax=axes[0], color="0.3")
    plots.ci_errorbars(axes[0], m.estimates)
    axes[0].set(xlabel="", ylabel="top Hessian eigenvalue", title="Sharpness at the end (95% CI)")
    sns.lineplot(data=m.slices, x="alpha", y="loss", hue="arm", hue_order=arms, ax=axes[1])
    axes[1].set(xlabel="step along a filter-normalized direction", ylabel="training loss",
                title=f"1-D slice through each solution (seed {p.seeds[0]})")
    fig.tight_layout()
    return fig


def figures(a: Analysis, runs: Runs, p: Params) -> dict[str, Any]:
    """The chapter's figures that this set can draw, each drawn when called (the
    landscape re-measures the headline cell's weights)."""
    out = {"pilot": lambda: fig_pilot(a, p, runs)} if runs.pilot else {}
    out["gaps"] = lambda: fig_gaps(a, p, runs)
    if runs.headline(p):
        out["headline"] = lambda: fig_headline(runs, p)
        out["terms"] = lambda: fig_terms(runs, p)
        out["landscape"] = lambda: fig_landscape(measure_landscape(runs, p), p)
    return out


__all__ = ["Params", "profile", "Cell", "arm_names", "design", "STAGED", "figures",
           "choose",
           "design_confirmation", "Runs", "run", "CRITERIA", "REVISIONS", "CURRENT",
           "STATISTIC_GLUE", "VERDICT_GLUE", "registered_hash", "revisions_hash",
           "criteria_table", "Analysis", "analyze", "cell_table", "gap_table", "Landscape",
           "measure_landscape", "scale_description", "summary", "fig_pilot", "fig_gaps",
           "fig_headline", "fig_terms", "fig_landscape", "PUBLISHED_GAP", "SD_ARM",
           "SD_GAP"]
