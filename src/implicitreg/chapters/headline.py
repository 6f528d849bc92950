"""The headline with power: small-batch SGD against a batch 20× larger (and full-batch GD)
and against the large batch with the explicit penalty, every arm trained until it
interpolates, eight paired seeds per arm.

Measured claim (Smith et al. 2021; Novack et al. 2023): at the same ε and number of
updates, SGD with B = 32 ends at a higher test accuracy than B = 640 once both fit their
training set, and the penalty λ(1/k)Σ_k‖∇Ĉ_k‖² over the k = 20 micro-batches of 32 inside
each large batch recovers most of the difference.

The design, fixed with its criteria before any of its runs (:data:`REGISTERED`):

1. **ε pilot** (pilot seeds and subset, the headline n): SGD and the large batch at the
   grid's ε from the largest down; ε* is the first at which every pilot run fits (see
   :func:`fits`) and none diverged. The pilot stops there.
2. **Gap confirmation** (fresh seeds and subset) at ε*, for every n of the grid; where the
   large batch is the whole training set, that arm is full-batch GD.
3. **λ pilot** at ε* and the smallest n: the large batch with the penalty at each λ of the
   grid (which holds Novack et al.'s 0.01); λ* is the λ with the highest mean pilot
   statistic among those whose every run fits and none diverged.
4. **Penalty confirmation**: the large batch with λ* at the headline cell, same seeds.

Revision ``penalty-r1`` (:data:`REVISIONS`, registered after λ* = 0.02 diverged at the
headline cell and before any run of its own): λ_r1 is the λ pilot's rule over the grid's
λ below the smallest λ with a diverged confirmation run there, stepping down again while
a confirmation run diverges (:func:`choose_lambda_r1`).

Every arm of a seed starts from the same initialization and draws the same first
permutation of the data. The compared statistic is a run's mean test accuracy over its
last ``window`` evaluations (evaluations every ``1/evals_per_run`` of training), on all
10,000 test images; comparisons are paired by seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

import numpy as np
import pandas as pd

from ..analysis import stats
from .base import ChapterParams, committed_count, still_training
from .criteria import (NOT_REPRODUCED, REPRODUCED, Criterion, Premise, Revision,
                       not_assessable, premise_failure, register, sd_premise)

CHAPTER = "headline"
PUBLISHED_GAP = 0.9264 - 0.8983
"""Novack et al., ResNet-18 on CIFAR-10: batch 128 against 5,120."""
NOVACK_LAMBDA = 0.01


# ------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Params(ChapterParams):
    """The values the chapter runs with; the profiles of ``notebooks/profiles/headline.yaml``
    are its named instances."""
    dataset: str
    """Dataset name (cifar10, mnist, synthetic)."""
    n_test: int | None
    """Test examples (None: the whole test set)."""
    downsample: int
    """Average-pool the images by this factor (2: CIFAR-10 at 16×16)."""
    cnn_width: int
    """Channels of the first convolution of the CNN (no normalization layers)."""
    batch_size: int
    """SGD's B, and the penalty's micro-batch."""
    large_batch: int
    """The large batch (a multiple of ``batch_size``); at an n no larger, full-batch GD."""
    lr_grid: tuple[float, ...]
    """Candidate ε, tried from the largest down by the ε pilot."""
    lambda_grid: tuple[float, ...]
    """Candidate penalty strengths λ (absolute, not in units of ε/4)."""
    n_grid: tuple[int, ...]
    """Training-set sizes of the gap confirmation; the largest is the headline cell's."""
    epochs: int
    """Training length in epochs of the small batch; every arm takes as many updates."""
    evals_per_run: int
    """Evaluations per run, evenly spaced, besides the one at step 0."""
    window: int
    """The last this many evaluations make a run's statistic and its fit check."""
    fit_threshold: float
    """Training accuracy every evaluation of the window must reach for a run to fit."""
    seeds: tuple[int, ...]
    """Confirmation seeds (initialization and data order), shared by the arms."""
    data_seed: int
    """The confirmation's training subset."""
    pilot_seeds: tuple[int, ...]
    """Pilot seeds."""
    pilot_data_seed: int
    """The pilot's training subset."""
    # Revision penalty-r2 (the explicit penalty with stabilizers); the defaults leave it
    # out, so that parameters recorded with earlier sets still describe them.
    r2_lambda_grid: tuple[float, ...] = ()
    """λ grid (absolute units) of revision penalty-r2's pilot; empty: r2 is not run."""
    r2_pilot_seeds: tuple[int, ...] = ()
    """Pilot seeds of revision penalty-r2 (at least 3), on their own subset."""
    r2_pilot_data_seed: int = 200
    """The r2 pilot's training subset (neither the confirmation's nor the first pilot's)."""
    r2_clip: float | None = None
    """Revision penalty-r2: every arm's total gradient (penalty included) is clipped to
    this norm, SGD's and the plain large batch's too (None: no clipping)."""
    r2_penalty_grad: str = "finite-difference"
    """How revision penalty-r2 computes the penalty's gradient (``finite-difference`` or
    ``double-backprop``)."""

    CHAPTER: ClassVar[str] = CHAPTER

    def __post_init__(self) -> None:
        self._tuples("lr_grid", "lambda_grid", "n_grid", "seeds", "pilot_seeds",
                     "r2_lambda_grid", "r2_pilot_seeds")
        self._positive_ints("downsample", "cnn_width", "batch_size", "large_batch",
                            "epochs", "evals_per_run", "window")
        if self.large_batch % self.batch_size or self.large_batch <= self.batch_size:
            raise ValueError(f"Params.large_batch = {self.large_batch!r}: a multiple of "
                             f"batch_size ({self.batch_size}) larger than it")
        for name in ("lr_grid", "lambda_grid"):
            v = getattr(self, name)
            if not v or any(not (x > 0) for x in v):
                raise ValueError(f"Params.{name} = {v!r}: values > 0")
        if not self.n_grid or any(n % self.batch_size or n < self.large_batch
                                  for n in self.n_grid):
            raise ValueError(f"Params.n_grid = {self.n_grid!r}: multiples of batch_size "
                             f"no smaller than large_batch ({self.large_batch})")
        if self.window > self.evals_per_run:
            raise ValueError(f"Params.window = {self.window}: at most evals_per_run")
        if len(self.seeds) < 2 or len(self.pilot_seeds) < 1:
            raise ValueError("Params.seeds: at least two; Params.pilot_seeds: at least one")
        if not 0 <= self.fit_threshold <= 1:
            raise ValueError(f"Params.fit_threshold = {self.fit_threshold!r}: in [0, 1]")
        if any(not (x > 0) for x in self.r2_lambda_grid):
            raise ValueError(f"Params.r2_lambda_grid = {self.r2_lambda_grid!r}: values > 0")
        if self.r2_lambda_grid and len(self.r2_pilot_seeds) < 3:
            raise ValueError(f"Params.r2_pilot_seeds = {self.r2_pilot_seeds!r}: at least "
                             "three (a rarer divergence than 1 in 3 needs seeds to show)")
        if self.r2_clip is not None and not self.r2_clip > 0:
            raise ValueError(f"Params.r2_clip = {self.r2_clip!r}: None or a norm > 0")
        if self.r2_penalty_grad not in ("finite-difference", "double-backprop"):
            raise ValueError(f"Params.r2_penalty_grad = {self.r2_penalty_grad!r}: "
                             "'finite-difference' or 'double-backprop'")

    @property
    def n_max(self) -> int:
        return max(self.n_grid)

    @property
    def n_min(self) -> int:
        return min(self.n_grid)


profile = Params.profile


# ------------------------------------------------------------------ design
SGD, LARGE, PENALTY = "SGD", "large batch", "large batch + penalty"
ARMS = (SGD, LARGE, PENALTY)


@dataclass(frozen=True, order=True)
class Cell:
    """One run: stage (``eps-pilot``, ``gap``, ``lambda-pilot``, ``penalty``), arm, n, ε,
    λ (0 without the penalty) and seed."""
    stage: str
    arm: str
    n: int
    lr: float
    lam: float
    seed: int


def arm_name(p: Params, arm: str, n: int, lam: float) -> str:
    """:func:`arm_label`, with λ for the penalized arm (the registered λ* and λ_r1 are
    shown side by side)."""
    return arm_label(p, arm, n) + (f" (λ = {lam:g})" if arm == PENALTY else "")


def _headline_runs(rt: pd.DataFrame, p: Params) -> pd.DataFrame:
    """The confirmation runs at the headline cell, each named by :func:`arm_name`, in the
    order SGD, large batch, penalized (by λ, largest first)."""
    d = rt[rt.stage.isin(["gap", "penalty", "penalty-r1"]) & (rt.n == p.n_max)]
    d = d.assign(name=[arm_name(p, a, n, lam) for a, n, lam in zip(d.arm, d.n, d.lam)],
                 order=[(ARMS.index(a), -lam) for a, lam in zip(d.arm, d.lam)])
    return d.sort_values(["order", "seed"], kind="stable").drop(columns="order")


def arm_label(p: Params, arm: str, n: int) -> str:
    """How the book names an arm at n: "B = 640", or "GD" where that batch is all of n."""
    big = "GD" if p.large_batch >= n else f"B = {p.large_batch}"
    return {SGD: f"SGD (B = {p.batch_size})", LARGE: big, PENALTY: f"{big} + penalty"}[arm]


def config(p: Params, cell: Cell, data_seed: int):
    """The run of one cell: the arms share everything but the batch (and the penalty)."""
    from ..engine.config import RunConfig

    steps = p.epochs * cell.n // p.batch_size
    cfg = RunConfig(dataset=p.dataset, n_test=p.n_test, model="cnn", cnn_width=p.cnn_width,
                    downsample=p.downsample, n_train=cell.n, data_seed=data_seed,
                    lr=cell.lr, steps=steps, seed=cell.seed, batch_size=p.batch_size,
                    eval_every=max(1, steps // p.evals_per_run),
                    eval_examples=min(512, cell.n),
                    progress=False)
    if cell.stage.startswith("r2") and p.r2_clip is not None:
        # revision penalty-r2 clips every arm alike, so that the penalty stays the only
        # difference between the large batch and its penalized run
        cfg = cfg.replace(clip_grad=p.r2_clip)
    if cell.arm == SGD:
        return cfg
    big = (cfg.replace(method="gd") if p.large_batch >= cell.n else
           cfg.replace(batch_size=p.large_batch))
    if cell.arm == PENALTY:
        big = big.replace(reg="sgd-modified", micro_batch=p.batch_size,
                          reg_scale=RunConfig.reg_scale_for(cell.lam, cell.lr))
        if cell.stage.startswith("r2"):
            big = big.replace(penalty_grad=p.r2_penalty_grad)
    return big


def _pairs(p: Params, cells: Iterable[Cell], data_seed: int) -> list[tuple[Cell, Any]]:
    return [(c, config(p, c, data_seed)) for c in cells]


def design_eps_pilot(p: Params, lr: float) -> list[tuple[Cell, Any]]:
    """The ε pilot at one ε: SGD and the large batch, pilot seeds, the headline n."""
    return _pairs(p, [Cell("eps-pilot", arm, p.n_max, lr, 0.0, s)
                      for s in p.pilot_seeds for arm in (SGD, LARGE)], p.pilot_data_seed)


def design_gap(p: Params, lr: float) -> list[tuple[Cell, Any]]:
    """SGD and the large batch (GD where it is all of n) at ε*, every n (the headline
    first), every confirmation seed."""
    ns = sorted(p.n_grid, reverse=True)
    return _pairs(p, [Cell("gap", arm, n, lr, 0.0, s) for n in ns for s in p.seeds
                      for arm in (SGD, LARGE)], p.data_seed)


def design_lambda_pilot(p: Params, lr: float) -> list[tuple[Cell, Any]]:
    """The penalized large batch at each λ of the grid, at ε* and the smallest n."""
    return _pairs(p, [Cell("lambda-pilot", PENALTY, p.n_min, lr, lam, s)
                      for lam in p.lambda_grid for s in p.pilot_seeds], p.pilot_data_seed)


def design_penalty(p: Params, lr: float, lam: float, stage: str = "penalty"
                   ) -> list[tuple[Cell, Any]]:
    """The penalized large batch at the headline cell with λ* (``stage`` "penalty") or
    λ_r1 ("penalty-r1"), every confirmation seed."""
    return _pairs(p, [Cell(stage, PENALTY, p.n_max, lr, lam, s) for s in p.seeds],
                  p.data_seed)


def r2_ns(p: Params) -> list[int]:
    """The cells of revision penalty-r2: the headline cell (the large batch on the
    largest n) and the full-batch cell (GD on the smallest n, where the large batch is
    all of it: Geiping et al.'s claim)."""
    return sorted({p.n_max, p.n_min}, reverse=True)


def design_r2_pilot(p: Params, lr: float) -> list[tuple[Cell, Any]]:
    """Revision penalty-r2's λ pilot: the penalized large batch at each λ of its grid, at
    the confirmation's own cells (n, B, ε), on the r2 pilot seeds and subset."""
    return _pairs(p, [Cell("r2-pilot", PENALTY, n, lr, lam, s) for n in r2_ns(p)
                      for lam in p.r2_lambda_grid for s in p.r2_pilot_seeds],
                  p.r2_pilot_data_seed)


def design_r2_plain(p: Params, lr: float) -> list[tuple[Cell, Any]]:
    """SGD and the plain large batch at the r2 cells on the confirmation seeds, with the
    r2 stabilizers (without clipping these are the gap's own runs, loaded again)."""
    return _pairs(p, [Cell("r2-gap", arm, n, lr, 0.0, s) for n in r2_ns(p)
                      for s in p.seeds for arm in (SGD, LARGE)], p.data_seed)


def design_r2_penalty(p: Params, lr: float, lams: dict[int, float]) -> list[tuple[Cell, Any]]:
    """The penalized large batch at each r2 cell with its λ_r2, confirmation seeds."""
    return _pairs(p, [Cell("r2-penalty", PENALTY, n, lr, lams[n], s) for n in r2_ns(p)
                      if lams.get(n) is not None for s in p.seeds], p.data_seed)


def choose_lambda_r2(p: Params, d: pd.DataFrame) -> tuple[float | None, dict[float, str]]:
    """λ_r2 at one cell from its pilot runs ``d``: a λ is admissible when every pilot run
    at it fits and none diverged; λ_max is the largest λ of the grid below which every λ
    is admissible too; λ_r2 is one grid step below λ_max, a margin against a divergence
    rarer than the pilot's seeds can show (three seeds miss a 1-in-8 rate two times in
    three), or λ_max itself when it is the grid's smallest."""
    grid = sorted(p.r2_lambda_grid)
    why: dict[float, str] = {}
    lam_max = None
    for lam in grid:
        g = d[d.lam == lam]
        if len(g) and g.fits.all():
            why[lam] = f"admissible: every pilot run fits, mean statistic {100 * g.stat.mean():.2f}%"
            lam_max = lam
        else:
            why[lam] = (_fit_words(g[~g.fits], p) if len(g) else "no pilot run")
            break
    for lam in grid:
        why.setdefault(lam, "not tried as a choice: a smaller λ was not admissible")
    if lam_max is None:
        return None, why
    i = grid.index(lam_max)
    chosen = grid[i - 1] if i > 0 else lam_max
    why[chosen] += (": chosen (one grid step below λ_max = "
                    f"{lam_max:g})" if chosen != lam_max else
                    ": chosen (the grid's smallest λ; no margin below it)")
    return chosen, why


# ------------------------------------------------------------------ a run's statistic
def window_values(r: Any, split: str, window: int) -> np.ndarray:
    """Accuracy on ``split`` at the run's last ``window`` evaluations."""
    return r.curve("accuracy", split).value.to_numpy(dtype=float)[-window:]


def statistic(r: Any, window: int) -> float:
    """The compared statistic: mean test accuracy over the last ``window`` evaluations."""
    v = window_values(r, "test", window)
    return float(v.mean()) if len(v) == window else float("nan")


def fit_level(r: Any, window: int) -> float:
    """The lowest training accuracy over the last ``window`` evaluations."""
    v = window_values(r, "train", window)
    return float(v.min()) if len(v) == window else float("nan")


def fits(r: Any, p: Params) -> bool:
    """A run fits when it did not diverge and every evaluation of the window is at or
    above the fit threshold."""
    return not r.summary.get("diverged") and fit_level(r, p.window) >= p.fit_threshold


def run_table(results: Iterable[tuple[Cell, Any]], p: Params) -> pd.DataFrame:
    """One row per run: its cell, the statistic, the final test accuracy, the lowest
    training accuracy of the window, whether it fit and whether it diverged."""
    cols = ["stage", "arm", "n", "lr", "lam", "seed", "steps", "stat", "final", "fit_level",
            "fits", "diverged", "clipped"]
    return pd.DataFrame([{
        "stage": c.stage, "arm": c.arm, "n": c.n, "lr": c.lr, "lam": c.lam, "seed": c.seed,
        "steps": r.config.steps, "stat": statistic(r, p.window),
        "final": r.final("accuracy", "test"), "fit_level": fit_level(r, p.window),
        "fits": fits(r, p), "diverged": bool(r.summary.get("diverged")),
        "clipped": _clipped(r)}
        for c, r in results], columns=cols)


def _clipped(r: Any) -> float:
    """The fraction of a run's updates whose gradient was clipped (NaN: not clipped)."""
    if getattr(getattr(r, "config", None), "clip_grad", None) is None:
        return float("nan")
    v = r.curve("clipped_fraction", "train").value.to_numpy(dtype=float)
    return float(v.mean()) if len(v) else float("nan")


# ------------------------------------------------------------------ the pilot rules
def choose_eps(p: Params, pilot_at: dict[float, pd.DataFrame]) -> tuple[float | None, dict[float, str]]:
    """ε*: the largest ε whose every pilot run fits; with the reason for each ε tried."""
    why: dict[float, str] = {}
    for lr in sorted(pilot_at, reverse=True):
        d = pilot_at[lr]
        bad = d[~d.fits]
        if len(bad) == 0 and len(d):
            why[lr] = "every pilot run fits: chosen"
            return lr, why
        why[lr] = "; ".join(
            f"{a}: {_fit_words(bad[bad.arm == a], p)}" for a in bad.arm.unique()
        ) or "no pilot run"
    return None, why


def choose_lambda(p: Params, d: pd.DataFrame) -> tuple[float | None, dict[float, str]]:
    """λ*: the highest mean pilot statistic among the λ whose every pilot run fits."""
    why, ok = {}, {}
    for lam, g in d.groupby("lam"):
        if g.fits.all():
            ok[lam] = float(g.stat.mean())
            why[lam] = f"every run fits; mean statistic {100 * ok[lam]:.2f}%"
        else:
            why[lam] = _fit_words(g[~g.fits], p)
    if not ok:
        return None, why
    best = max(ok, key=lambda lam: (ok[lam], -lam))
    why[best] += ": chosen"
    return best, why


def choose_lambda_r1(p: Params, pilot: pd.DataFrame, confirmed: pd.DataFrame
                     ) -> tuple[float | None, dict[float, str]]:
    """λ_r1 (revision penalty-r1): the λ pilot's rule (:func:`choose_lambda`) over the
    grid's λ below the smallest λ at which a confirmation run at the headline cell
    diverged; with no such divergence, the registered λ*."""
    div = confirmed[confirmed.diverged]
    if not len(div):
        return choose_lambda(p, pilot)
    below = float(div.lam.min())
    lam, why = choose_lambda(p, pilot[pilot.lam < below])
    for x in sorted(set(pilot.lam[pilot.lam >= below])):
        g = confirmed[confirmed.lam == x]
        why[x] = (f"{int(g.diverged.sum())} of {len(g)} confirmation runs at the headline "
                  "cell diverged" if len(g) else f"not below λ = {below:g}, which diverged")
    return lam, why


def _fit_words(bad: pd.DataFrame, p: Params) -> str:
    div = int(bad.diverged.sum())
    levels = bad[~bad.diverged].fit_level
    short = int(levels.isna().sum())  # fewer evaluations than the window
    levels = levels.dropna()
    parts = [f"{div} run(s) diverged"] if div else []
    if len(levels):
        parts.append(f"{len(levels)} run(s) below {100 * p.fit_threshold:g}% training "
                     f"accuracy (lowest {100 * levels.min():.1f}%)")
    if short:
        parts.append(f"{short} run(s) with fewer than {p.window} evaluations")
    return ", ".join(parts)


@dataclass
class Runs:
    """The chapter's runs, stage by stage, and what the pilots chose."""
    eps_pilot: list[tuple[Cell, Any]]
    eps_star: float | None
    eps_reasons: dict[float, str]
    gap: list[tuple[Cell, Any]]
    lambda_pilot: list[tuple[Cell, Any]]
    lam_star: float | None
    lam_reasons: dict[float, str]
    penalty: list[tuple[Cell, Any]]
    penalty_r1: list[tuple[Cell, Any]] = field(default_factory=list)
    """Revision penalty-r1's confirmation runs, at each λ it stepped through."""
    lam_r1: float | None = None
    lam_r1_reasons: dict[float, str] = field(default_factory=dict)
    r2_pilot: list[tuple[Cell, Any]] = field(default_factory=list)
    """Revision penalty-r2's λ pilot, its plain arms and its penalized confirmation."""
    r2_gap: list[tuple[Cell, Any]] = field(default_factory=list)
    r2_penalty: list[tuple[Cell, Any]] = field(default_factory=list)
    lam_r2: dict[int, float | None] = field(default_factory=dict)
    """n → λ_r2 (None: no admissible λ at that cell)."""
    lam_r2_reasons: dict[int, dict[float, str]] = field(default_factory=dict)
    r2_pending: str = ""
    """Set by a re-plot (no training) of a set whose revision penalty-r2 is still
    training: how many of its runs are committed. Its verdicts then wait for the rest."""

    def all(self) -> list[tuple[Cell, Any]]:
        return (self.eps_pilot + self.gap + self.lambda_pilot + self.penalty
                + self.penalty_r1 + self.r2_pilot + self.r2_gap + self.r2_penalty)


STAGED = ("ε* comes from a pilot over the learning-rate grid, λ* from a pilot at ε*, and "
          "each revision's λ from its own pilot: every stage's runs depend on the results "
          "of the one before, so there is no single design; :func:`run` makes the stages "
          "in order (:func:`design_eps_pilot` first)")


def run(p: Params, **options: Any) -> Runs:
    """The four stages in order, each loaded from the run store or trained; a stage that
    has nothing to run (no ε* or no λ*) leaves the later ones empty."""
    from ..runs.runner import MissingRunError
    from ..runs.sweeps import run_labeled

    eps_pilot: list = []
    pilot_at: dict[float, pd.DataFrame] = {}
    eps_star, eps_why = None, {}
    for lr in sorted(p.lr_grid, reverse=True):
        got = run_labeled(design_eps_pilot(p, lr), **options)
        eps_pilot += got
        pilot_at[lr] = run_table(got, p)
        eps_star, eps_why = choose_eps(p, pilot_at)
        if eps_star is not None:
            break
    if eps_star is None:
        return Runs(eps_pilot, None, eps_why, [], [], None, {}, [])
    gap = run_labeled(design_gap(p, eps_star), **options)
    lam_pilot = run_labeled(design_lambda_pilot(p, eps_star), **options)
    lam_star, lam_why = choose_lambda(p, run_table(lam_pilot, p))
    pen = (run_labeled(design_penalty(p, eps_star, lam_star), **options)
           if lam_star is not None else [])
    # Revision penalty-r1: step down the grid below any λ that diverged at the headline
    # cell; a λ_r1 equal to λ* reuses the registered runs.
    pen_r1: list = []
    lam_r1, r1_why = None, {}
    if lam_star is not None:
        pilot_t = run_table(lam_pilot, p)
        while True:
            confirmed = run_table(pen + pen_r1, p)
            lam_r1, r1_why = choose_lambda_r1(p, pilot_t, confirmed)
            if lam_r1 is None or lam_r1 == lam_star:
                break
            got = run_labeled(design_penalty(p, eps_star, lam_r1, "penalty-r1"), **options)
            pen_r1 += got
            if not any(r.summary.get("diverged") for _, r in got):
                break
    runs = Runs(eps_pilot, eps_star, eps_why, gap, lam_pilot, lam_star, lam_why, pen,
                pen_r1, lam_r1, r1_why)
    if p.r2_lambda_grid:
        try:
            _run_r2(runs, p, eps_star, options)
        except MissingRunError:
            # Raised only when training is off: a re-plot of a committed set whose
            # revision is still training keeps the registered verdicts and says how far
            # the revision has come, instead of refusing the whole chapter.
            runs.r2_pilot, runs.r2_gap, runs.r2_penalty = [], [], []
            runs.r2_pending = r2_progress(p, eps_star, options)
    return runs


def _run_r2(runs: Runs, p: Params, eps_star: float, options: dict[str, Any]) -> None:
    """Revision penalty-r2: its pilot at the confirmation's cells, then the plain arms
    with its stabilizers, then the penalized arm at each cell's λ_r2."""
    from ..runs.sweeps import run_labeled

    runs.r2_pilot = run_labeled(design_r2_pilot(p, eps_star), **options)
    pilot_t = run_table(runs.r2_pilot, p)
    for n in r2_ns(p):
        runs.lam_r2[n], runs.lam_r2_reasons[n] = choose_lambda_r2(p, pilot_t[pilot_t.n == n])
    runs.r2_gap = run_labeled(design_r2_plain(p, eps_star), **options)
    runs.r2_penalty = run_labeled(design_r2_penalty(p, eps_star, runs.lam_r2), **options)


def r2_progress(p: Params, eps_star: float, options: dict[str, Any]) -> str:
    """How many of revision penalty-r2's runs the store holds, stage by stage; the
    penalized stage's runs are known only once its pilot is complete."""
    from ..runs.sweeps import run_labeled

    pilot = design_r2_pilot(p, eps_star)
    have = committed_count(pilot, options)
    plain = design_r2_plain(p, eps_star)
    parts = [f"λ pilot {have} of {len(pilot)}",
             f"plain arms {committed_count(plain, options)} of {len(plain)}"]
    if have == len(pilot):
        t = run_table(run_labeled(pilot, **options), p)
        lams = {n: choose_lambda_r2(p, t[t.n == n])[0] for n in r2_ns(p)}
        pen = design_r2_penalty(p, eps_star, lams)
        parts.append(f"penalized arm {committed_count(pen, options)} of {len(pen)}")
    else:
        parts.append("penalized arm after the pilot")
    return still_training(parts)


# ------------------------------------------------------------------ criteria
REGISTERED = "2026-12-01T05:18:14+00:00"
"""When the design and its criteria were fixed, before any of its runs."""
ALPHA = 0.05
SD_DIFF = 0.0045
"""SD across seeds of a paired difference of the statistic assumed for power: the power
pilot of shared/pilots (the same CNN at 16×16, n = 2,040, ε = 0.1, B = 32 against 640,
8 paired seeds) measured 0.39 points for the final iterate and 0.43 for a window mean."""
DECISIVE = 0.015
"""A negative verdict needs the test to detect this difference (1.5 points) at 80% power."""
CLOSURE_FULL = 0.5

_FIT = ("every compared run fits: training accuracy at or above the fit threshold at each "
        "evaluation of the window, and no divergence")
_SD = ("where the verdict rests on the power (an interval that contains 0): the measured SD "
       "of the paired differences is at most 2× the SD assumed for power")
_LADDER = ("reproduced when the interval lies above 0; not reproduced when it lies below 0, "
           "or when it contains 0 and the difference detectable at 80% power (from the SD "
           "assumed) is at most 1.5 points; otherwise inconclusive at this scale")

CRITERIA = (
    Criterion(
        claim="gap",
        statement="Small-batch SGD ends at a higher test accuracy than a batch 20× larger "
                  "at the same ε and number of updates, both interpolating.",
        statistic="at the headline cell (largest n, ε*): the mean over confirmation seeds "
                  "of the paired difference SGD − large batch of the statistic (mean test "
                  "accuracy over the last `window` evaluations), with a 95% paired t "
                  "interval",
        threshold=_LADDER,
        premises=("the ε pilot found an ε* at which every pilot run fits", _FIT, _SD,
                  "at least two paired seeds"),
        alpha=ALPHA, sd_assumed=SD_DIFF, registered=REGISTERED),
    Criterion(
        claim="n",
        statement="The SGD advantage over the large batch (full-batch GD at the smallest "
                  "n) at each training-set size of the grid.",
        statistic="at ε*, per n: the paired difference SGD − large batch, its 95% paired "
                  "t interval and two-sided p-value",
        threshold="per n, the ladder of the gap criterion with Holm-adjusted p-values: "
                  "reproduced when the difference is positive with adjusted p ≤ 0.05; "
                  "the claim's verdict lists each n",
        premises=(_FIT + " (both arms, per n)",
                  "an n whose premises fail is left out of the family and reported"),
        alpha=ALPHA, sd_assumed=SD_DIFF,
        aggregate="Holm's adjustment over the assessable n", registered=REGISTERED),
    Criterion(
        claim="penalty",
        statement="The explicit penalty lets the large batch close most of the gap to "
                  "SGD.",
        statistic="at the headline cell: (penalty − large)/(SGD − large) of the mean "
                  "statistics, with a 95% percentile bootstrap interval over seeds",
        threshold=f"reproduced when the interval lies above {CLOSURE_FULL:g}; partly "
                  "reproduced when above 0 only; not reproduced otherwise",
        premises=("the gap criterion is reproduced", _FIT + " (all three arms)",
                  "the λ pilot found a λ* at which every pilot run fits"),
        alpha=ALPHA, registered=REGISTERED),
    Criterion(
        claim="penalty-gain",
        statement="The penalized large batch ends at a higher test accuracy than the plain "
                  "large batch.",
        statistic="at the headline cell: the mean paired difference penalty − large batch "
                  "of the statistic, with a 95% paired t interval",
        threshold=_LADDER,
        premises=(_FIT + " (both arms)", _SD,
                  "the λ pilot found a λ* at which every pilot run fits"),
        alpha=ALPHA, sd_assumed=SD_DIFF, registered=REGISTERED),
)
_R1 = "2026-12-01T10:54:00+00:00"
"""When revision penalty-r1 was fixed: after λ* diverged at the headline cell, before any
run of a smaller λ there."""
_R1_LAM = ("λ_r1: the λ pilot's rule (the highest mean pilot statistic among the λ whose "
           "every pilot run fits) over the grid's λ below the smallest λ at which a "
           "confirmation run at the headline cell diverged, stepping down again while one "
           "diverges; its runs are the large batch with the penalty on the confirmation "
           "seeds, paired with the gap's runs")
_R1_REASON = (
    "Under the registered rule λ* = 0.02, chosen by full-batch GD on the 640 images of the λ "
    "pilot, diverged at the headline cell (B = 640 on 1,920 images, ε = 0.2) in 2 of the "
    "first 3 confirmation seeds: seeds 0 and 2, loss non-finite at update 720 of 2,400 "
    "with about 96% training accuracy; seed 1 fit. Both penalty verdicts as registered are "
    "therefore not assessable. A λ stable for GD at n = 640 need not be stable for B = 640 "
    "at n = 1,920; the revision keeps the λ pilot's runs and rule and applies it to the "
    "grid's λ below the one that diverged (Novack et al.'s 0.01 comes first). Registered "
    "before any run of a λ below 0.02 at the headline cell; the registered criteria and "
    "their verdicts stay shown.")
REVISIONS = (
    Revision(
        original="penalty-gain",
        revised=Criterion(
            claim="penalty-gain-r1", statement=CRITERIA[3].statement,
            statistic="at the headline cell, with λ_r1: the mean paired difference "
                      "penalty − large batch of the statistic, with a 95% paired t interval",
            threshold=_LADDER,
            premises=(_FIT + " (both arms)", _SD, _R1_LAM + " (the rule finds a λ)"),
            alpha=ALPHA, sd_assumed=SD_DIFF, registered=_R1),
        reason=_R1_REASON, date=_R1),
    Revision(
        original="penalty",
        revised=Criterion(
            claim="penalty-r1", statement=CRITERIA[2].statement,
            statistic="at the headline cell, with λ_r1: (penalty − large)/(SGD − large) of "
                      "the mean statistics, with a 95% percentile bootstrap interval over "
                      "seeds (each seed's three runs kept together)",
            threshold=CRITERIA[2].threshold,
            premises=("the gap criterion is reproduced", _FIT + " (all three arms)",
                      _R1_LAM + " (the rule finds a λ)"),
            alpha=ALPHA, registered=_R1),
        reason=_R1_REASON, date=_R1),
)

_R0_REASON = (
    "Commit 23cc512 (2026-12-01 05:47:16 UTC), made after the ε pilot's first runs had "
    "started (05:18) and without a revision, changed how this registered statistic is "
    "computed: {what}. The registered computation is kept for the registered criterion; "
    "this revision states the changed one, so that both verdicts are shown.")
REVISIONS = REVISIONS + (
    Revision(
        original="n",
        revised=Criterion(
            claim="n-holm", statement=CRITERIA[1].statement,
            statistic=CRITERIA[1].statistic,
            threshold="per n, on its Holm-adjusted p-value: reproduced when the difference "
                      "is positive with adjusted p ≤ 0.05 (negative: not reproduced, the "
                      "other arm is ahead); otherwise not reproduced when the difference "
                      "detectable at 80% power at the first Holm level, α/(number of n "
                      "tested), is at most 1.5 points and the SD premise holds, and "
                      "inconclusive at this scale when it is larger",
            premises=CRITERIA[1].premises, alpha=ALPHA, sd_assumed=SD_DIFF,
            aggregate=CRITERIA[1].aggregate),
        reason=_R0_REASON.format(what=(
            "an n whose Holm-adjusted p-value exceeds α was said to show 'no detectable "
            "difference'; it became the gap criterion's ladder, with the power computed at "
            "the first Holm level"))),
    Revision(
        original="penalty",
        revised=Criterion(
            claim="penalty-paired", statement=CRITERIA[2].statement,
            statistic="at the headline cell: (penalty − large)/(SGD − large) of the mean "
                      "statistics over the seeds that have all three arms, with a 95% "
                      "percentile bootstrap interval that resamples seeds, each seed's "
                      "three runs kept together",
            threshold=CRITERIA[2].threshold, premises=CRITERIA[2].premises, alpha=ALPHA),
        reason=_R0_REASON.format(what=(
            "the bootstrap interval of the fraction closed resampled each arm's runs on "
            "their own (stats.gap_closure); it became a paired bootstrap over seeds"))),
)

CHANCE = 0.1
"""The test accuracy a diverged run is counted at in revision penalty-r2 and the
full-batch claims: its outputs are non-finite, its predictions no better than chance
(the method failed in that seed; the run is counted, never dropped)."""
DECISIVE_R2 = {"headline": 0.008, "full-batch": 0.010}
"""A negative verdict of r2 needs the difference detectable at 80% power to be no larger
than the gap the penalty should close at that cell: SGD − large batch was +0.82 points
at the headline cell (n = 1,920) and +0.96 at the full-batch cell (n = 640)."""
_R2_COUNTED = ("a diverged penalized run is counted at chance test accuracy (10%), never "
               "dropped, and named in the verdict")
_R2_DESIGN = (
    "revision penalty-r2's design: λ_r2 per cell by the rule of its pilot (3 seeds on "
    "their own subset, at the confirmation's own n, B and ε; a λ is admissible when every "
    "pilot run fits and none diverged; one grid step below the largest λ below which "
    "every λ is admissible); every arm, SGD and the plain large batch included, trained "
    "with the stabilizers of Params.r2_clip and Params.r2_penalty_grad")
_R2_LADDER = ("reproduced when the 95% paired t interval lies above 0; not reproduced when "
              "it lies below 0, or when it contains 0 and the difference detectable at 80% "
              "power (SD assumed) is at most the gap the penalty should close at the cell "
              "(0.8 points at the headline cell, 1.0 at the full-batch cell) and the SD "
              "premise holds; otherwise inconclusive at this scale")
_R2_PREMISES = ("every SGD and plain large-batch run of the cell fits and none diverged",
                "every penalized run that did not diverge fits",
                "the pilot found an admissible λ at the cell", "at least two paired seeds",
                "where the verdict rests on the power: the SD of the paired differences over "
                "the seeds whose penalized run did not diverge is at most 2× the SD assumed "
                "(a diverged seed's difference measures the failure, not the seed-to-seed "
                "spread the power assumes)")
_R2_REASON = (
    "Under the registered design and revision penalty-r1 the penalized large batch "
    "diverged at the headline cell (λ = 0.02 in 4 of 8 seeds, 0.01 in 2, 0.005 in 1), so "
    "every penalty verdict was not assessable, and a survivor-only comparison would be "
    "biased. A diagnosis (this chapter's section on it) retrained diverging seeds with "
    "their curvature traced against 2/ε and replayed the steps before each blow-up. This "
    "revision, registered before any of its runs, chooses λ at the confirmation's own "
    "cells with a margin, applies its stabilizers to every arm and counts every diverged "
    "run.")
REVISIONS = REVISIONS + (
    Revision(
        original="penalty-gain",
        revised=Criterion(
            claim="penalty-gain-r2", statement=CRITERIA[3].statement,
            statistic="at the headline cell, under revision penalty-r2's design: the mean "
                      "paired difference penalty − plain large batch of the statistic, "
                      "with a 95% paired t interval; " + _R2_COUNTED,
            threshold=_R2_LADDER, premises=_R2_PREMISES + (_R2_DESIGN,),
            alpha=ALPHA, sd_assumed=SD_DIFF),
        reason=_R2_REASON),
    Revision(
        original="penalty",
        revised=Criterion(
            claim="penalty-r2", statement=CRITERIA[2].statement,
            statistic="at the headline cell, under revision penalty-r2's design: "
                      "(penalty − large)/(SGD − large) of the mean statistics, with a 95% "
                      "percentile bootstrap interval that resamples seeds with their three "
                      "runs; " + _R2_COUNTED,
            threshold=CRITERIA[2].threshold,
            premises=("SGD − plain large batch at the cell (the r2 runs) has a 95% interval "
                      "above 0: a gap to close",) + _R2_PREMISES + (_R2_DESIGN,),
            alpha=ALPHA),
        reason=_R2_REASON),
)
CRITERIA_FULL_BATCH = (
    Criterion(
        claim="fb-penalty-gain",
        statement="With the explicit penalty, full-batch GD ends at a higher test accuracy "
                  "than plain GD (Geiping et al. 2022).",
        statistic="at the full-batch cell (the smallest n, where the large batch is all of "
                  "it), under revision penalty-r2's design: the mean paired difference GD + "
                  "penalty − GD of the statistic, with a 95% paired t interval; "
                  + _R2_COUNTED,
        threshold=_R2_LADDER, premises=_R2_PREMISES + (_R2_DESIGN,),
        alpha=ALPHA, sd_assumed=SD_DIFF),
    Criterion(
        claim="fb-penalty",
        statement="With the explicit penalty, full-batch GD closes most of its gap to SGD "
                  "(Geiping et al. 2022).",
        statistic="at the full-batch cell, under revision penalty-r2's design: (GD + "
                  "penalty − GD)/(SGD − GD) of the mean statistics, with a 95% percentile "
                  "bootstrap interval that resamples seeds with their three runs; "
                  + _R2_COUNTED,
        threshold=CRITERIA[2].threshold,
        premises=("SGD − GD at the cell (the r2 runs) has a 95% interval above 0: a gap to "
                  "close",) + _R2_PREMISES + (_R2_DESIGN,),
        alpha=ALPHA),
)
CRITERIA = CRITERIA + CRITERIA_FULL_BATCH

registered_hash, revisions_hash, criteria_table = register(CRITERIA, REVISIONS, CHAPTER)

_JUDGES = {"gap": ("eps-pilot", "gap"), "n": ("eps-pilot", "gap"), "n-holm": ("eps-pilot", "gap"),
           "penalty-paired": ("eps-pilot", "gap", "lambda-pilot", "penalty"),
           "penalty-r2": ("r2-pilot", "r2-gap", "r2-penalty"),
           "penalty-gain-r2": ("r2-pilot", "r2-gap", "r2-penalty"),
           "fb-penalty": ("r2-pilot", "r2-gap", "r2-penalty"),
           "fb-penalty-gain": ("r2-pilot", "r2-gap", "r2-penalty"),
           "penalty": ("eps-pilot", "gap", "lambda-pilot", "penalty"),
           "penalty-gain": ("eps-pilot", "gap", "lambda-pilot", "penalty"),
           "penalty-r1": ("eps-pilot", "gap", "lambda-pilot", "penalty", "penalty-r1"),
           "penalty-gain-r1": ("eps-pilot", "gap", "lambda-pilot", "penalty", "penalty-r1")}


def judged(runs: "Runs") -> dict[str, list[Any]]:
    """Claim → the runs its verdict reads (the stages of the design it depends on), for
    :func:`~implicitreg.chapters.registry.made_table`."""
    out: dict[str, list[Any]] = {"*": [r for _, r in runs.all()]}
    for claim, stages in _JUDGES.items():
        out[claim] = [r for c, r in runs.all() if c.stage in stages]
    return out

# The glue keys of each criterion's statistic and verdict, for the claims ledger: a row
# there quotes only the numbers its verdict was computed from.
STATISTIC_GLUE = {"gap": ("hl_gap", "hl_detectable"),
                  "penalty": ("hl_closure", "hl_lam_star"),
                  "penalty-paired": ("hl_closure_paired", "hl_lam_star"),
                  "penalty-gain": ("hl_lam_star",),
                  "penalty-gain-r1": ("hl_lam_r1",),
                  "penalty-gain-r2": ("hl_r2_gain", "hl_r2_detectable", "hl_r2_lam"),
                  "penalty-r2": ("hl_r2_closure", "hl_r2_gap", "hl_r2_lam"),
                  "fb-penalty-gain": ("hl_fb_gain", "hl_fb_detectable", "hl_fb_lam"),
                  "fb-penalty": ("hl_fb_closure", "hl_fb_gap", "hl_fb_lam"),
                  "penalty-r1": ("hl_closure_r1", "hl_lam_r1")}
VERDICT_GLUE = {c.claim: f"hl_verdict_{c.claim.replace('-', '_')}"
                for c in CRITERIA + tuple(r.revised for r in REVISIONS)}


# ------------------------------------------------------------------ analysis
def detectable(sd: float, pairs: int, power: float = 0.8, alpha: float = ALPHA) -> float:
    """The smallest true mean difference a two-sided paired t test at ``alpha`` detects
    with probability ``power`` when the differences have SD ``sd``."""
    from scipy import stats as st

    if pairs < 2:
        return float("nan")
    return float((st.t.ppf(1 - alpha / 2, pairs - 1) + st.t.ppf(power, pairs - 1))
                 * sd / np.sqrt(pairs))


def paired(rt: pd.DataFrame, a: str, b: str, n: int, lr: float) -> pd.DataFrame:
    """Per seed: arm ``a``'s and ``b``'s statistics at (n, ε) and their difference."""
    d = rt[(rt.n == n) & (rt.lr == lr)]
    wide = (d[d.arm.isin([a, b])].pivot_table(index="seed", columns="arm", values="stat",
                                             aggfunc="first").dropna())
    if a not in wide or b not in wide:
        return pd.DataFrame(columns=[a, b, "diff"])
    wide["diff"] = wide[a] - wide[b]
    return wide


def compare(rt: pd.DataFrame, p: Params, a: str, b: str, n: int, lr: float) -> dict[str, Any]:
    """Paired difference a − b at (n, ε): estimate, interval, p, detectable, premises."""
    from scipy import stats as st

    d = rt[(rt.n == n) & (rt.lr == lr)]
    premises = [_fit_premise(d[d.arm == arm], p, arm_label(p, arm, n)) for arm in (a, b)]
    w = paired(rt[~rt.diverged], a, b, n, lr)
    diffs = w["diff"].to_numpy(dtype=float)
    est = stats.mean_ci(diffs)
    if len(diffs) < 2:
        pval = float("nan")
    elif np.ptp(diffs) == 0:  # every seed moved by the same amount
        pval = 0.0 if diffs[0] != 0 else 1.0
    else:
        pval = float(st.ttest_1samp(diffs, 0.0).pvalue)
    if len(diffs) < 2:
        premises.append(Premise("at least two paired seeds", False, f"{len(diffs)} pair(s)"))
    return {"n": n, "lr": lr, "estimate": est, "pairs": len(diffs), "p": pval,
            "detectable": detectable(SD_DIFF, len(diffs)),
            "premise": premise_failure(premises),
            "sd_premise": premise_failure([sd_premise("the paired differences", diffs,
                                                      SD_DIFF, digits=2)]), "per_seed": w}


def _fit_premise(d: pd.DataFrame, p: Params, label: str) -> Premise:
    statement = (f"every {label} run fits ({100 * p.fit_threshold:g}% training accuracy at "
                 f"each of the last {p.window} evaluations) and none diverged")
    if not len(d):
        return Premise(statement, False, f"no {label} run")
    level = d[~d.diverged].fit_level  # a diverged run's accuracy is chance, not a level
    return Premise(statement, bool(d.fits.all()),
                   f"{label}: {int(d.fits.sum())} of {len(d)} runs fit"
                   + (f", lowest {100 * level.min():.1f}%" if level.notna().any() else "")
                   + (f", {int(d.diverged.sum())} diverged" if d.diverged.any() else ""))


def ladder(c: dict[str, Any], decisive: float = DECISIVE,
           ahead: str = "the other arm is ahead", above: str = "1.5") -> str:
    """The verdict of a paired comparison under the registered ladder; a negative
    verdict from power needs the difference detectable at 80% power to be at most
    ``decisive`` (``above`` names it in the inconclusive verdict)."""
    if c["premise"]:
        return c["premise"]
    e = c["estimate"]
    if e.low > 0:
        return REPRODUCED
    if e.high < 0:
        return f"{NOT_REPRODUCED} ({ahead})"
    if c["detectable"] <= decisive:
        if c["sd_premise"]:  # the power rests on the SD assumed: the runs must bear it out
            return c["sd_premise"]
        return f"{NOT_REPRODUCED} (a difference of {100 * c['detectable']:.2f} points would " \
               "have been detected)"
    return (f"inconclusive at this scale (detectable {100 * c['detectable']:.2f} points, "
            f"above {above})")


def holm_ladder(c: dict[str, Any], family: int) -> str:
    """The ladder of the gap criterion for one n of a sweep of ``family`` tests, on its
    Holm-adjusted p-value; a negative verdict from power needs the difference detectable
    at the first Holm step's level, α/family."""
    if c["premise"]:
        return c["premise"]
    e, q = c["estimate"], c["p_holm"]
    if q <= ALPHA:
        return REPRODUCED if e.value > 0 else f"{NOT_REPRODUCED} (the other arm is ahead)"
    det = detectable(SD_DIFF, c["pairs"], alpha=ALPHA / max(family, 1))
    if det <= DECISIVE:
        if c["sd_premise"]:
            return c["sd_premise"]
        return (f"{NOT_REPRODUCED} (a difference of {100 * det:.2f} points would have been "
                "detected at the Holm level)")
    return f"inconclusive at this scale (detectable {100 * det:.2f} points, above 1.5)"


def paired_closure(w: pd.DataFrame, level: float = 0.95, n_boot: int = 10000,
                   seed: int = 0):
    """(penalty − large)/(SGD − large) of the means over the seeds that have all three
    arms (``w``: one row per seed, a column per arm), with a percentile bootstrap interval
    that resamples seeds, keeping each seed's three runs together."""
    w = w[[SGD, LARGE, PENALTY]].dropna()
    v = w.to_numpy(float)

    def frac(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (a[..., 2] - a[..., 1]).mean(-1) / (a[..., 0] - a[..., 1]).mean(-1)

    point = float(frac(v))
    if len(v) < 2:
        return stats.Estimate(point, float("nan"), float("nan"), len(v))
    idx = np.random.default_rng(seed).integers(0, len(v), (n_boot, len(v)))
    boots = frac(v[idx])
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return stats.Estimate(point, float(lo), float(hi), len(v))


@dataclass
class Analysis:
    runs: pd.DataFrame
    """One row per run (see :func:`run_table`)."""
    comparisons: pd.DataFrame
    """One row per paired comparison: what, n, ε, difference, interval, p (Holm over n for
    the gap), detectable, verdict."""
    estimates: dict[str, Any]
    """Headline cell: the statistic per arm (Estimate)."""
    closure: Any
    verdicts: dict[str, str]
    closure_r1: Any = None
    """The closure under revision penalty-r1 (λ_r1)."""
    closure_paired: Any = None
    """The closure with λ* under revision penalty-paired (the paired bootstrap)."""
    r2: dict[str, Any] = field(default_factory=dict)
    """Revision penalty-r2 and the full-batch claims: per cell its λ, comparisons,
    closures and diverged seeds (see :func:`_r2_verdicts`)."""
    glue: dict[str, Any] = field(default_factory=dict)


def _pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}"


def analyze(runs: Runs, p: Params) -> Analysis:
    """The verdicts of the registered criteria, premises first, and the values the prose
    glues."""
    rt = run_table(runs.all(), p)
    conf = rt[rt.stage.isin(["gap", "penalty"])]
    eps = runs.eps_star
    v: dict[str, str] = {}
    rows = []
    no_eps = not_assessable("the ε pilot found no ε at which every pilot run fits ("
                            + "; ".join(f"ε = {lr:g}: {w}" for lr, w in
                                        sorted(runs.eps_reasons.items())) + ")")

    # The gap per n, Holm over the assessable n.
    per_n = {n: compare(conf, p, SGD, LARGE, n, eps) for n in p.n_grid} if eps else {}
    family = {n: c["p"] for n, c in per_n.items() if not c["premise"]}
    adj = stats.holm(family, ALPHA) if family else {}
    for n, c in sorted(per_n.items()):
        c["p_holm"] = adj.get(n, float("nan"))
        c["verdict"] = ladder(c)
        c["verdict_holm"] = holm_ladder(c, len(family))
        rows.append(_row(f"SGD − {arm_label(p, LARGE, n)}", c))
    head = per_n.get(p.n_max)
    v["gap"] = no_eps if eps is None else head["verdict"]
    if eps is None:
        v["n"] = no_eps
    elif not family:
        v["n"] = not_assessable("; ".join(
            f"n = {n:,}: {c['premise'].removeprefix(not_assessable(''))}"
            for n, c in sorted(per_n.items())))
    else:
        # As registered (before 23cc512): an n not significant after Holm shows "no
        # detectable difference"; revision n-holm: the ladder at the first Holm level.
        for claim, word in (("n", _holm_word_registered), ("n-holm", lambda c: c["verdict_holm"])):
            parts = []
            for n, c in sorted(per_n.items()):
                if c["premise"]:
                    parts.append(f"n = {n:,} left out ({c['premise']})")  # with its numbers
                else:
                    parts.append(f"n = {n:,}: {word(c)} "
                                 f"(Holm-adjusted p = {c['p_holm']:.3f})")
            v[claim] = "; ".join(parts)
    v.setdefault("n-holm", v["n"])

    # The penalty at the headline cell: with λ* as registered, then with λ_r1.
    no_lam = not_assessable(
        "the λ pilot found no λ at which every pilot run fits (" + "; ".join(
            f"λ = {lam:g}: {w}" for lam, w in sorted(runs.lam_reasons.items())) + ")"
        if runs.lambda_pilot else "the λ pilot has not been run")
    gap_runs = rt[rt.stage == "gap"]
    closure, closure_r1 = None, None
    closure_paired = None
    if eps is None:
        v["penalty"] = v["penalty-gain"] = v["penalty-r1"] = v["penalty-gain-r1"] = no_eps
        v["penalty-paired"] = no_eps
    elif runs.lam_star is None:
        v["penalty"] = v["penalty-gain"] = v["penalty-r1"] = v["penalty-gain-r1"] = no_lam
        v["penalty-paired"] = no_lam
    else:
        pen = rt[(rt.stage == "penalty") & (rt.lam == runs.lam_star)]
        v["penalty-gain"], v["penalty"], closure = _penalty(
            pd.concat([gap_runs, pen]), p, eps, v["gap"], rows, runs.lam_star, paired=False)
        _, v["penalty-paired"], closure_paired = _penalty(
            pd.concat([gap_runs, pen]), p, eps, v["gap"], [], runs.lam_star)
        # Each λ the revision stepped past: its comparison over the seeds that did not
        # diverge, shown for what it is (its premise failed; no verdict of its own).
        stepped = rt[(rt.stage == "penalty-r1") & (rt.lam != runs.lam_r1)]
        for lam in sorted(set(stepped.lam), reverse=True):
            _penalty(pd.concat([gap_runs, stepped[stepped.lam == lam]]), p, eps, v["gap"],
                     rows, lam)
        if not runs.lam_r1_reasons:
            v["penalty-r1"] = v["penalty-gain-r1"] = not_assessable(
                "the rule of revision penalty-r1 has not been applied to these runs")
        elif runs.lam_r1 is None:
            v["penalty-r1"] = v["penalty-gain-r1"] = not_assessable(
                "every λ of the grid diverged at the headline cell or failed the pilot ("
                + "; ".join(f"λ = {lam:g}: {w}" for lam, w in
                            sorted(runs.lam_r1_reasons.items())) + ")")
        elif runs.lam_r1 == runs.lam_star:  # nothing diverged: the registered runs
            # (revision penalty-r1 was written after 23cc512: its closure is paired)
            v["penalty-r1"], v["penalty-gain-r1"], closure_r1 = (
                v["penalty-paired"], v["penalty-gain"], closure_paired)
        else:
            pen = rt[(rt.stage == "penalty-r1") & (rt.lam == runs.lam_r1)]
            v["penalty-gain-r1"], v["penalty-r1"], closure_r1 = _penalty(
                pd.concat([gap_runs, pen]), p, eps, v["gap"], rows, runs.lam_r1)

    est = {}
    if eps is not None:
        d = _headline_runs(rt, p)
        for name, x in d[d.lr == eps].groupby("name", sort=False):
            est[name] = stats.mean_ci_runs(x.stat.to_numpy(), x.diverged.to_numpy())
    r2 = _r2_verdicts(rt, p, eps, runs, rows)
    v.update(r2["verdicts"])
    comparisons = pd.DataFrame(rows)
    a = Analysis(rt, comparisons, est, closure, v, closure_r1, closure_paired, r2=r2)
    a.glue = _glue(a, runs, p, head)
    return a


_R2_CLAIMS = {"headline": ("penalty-gain-r2", "penalty-r2"),
              "full-batch": ("fb-penalty-gain", "fb-penalty")}


def _r2_cell_name(p: Params, n: int) -> str:
    """"full-batch" where the large batch is all of n (GD), else "headline"."""
    return "full-batch" if p.large_batch >= n else "headline"


def _r2_verdicts(rt: pd.DataFrame, p: Params, eps: float | None, runs: Runs,
                 rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Revision penalty-r2 at the headline cell and the full-batch claims at the smallest
    n: premises first; a diverged penalized run counted at chance; the gain's ladder with
    the cell's own decisive size; the fraction of the gap closed."""
    out: dict[str, Any] = {"verdicts": {}, "cells": {}}
    claims = [c for pair in _R2_CLAIMS.values() for c in pair]
    if not p.r2_lambda_grid:
        for c in claims:
            out["verdicts"][c] = not_assessable("revision penalty-r2 is not part of this "
                                                "profile's design (no r2_lambda_grid)")
        return out
    if eps is None:
        for c in claims:
            out["verdicts"][c] = not_assessable("the ε pilot found no ε* (see gap)")
        return out
    if runs.r2_pending:
        out["pending"] = runs.r2_pending
        for c in claims:
            out["verdicts"][c] = not_assessable(runs.r2_pending)
        return out
    for name, pair in _R2_CLAIMS.items():
        if name not in {_r2_cell_name(p, n) for n in r2_ns(p)}:
            for c in pair:
                out["verdicts"][c] = not_assessable(
                    f"this profile's n grid {list(p.n_grid)} has no {name} cell (large "
                    f"batch {p.large_batch})")
    for n in r2_ns(p):
        name = _r2_cell_name(p, n)
        gain_claim, closure_claim = _R2_CLAIMS[name]
        lam = runs.lam_r2.get(n)
        cell = {"n": n, "lam": lam, "reasons": runs.lam_r2_reasons.get(n, {})}
        out["cells"][name] = cell
        plain = rt[(rt.stage == "r2-gap") & (rt.n == n)]
        pen = rt[(rt.stage == "r2-penalty") & (rt.n == n)]
        if lam is None:
            why = not_assessable(
                "the r2 pilot found no admissible λ at the cell (" + "; ".join(
                    f"λ = {x:g}: {w}" for x, w in sorted(cell["reasons"].items())) + ")"
                if cell["reasons"] else "the r2 pilot has not been run")
            out["verdicts"][gain_claim] = out["verdicts"][closure_claim] = why
            continue
        # a diverged penalized run is the method failing in that seed: counted at chance
        pen = pen.assign(stat=np.where(pen.diverged, CHANCE, pen.stat))
        div_seeds = sorted(int(s) for s in pen[pen.diverged].seed)
        cell["diverged"] = div_seeds
        premises = [_fit_premise(plain[plain.arm == a], p, arm_label(p, a, n))
                    for a in (SGD, LARGE)]
        survivors = pen[~pen.diverged]
        premises.append(Premise(
            "every penalized run that did not diverge fits",
            bool(survivors.fits.all()) if len(survivors) else True,
            f"{int(survivors.fits.sum())} of {len(survivors)} fit"))
        both = pd.concat([plain, pen.assign(diverged=False)])
        w = both.pivot_table(index="seed", columns="arm", values="stat", aggfunc="first")
        pairs = w[[PENALTY, LARGE]].dropna() if {PENALTY, LARGE} <= set(w) else pd.DataFrame()
        diffs = (pairs[PENALTY] - pairs[LARGE]).to_numpy(float) if len(pairs) else np.array([])
        if len(diffs) < 2:
            premises.append(Premise("at least two paired seeds", False,
                                    f"{len(diffs)} pair(s)"))
        est = stats.mean_ci(diffs)
        from scipy import stats as st

        pval = (float(st.ttest_1samp(diffs, 0.0).pvalue) if len(diffs) > 1 and np.ptp(diffs) > 0
                else float("nan"))
        det = detectable(SD_DIFF, len(diffs))
        kept = (pairs.index.isin(survivors.seed) if len(pairs) else np.array([], bool))
        c = {"n": n, "lr": eps, "estimate": est, "pairs": len(diffs), "p": pval,
             "detectable": det, "premise": premise_failure(premises),
             "sd_premise": premise_failure([sd_premise(
                 "the paired differences of the seeds that did not diverge", diffs[kept],
                 SD_DIFF, digits=2)]),
             "p_holm": float("nan")}
        counted = (f"; {len(div_seeds)} of {len(pen)} penalized runs diverged (seeds "
                   f"{', '.join(map(str, div_seeds))}), counted at chance" if div_seeds else
                   f"; none of the {len(pen)} penalized runs diverged")
        c["verdict"] = _r2_ladder(c, DECISIVE_R2[name]) + (counted if not c["premise"] else "")
        cell["gain"] = c
        rows.append(_row(f"r2: {arm_label(p, PENALTY, n)} (λ = {lam:g}) − "
                         f"{arm_label(p, LARGE, n)}", c))
        out["verdicts"][gain_claim] = c["verdict"]
        gap = stats.mean_ci((w[SGD] - w[LARGE]).dropna().to_numpy(float)) \
            if {SGD, LARGE} <= set(w) else None
        cell["gap"] = gap
        if c["premise"]:
            out["verdicts"][closure_claim] = c["premise"]
        elif gap is None or not gap.n or not gap.low > 0:
            out["verdicts"][closure_claim] = not_assessable(
                "no established gap to close at the cell (SGD − "
                f"{arm_label(p, LARGE, n)}: "
                + (gap.fmt(100, 2, ' points') if gap is not None and gap.n else "not measured")
                + ")")
        else:
            closure = paired_closure(w)
            cell["closure"] = closure
            out["verdicts"][closure_claim] = stats.closure_verdict(closure, CLOSURE_FULL) + counted
    return out


def _r2_ladder(c: dict[str, Any], decisive: float,
               bound: str = "the {:.1f}-point gap to close") -> str:
    """The ladder of revision penalty-r2: a negative verdict needs the detectable
    difference to be no larger than the gap the penalty should close at the cell
    (``bound`` names ``decisive``, in points, where another design sets it)."""
    return ladder(c, decisive, "the plain arm is ahead", bound.format(100 * decisive))


def _holm_word_registered(c: dict[str, Any]) -> str:
    """Criterion n as registered: significant after Holm, or "no detectable difference"."""
    if c["p_holm"] <= ALPHA:
        return REPRODUCED if c["estimate"].value > 0 else \
            f"{NOT_REPRODUCED} (the other arm is ahead)"
    return "no detectable difference"


def _penalty(conf: pd.DataFrame, p: Params, eps: float, gap_verdict: str,
             rows: list[dict[str, Any]], lam: float, paired: bool = True
             ) -> tuple[str, str, Any]:
    """The penalty-gain and penalty (closure) verdicts at the headline cell from the gap
    runs and the penalized runs at one λ; appends the comparison's row. ``paired``: the
    closure's bootstrap resamples seeds with their three runs (revision penalty-paired
    and later); else each arm's runs on their own, as registered."""
    g = compare(conf, p, PENALTY, LARGE, p.n_max, eps)
    g["p_holm"] = float("nan")
    g["verdict"] = ladder(g)
    rows.append(_row(f"penalty (λ = {lam:g}) − {arm_label(p, LARGE, p.n_max)}", g))
    d = conf[(conf.n == p.n_max) & (conf.lr == eps)]
    fail = premise_failure([_fit_premise(d[d.arm == a], p, arm_label(p, a, p.n_max))
                            for a in (SGD, LARGE, PENALTY)])
    if gap_verdict != REPRODUCED:
        return g["verdict"], not_assessable("there is no established gap to close (gap: "
                                            f"{gap_verdict})"), None
    if fail:
        return g["verdict"], fail, None
    if paired:
        closure = paired_closure(d[~d.diverged].pivot_table(
            index="seed", columns="arm", values="stat", aggfunc="first"))
    else:
        vals = {a: d[(d.arm == a) & ~d.diverged].stat.to_numpy() for a in (SGD, LARGE, PENALTY)}
        closure = stats.gap_closure(vals[SGD], vals[LARGE], vals[PENALTY])
    return g["verdict"], stats.closure_verdict(closure, CLOSURE_FULL), closure


def _row(what: str, c: dict[str, Any]) -> dict[str, Any]:
    e = c["estimate"]
    return {"comparison": what, "n": c["n"], "ε": c["lr"], "pairs": c["pairs"],
            "difference (points)": round(100 * e.value, 2) if e.n else float("nan"),
            "95% low": round(100 * e.low, 2) if e.n > 1 else float("nan"),
            "95% high": round(100 * e.high, 2) if e.n > 1 else float("nan"),
            "p": c["p"], "p (Holm over n)": c["p_holm"],
            "detectable (points)": round(100 * c["detectable"], 2),
            "verdict (this comparison alone)": c["verdict"],
            "verdict (Holm over n)": c.get("verdict_holm", "")}


def _fixed(claim: str) -> str:
    """When the registry says ``claim`` was fixed, in words."""
    from . import registry

    t = registry.item_times(CHAPTER).get(claim)
    return t.replace("T", " ").replace("+00:00", " UTC") if t else "(not registered)"


def _glue(a: Analysis, runs: Runs, p: Params, head: dict[str, Any] | None) -> dict[str, Any]:
    eps = runs.eps_star
    g: dict[str, Any] = {
        "hl_eps_star": "none" if eps is None else f"{eps:g}",
        "hl_lam_star": "none" if runs.lam_star is None else f"{runs.lam_star:g}",
        "hl_eps_pilot": "; ".join(f"ε = {lr:g}: {w}" for lr, w in
                                  sorted(runs.eps_reasons.items(), reverse=True)) or "not run",
        "hl_lam_pilot": "; ".join(f"λ = {lam:g}: {w}" for lam, w in
                                  sorted(runs.lam_reasons.items())) or "not run",
        "hl_n_max": f"{p.n_max:,}", "hl_seeds": len(p.seeds),
        "hl_large": arm_label(p, LARGE, p.n_max),
        "hl_sd_assumed": f"{100 * SD_DIFF:.2f} points",
        "hl_detectable": (f"{100 * detectable(SD_DIFF, head['pairs']):.2f} points "
                          f"with the {head['pairs']} paired seeds compared"
                          if head and head["pairs"] > 1 else "not computed (fewer than two "
                          "paired seeds)"),
        "hl_ratio": f"{p.large_batch // p.batch_size}×",
        "hl_registered": _fixed("gap"),
        "hl_criteria_hash": registered_hash(),
        "hl_closure": a.closure.fmt(1, 2) if a.closure is not None else "not computed",
        "hl_closure_paired": (a.closure_paired.fmt(1, 2) if a.closure_paired is not None
                              else "not computed"),
        "hl_lam_r1": "none" if runs.lam_r1 is None else f"{runs.lam_r1:g}",
        "hl_lam_r1_steps": "; ".join(f"λ = {lam:g}: {w}" for lam, w in
                                     sorted(runs.lam_r1_reasons.items())) or "not run",
        "hl_closure_r1": (a.closure_r1.fmt(1, 2) if a.closure_r1 is not None
                          else "not computed"),
        "hl_revised": _fixed("penalty-r1"),
        "hl_revisions_hash": revisions_hash(),
        "hl_revised_r2": _fixed("penalty-r2"),
    }
    g.update(_r2_glue(a, p))
    g.update({VERDICT_GLUE[cid]: text for cid, text in a.verdicts.items()})
    g["hl_gap"] = (f"{head['estimate'].fmt(100, 2, ' points')} over {head['pairs']} of "
                   f"{len(p.seeds)} seeds" if head and head["pairs"] else "not measured")
    g["hl_arms"] = "; ".join(f"{k} {e.fmt(100, 2, '%')}" for k, e in a.estimates.items()) \
        or "not run"
    return g


def _r2_glue(a: Analysis, p: Params) -> dict[str, str]:
    """Revision penalty-r2's numbers per cell: λ_r2 and its pilot, the gain with its
    interval and power, the gap to close and the fraction closed, diverged seeds."""
    g: dict[str, str] = {}
    for name, key in (("headline", "hl_r2"), ("full-batch", "hl_fb")):
        cell = a.r2.get("cells", {}).get(name, {})
        lam = cell.get("lam")
        g[f"{key}_lam"] = ("not yet chosen" if "pending" in a.r2 else "none") if lam is None \
            else f"{lam:g}"
        g[f"{key}_pilot"] = "; ".join(f"λ = {x:g}: {w}" for x, w in
                                      sorted(cell.get("reasons", {}).items())) or \
            a.r2.get("pending", "not run")
        c = cell.get("gain")
        g[f"{key}_gain"] = (f"{c['estimate'].fmt(100, 2, ' points')} over {c['pairs']} "
                            "paired seeds" if c and c["pairs"] else "not measured")
        g[f"{key}_detectable"] = (f"{100 * c['detectable']:.2f} points" if c and c["pairs"] > 1
                                  else "not computed")
        gap = cell.get("gap")
        g[f"{key}_gap"] = gap.fmt(100, 2, " points") if gap is not None and gap.n else \
            "not measured"
        cl = cell.get("closure")
        g[f"{key}_closure"] = cl.fmt(1, 2) if cl is not None else "not computed"
        div = cell.get("diverged")
        g[f"{key}_diverged"] = ("none" if div == [] else "not run" if div is None else
                                ", ".join(map(str, div)))
    return g


def r2_table(a: Analysis, p: Params) -> pd.DataFrame:
    """Revision penalty-r2, one row per (cell, seed): each arm's statistic (percent;
    "diverged" where the run diverged, counted at chance in the verdicts) and the share of
    its updates that clipping shortened."""
    d = a.runs[a.runs.stage.isin(["r2-gap", "r2-penalty"])]
    if not len(d):
        return pd.DataFrame()
    d = d.assign(cell=[_r2_cell_name(p, n) for n in d.n])
    cols = {}
    for arm in ARMS:
        x = d[d.arm == arm].set_index(["cell", "seed"])
        if not len(x):
            continue
        label = arm_label(p, arm, p.n_max).replace(f"B = {p.large_batch}", "large batch")
        cols[(label, "test accuracy (%)")] = pd.Series(
            ["diverged" if div else f"{100 * v:.2f}" for v, div in zip(x.stat, x.diverged)],
            index=x.index, dtype=object)
        cols[(label, "updates clipped")] = pd.Series(
            [f"{100 * v:.1f}%" if v == v else "–" for v in x.clipped], index=x.index,
            dtype=object)
    return pd.DataFrame(cols).sort_index()


def per_seed_table(a: Analysis, p: Params) -> pd.DataFrame:
    """The headline cell, one row per seed: each arm's statistic, final test accuracy and
    the lowest training accuracy of its window (percent; "diverged" for a run whose loss
    went non-finite)."""
    d = _headline_runs(a.runs, p)
    if not len(d):
        return pd.DataFrame()
    names = list(dict.fromkeys(d.name))
    cols = {}
    for what in ("stat", "final", "fit_level"):
        for name in names:
            x = d[d.name == name].set_index("seed")
            cols[(what, name)] = pd.Series(
                ["diverged" if div else f"{100 * val:.2f}" for val, div in
                 zip(x[what], x.diverged)], index=x.index, dtype=object)
    return pd.DataFrame(cols).sort_index()


def pilot_table(a: Analysis, p: Params) -> pd.DataFrame:
    """Both pilots, one row per (stage, ε, λ, arm): runs, runs that fit, lowest training
    accuracy of the window, mean statistic (percent)."""
    d = a.runs[a.runs.stage.str.endswith("pilot")]
    if not len(d):
        return pd.DataFrame()
    return (d.groupby(["stage", "lr", "lam", "arm"], sort=False)
             .agg(runs=("seed", "size"), fit=("fits", "sum"),
                  lowest_fit=("fit_level", lambda x: round(100 * x.min(), 1)),
                  mean_statistic=("stat", lambda x: round(100 * x.mean(), 2))))


# ------------------------------------------------------------------ figures
def fig_headline(a: Analysis, runs: Runs, p: Params):
    """Left: each seed's statistic per arm at the headline cell, lines joining a seed's
    arms. Right: each paired difference with its 95% interval, per n; shaded: the
    difference detectable at 80% power."""
    import dataclasses

    import matplotlib.pyplot as plt
    import seaborn as sns

    from ..analysis import plots

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    d = _headline_runs(a.runs, p)
    d = d[~d.diverged]  # a diverged run has no statistic; the tables count it
    if len(d):
        d = d.assign(arm=d.name, stat_pct=100 * d.stat)
        order = list(dict.fromkeys(d.arm))
        for _, s in d.groupby("seed"):
            s = s.set_index("arm").reindex(order)
            axes[0].plot(range(len(order)), s.stat_pct, color="0.8", lw=0.8, zorder=0)
        sns.stripplot(data=d, x="arm", y="stat_pct", order=order, ax=axes[0], color="0.3")
        axes[0].tick_params(axis="x", labelsize="small", labelrotation=15)
        # means with their Student-t intervals over seeds (those of the verdicts' tables)
        plots.ci_errorbars(axes[0], {k: dataclasses.replace(
            a.estimates[k], value=100 * a.estimates[k].value, low=100 * a.estimates[k].low,
            high=100 * a.estimates[k].high) for k in order if k in a.estimates},
            bounds=(0.0, 100.0))
    axes[0].set(xlabel="", ylabel="test accuracy, mean of the last evaluations (%)",
                title=f"Headline cell, n = {p.n_max:,}" +
                      (f", ε = {runs.eps_star:g}" if runs.eps_star else ""))
    c = a.comparisons
    if len(c):
        y = np.arange(len(c))
        axes[1].errorbar(c["difference (points)"], y,
                         xerr=[c["difference (points)"] - c["95% low"],
                               c["95% high"] - c["difference (points)"]],
                         fmt="o", capsize=4, color="C0")
        axes[1].set_yticks(y, [f"{w}\n(n = {n:,})" for w, n in zip(c.comparison, c.n)])
        band = float(c["detectable (points)"].max())
        axes[1].axvspan(-band, band, color="0.9", label="detectable at 80% power")
        axes[1].legend(fontsize="small")
    axes[1].axvline(0, color="k", lw=0.8)
    axes[1].set(xlabel="paired difference (points), 95% interval", title="Comparisons")
    fig.tight_layout()
    return fig


def fig_curves(runs: Runs, p: Params):
    """Test and training accuracy along training at the headline cell (means over the
    seeds that did not diverge, 95% bands)."""
    import matplotlib.pyplot as plt

    from ..analysis import plots, tables

    head = [(arm_name(p, c.arm, c.n, c.lam), r) for c, r in
            runs.gap + runs.penalty + runs.penalty_r1
            if c.n == p.n_max and not r.summary.get("diverged")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    if head:
        order = list(dict.fromkeys(label for label, _ in head))
        for ax, split in zip(axes, ("test", "train")):
            plots.band_plot(tables.tidy(head, "accuracy", split), "step", "value", "arm",
                              ax=ax, order=order)
            ax.set(xlabel="update (step)", ylabel=f"{split} accuracy",
                   title=f"{split.capitalize()} accuracy, n = {p.n_max:,}")
    axes[1].axhline(p.fit_threshold, color="0.5", ls=":")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the diagnosis
DIAGNOSIS = "results/workstation/divergence"
"""Where the committed diagnosis lives: each traced run (``trace_seed<s>_lam<λ>.csv``:
step, metric, value) and each replay from a checkpoint before a blow-up
(``replay_seed<s>_lam<λ>_<variant>.csv``), made by :mod:`implicitreg.analysis.divergence`
(``implicitreg diagnose-penalty``), and the SGD arm's unclipped step lengths
(``stepnorms_sgd_seed<s>.csv``, ``implicitreg diagnose-penalty --sgd-step-norms``)."""


REPLAY_VARIANTS = {"same": {}, "double-backprop": {"penalty_grad": "double-backprop"},
                   "fd1e-2": {"fd_step": 1e-2}, "fd1e-4": {"fd_step": 1e-4},
                   **{f"clip{c:g}": {"clip_grad": c} for c in (5.0, 3.0, 2.0, 1.0)}}
"""How a replay from a checkpoint before a blow-up differs from the traced run: the same
steps, the exact gradient of the penalty, finite-difference steps 10× longer and shorter
than the engine's 1e-3, and the total gradient clipped to a norm."""


def diagnose(p: Params, out, seed: int, lam: float, until: int = 1200,
             dense_from: int = 480, replay_updates: int = 60, variants=tuple(REPLAY_VARIANTS),
             replay_from: int | None = None, log=print) -> None:
    """Make the committed diagnosis of one penalized run at the headline cell (ε* of the
    committed set, 0.2): trace it (:func:`implicitreg.analysis.divergence.trace`), then
    replay ``replay_updates`` updates from the last checkpoint at least 20 updates before
    its first collapse (or from the checkpoint at ``replay_from``, e.g. before a later
    blow-up: its files are named ``<run>-at<update>``) under each variant. Files as
    :data:`DIAGNOSIS` describes; a file already there is kept (the command resumes)."""
    import tempfile
    from pathlib import Path

    from ..analysis import divergence as dv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"seed{seed}_lam{lam:g}"
    cfg = config(p, Cell("penalty", PENALTY, p.n_max, max(p.lr_grid), lam, seed), p.data_seed)
    ck = Path(tempfile.gettempdir()) / "implicitreg-diagnosis" / name
    f = out / f"trace_{name}.csv"
    if not f.is_file():
        plan = dv.TracePlan(every=60, dense_from=dense_from, dense_every=20, until=until)
        dv.trace(cfg, plan, ck, log=lambda s: log(f"{name} {s}")).to_csv(f, index=False)
    c = collapse_step(pd.read_csv(f))
    if not np.isfinite(c):
        log(f"{name}: no collapse before update {until}; nothing to replay")
        return
    last = c - 20 if replay_from is None else replay_from
    starts = sorted(int(x.stem[4:]) for x in ck.glob("step*.pt") if int(x.stem[4:]) <= last)
    if not starts:
        log(f"{name}: no checkpoint at or before update {last:g} (rerun the trace)")
        return
    tag = name if replay_from is None else f"{name}-at{starts[-1]}"
    for v in variants:
        g = out / f"replay_{tag}_{v}.csv"
        if g.is_file():
            continue
        r = dv.replay(cfg.replace(**REPLAY_VARIANTS[v]), ck / f"step{starts[-1]:05d}.pt",
                      replay_updates)
        r.assign(variant=v, from_step=starts[-1]).to_csv(g, index=False)
        log(f"{name} replay {v} from {starts[-1]}: first non-finite {dv.first_nonfinite(r)}")


def sgd_step_norms(p: Params, out, seed: int, log=print) -> None:
    """Make the committed record of the SGD arm's own step lengths at the headline cell
    (ε = 0.2, unclipped, ``stepnorms_sgd_seed<s>.csv``): what revision penalty-r2's
    clipping norm was chosen against, so that clipping every arm at it leaves most of
    SGD's updates as they were. A file already there is kept."""
    from pathlib import Path

    from ..analysis import divergence as dv

    f = Path(out) / f"stepnorms_sgd_seed{seed}.csv"
    if f.is_file():
        log(f"{f} is there already")
        return
    f.parent.mkdir(parents=True, exist_ok=True)
    cfg = config(p, Cell("gap", SGD, p.n_max, max(p.lr_grid), 0.0, seed), p.data_seed)
    dv.step_norms(cfg).to_csv(f, index=False)
    log(f"wrote {f}")


def _diagnosis_files(root=None) -> dict[str, pd.DataFrame]:
    from pathlib import Path

    from ..runs.store import package_checkout, project_root

    roots = [Path(root)] if root else [r for r in (project_root(), package_checkout()) if r]
    folder = next((r / DIAGNOSIS for r in roots if (r / DIAGNOSIS).is_dir()), None)
    return {} if folder is None else {f.stem: pd.read_csv(f)
                                      for f in sorted(folder.glob("*.csv"))}


def load_diagnosis(root=None) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(traces, replays) of the committed diagnosis, keyed by file stem; empty where it
    has not been made (the chapter then says so)."""
    read = _diagnosis_files(root)
    return ({k: v for k, v in read.items() if k.startswith("trace_")},
            {k: v for k, v in read.items() if k.startswith("replay_")})


def load_step_norms(root=None) -> dict[str, pd.DataFrame]:
    """The committed records of :func:`sgd_step_norms`, keyed by file stem."""
    return {k: v for k, v in _diagnosis_files(root).items() if k.startswith("stepnorms_")}


def step_norms_glue(steps: dict[str, pd.DataFrame], clip: float | None) -> dict[str, str]:
    """How often the SGD arm's own unclipped updates were longer than the clipping norm
    (``hl_diag_sgd_steps``), for the prose on revision penalty-r2's choice of norm; a
    profile without the revision is read against the workstation profile's norm."""
    clip = clip or profile("workstation").r2_clip
    if not steps or not clip:
        return {"hl_diag_sgd_steps": "not measured"}
    parts = []
    for name, d in steps.items():
        g = d[d.metric == "step_grad_norm"].value.to_numpy()
        parts.append(f"{name.removeprefix('stepnorms_sgd_').replace('seed', 'seed ')}: "
                     f"longer than {clip:g} in {100 * np.mean(g > clip):.1f}% of its {len(g):,} "
                     f"updates, median {np.median(g):.2f}, largest {g.max():.1f}")
    return {"hl_diag_sgd_steps": "; ".join(parts)}


def _wide(trace: pd.DataFrame) -> pd.DataFrame:
    return trace.pivot_table(index="step", columns="metric", values="value", aggfunc="first")


def collapse_step(trace: pd.DataFrame, factor: float = 3.0) -> float:
    """The first update whose batch loss is non-finite or above ``factor`` × the lowest
    batch loss so far and above 1 (a run that had fitted losing it); NaN if none."""
    d = trace[trace.metric == "batch_loss"]
    if not len(d):
        return float("nan")
    loss = d.set_index("step").value
    best = np.inf
    for step, v in loss.items():
        if not np.isfinite(v) or (v > factor * best and v > 1.0):
            return float(step)
        best = min(best, v)
    return float("nan")


def diagnosis_table(traces: dict[str, pd.DataFrame], eps: float = 0.2) -> pd.DataFrame:
    """Per traced run: the first collapse (or blow-up) and, at the last measurement before
    it, the training loss's sharpness and the penalized objective's top curvature against
    2/ε, and the share of the latter that the micro-batches' spread adds beyond s + 2λs²."""
    rows = []
    for name, t in traces.items():
        w = _wide(t)
        meas = w.dropna(subset=["sharpness"]) if "sharpness" in w else w.iloc[:0]
        c = collapse_step(t)
        before = meas[meas.index < c] if np.isfinite(c) else meas
        last = before.iloc[-1] if len(before) else None
        bl = t[t.metric == "batch_loss"]
        first_nan = float(bl.step[~np.isfinite(bl.value)].min()) if len(bl) else float("nan")
        rows.append({
            "run": name.removeprefix("trace_"),
            "first collapse (update)": c, "first non-finite loss (update)": first_nan,
            "measured at": last.name if last is not None else float("nan"),
            "sharpness s": last["sharpness"] if last is not None else float("nan"),
            "penalized curvature": last["penalized_sharpness"] if last is not None else float("nan"),
            "s + 2λs²": last["aligned"] if last is not None else float("nan"),
            "2/ε": 2 / eps,
            "max penalized curvature / (2/ε)": float(meas["penalized_sharpness"].max() * eps / 2)
            if len(meas) else float("nan"),
            "share of updates with s > 2/ε": float((meas["sharpness"] > 2 / eps).mean())
            if len(meas) else float("nan")})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def replay_table(replays: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per replay from a checkpoint: the variant, where it started, whether and where its
    loss went non-finite, its highest batch loss and where it ended."""
    rows = []
    for name, r in replays.items():
        w = r[r.metric == "batch_loss"]
        end = r[r.metric.isin(["train_loss", "train_accuracy"])].drop_duplicates("metric", keep="last")
        endv = dict(zip(end.metric, end.value))
        bad = w[~np.isfinite(w.value)]
        rows.append({"run": name.removeprefix("replay_").rsplit("_", 1)[0],
                     "variant": r["variant"].iloc[0] if "variant" in r else "",
                     "from update": int(r["from_step"].iloc[0]) if "from_step" in r else -1,
                     "updates": len(w),
                     "first non-finite loss": float(bad.step.min()) if len(bad) else float("nan"),
                     "highest batch loss": float(w.value.max()),
                     "training loss at the end": endv.get("train_loss", float("nan")),
                     "training accuracy at the end": endv.get("train_accuracy", float("nan"))})
    return pd.DataFrame(rows).set_index(["run", "variant"]) if rows else pd.DataFrame()


def diagnosis_glue(traces: dict[str, pd.DataFrame], replays: dict[str, pd.DataFrame],
                   eps: float = 0.2) -> dict[str, str]:
    """The diagnosis in numbers, for the prose: what was traced, where each run collapsed,
    the curvatures against 2/ε before it, the spike of the penalized gradient, and what
    each replay did."""
    if not traces:
        return {k: "not made" for k in ("hl_diag_runs", "hl_diag_sharp", "hl_diag_pen",
                                         "hl_diag_spike", "hl_diag_replays")}
    t = diagnosis_table(traces, eps)
    runs = "; ".join(
        f"{name.replace('_lam', ', λ = ').replace('seed', 'seed ')}: "
        + (f"first collapse at update {row['first collapse (update)']:.0f}"
           if np.isfinite(row["first collapse (update)"]) else "no collapse")
        + (f", loss non-finite at {row['first non-finite loss (update)']:.0f}"
           if np.isfinite(row["first non-finite loss (update)"]) else "")
        for name, row in t.iterrows())
    ratios, spreads, spikes = [], [], []
    for name, tr in traces.items():
        w = _wide(tr)
        c = collapse_step(tr)
        m = w.dropna(subset=["sharpness"])
        m = m[(m.index >= 60) & ((m.index < c) if np.isfinite(c) else True)]
        ratios += list(m["sharpness"] * eps / 2)
        spreads += list((m["penalized_sharpness"] - m["aligned"]) / m["penalized_sharpness"])
        s = w["step_grad_norm"].dropna() if "step_grad_norm" in w else pd.Series(dtype=float)
        if np.isfinite(c) and len(s):
            spikes.append((name, float(s[(s.index >= c - 20) & (s.index <= c + 5)].max()),
                           float(s[s.index < c - 20].median())))
    r = np.asarray(ratios)
    g = {"hl_diag_runs": runs,
         "hl_diag_sharp": (f"the training loss's sharpness sat at {np.median(r):.2f} × 2/ε "
                           f"(median over the measured updates from 60 to the collapse; "
                           f"middle 80% {np.quantile(r, 0.1):.2f}–{np.quantile(r, 0.9):.2f})"),
         "hl_diag_pen": (f"the penalized objective's top curvature was "
                         f"{t['max penalized curvature / (2/ε)'].max():.2f} × 2/ε at its "
                         f"highest, and a median {100 * np.median(spreads):.0f}% of it came "
                         "from the spread of the micro-batches' curvature, beyond s + 2λs²"),
         "hl_diag_spike": "; ".join(
             f"{name.removeprefix('trace_')}: the penalized gradient's norm reached "
             f"{hi:.1f} around the collapse against a median {med:.2f} before it"
             for name, hi, med in spikes) or "no collapse traced"}
    rt = replay_table(replays)
    g["hl_diag_replays"] = "; ".join(
        f"{run.replace('_lam', ', λ = ').replace('seed', 'seed ').split('-at')[0]}, "
        f"{variant} from update {int(row['from update'])}: "
        + (f"loss non-finite at update {row['first non-finite loss']:.0f}"
           if np.isfinite(row["first non-finite loss"]) else
           f"highest batch loss {row['highest batch loss']:.2f}, ending at "
           f"{100 * row['training accuracy at the end']:.1f}% training accuracy")
        for (run, variant), row in rt.iterrows()) or "no replay"
    return g


def fig_diagnosis(traces: dict[str, pd.DataFrame], eps: float = 0.2):
    """Per traced run (columns): batch loss along training (top) and, at the measured
    updates, the training loss's sharpness and the penalized objective's top curvature
    against 2/ε (bottom); dotted: the first collapse. None without a diagnosis."""
    import matplotlib.pyplot as plt

    names = list(traces)
    if not names:
        return None  # the diagnosis is not in this checkout; the tables say so
    fig, axes = plt.subplots(2, max(1, len(names)), figsize=(4 * max(1, len(names)), 6),
                             sharex="col", squeeze=False)
    for j, name in enumerate(names):
        w = _wide(traces[name])
        c = collapse_step(traces[name])
        ax = axes[0, j]
        if "batch_loss" in w:
            ax.plot(w.index, w["batch_loss"].clip(upper=10), lw=0.6, color="0.3")
        ax.set(title=name.removeprefix("trace_").replace("_", ", "), ylabel="batch loss")
        meas = w.dropna(subset=["sharpness"]) if "sharpness" in w else w.iloc[:0]
        ax = axes[1, j]
        ax.plot(meas.index, meas["sharpness"], "o-", ms=3, label="sharpness s (loss)")
        ax.plot(meas.index, meas["penalized_sharpness"], "s-", ms=3,
                label="top curvature of the penalized objective")
        ax.plot(meas.index, meas["aligned"], ":", label="s + 2λs²")
        ax.axhline(2 / eps, color="k", lw=0.8, label="2/ε")
        ax.set(xlabel="update", ylabel="curvature")
        for a in axes[:, j]:
            if np.isfinite(c):
                a.axvline(c, color="C3", ls=":", lw=1)
    axes[1, 0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def summary(a: Analysis, p: Params) -> dict[str, str]:
    """This set's headline cell in words and the verdict of each claim (a row of
    :func:`~implicitreg.chapters.result_sets.side_by_side`)."""
    g = a.glue
    d = _headline_runs(a.runs, p)
    fit = "; ".join(f"{name} {int(x.fits.sum())} of {len(x)} runs fit"
                    + (f", {int(x.diverged.sum())} diverged" if x.diverged.any() else "")
                    for name, x in d.groupby("name", sort=False)) or "no run"
    return {"headline cell": f"n = {g['hl_n_max']}, ε* = {g['hl_eps_star']}, "
                             f"λ* = {g['hl_lam_star']}, λ_r1 = {g['hl_lam_r1']}: SGD − "
                             f"{g['hl_large']} {g['hl_gap']}; {fit}",
            **{claim: a.verdicts[claim] for claim in ("gap", "n", "penalty-gain",
                                                      "penalty", "penalty-gain-r1",
                                                      "penalty-r1")}}


def scale_description(p: Params) -> str:
    side = {"cifar10": 32, "mnist": 28}.get(p.dataset)
    res = f" at {side // p.downsample}×{side // p.downsample} pixels" if side else ""
    return (f"a CNN of width {p.cnn_width} on {', '.join(f'{n:,}' for n in sorted(p.n_grid))} "
            f"training images{res}, B = {p.batch_size} against {p.large_batch}, "
            f"{p.epochs} epochs of the small batch, {len(p.seeds)} paired confirmation "
            f"seeds, {len(p.pilot_seeds)} pilot seeds, "
            f"{'all' if p.n_test is None else f'{p.n_test:,}'} test images")


def figures(a: Analysis, runs: Runs, p: Params) -> dict[str, Any]:
    """The chapter's figures of its runs, each drawn when called (the diagnosis figure
    reads the committed diagnosis, not the runs)."""
    return {"headline": lambda: fig_headline(a, runs, p), "curves": lambda: fig_curves(runs, p)}


__all__ = ["Params", "profile", "Cell", "arm_label", "arm_name", "config",
           "design_eps_pilot", "design_gap", "design_lambda_pilot", "design_penalty",
           "choose_lambda_r1", "statistic", "fit_level", "fits", "run_table", "choose_eps",
           "choose_lambda", "Runs", "run", "CRITERIA", "REVISIONS", "STATISTIC_GLUE",
           "VERDICT_GLUE", "registered_hash", "revisions_hash", "criteria_table",
           "Analysis", "analyze", "compare", "ladder", "detectable", "per_seed_table",
           "pilot_table", "fig_headline", "fig_curves", "scale_description", "summary",
           "SD_DIFF", "DECISIVE"]
