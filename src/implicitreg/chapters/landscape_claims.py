"""The landscape-claims chapter as a module: its parameters, the runs it makes, what it
measures on them, its registered criteria and its figures.

Four claims about the loss landscape, each measured on small MLPs: cyclical learning
rates knock training out of its basin (Smith & Topin 2017), different optimizers end in
different minima (Im et al. 2016), weight matching removes the barriers between networks
from different initializations (Entezari et al. 2022, Ainsworth et al. 2023), and
training passes near saddles (Dauphin et al. 2014). The notebook
``notebooks/landscape_claims.ipynb`` is prose around the functions here:

- :class:`Params`, whose named instances are the profiles of
  ``notebooks/profiles/landscape_claims.yaml``;
- :func:`design`: the labelled :class:`~implicitreg.engine.config.RunConfig` of a
  profile, and :func:`run`, which trains or loads them (keeping the weights the
  measurements need);
- :func:`measure`: from the runs to tables (jumps, solutions, barriers, spectra);
- :func:`judge`: from those tables to verdicts and the values the prose glues
  (:func:`analyze` is both); :func:`summary`, :func:`scale_description` and
  :func:`figures` (the chapter protocol, :mod:`.protocol`);
- :data:`CRITERIA`: the claims' criteria, registered before the runs;
- :func:`fig_clr`, :func:`fig_opt`, :func:`fig_perm`, :func:`fig_saddle`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from ..analysis.stats import detectable_paired, paired_p_greater, welch_p_greater
from .base import ChapterParams
from .protocol import RunSet, verdict_summary
from .criteria import (NOT_ASSESSABLE, NOT_REPRODUCED, PARTLY, REPRODUCED, SD_FACTOR,
                       Criterion, Premise, Revision, Verdict, not_assessable,
                       premise_failure, register, sd_premise)

CHAPTER = "landscape_claims"


# ------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Params(ChapterParams):
    """The values the chapter runs with; every profile gives all of them. The
    thresholds of the verdicts are not parameters: they are registered with
    :data:`CRITERIA`."""
    dataset: str
    """Dataset name (cifar10, mnist, synthetic)."""
    n_train: int | None
    """Training examples, a class-stratified subset (None: all)."""
    n_test: int | None
    """Test examples (None: all)."""
    widths: tuple[int, ...]
    """Hidden widths of the MLP of sections 1, 2 and 4."""
    batch_size: int
    """SGD's batch size B."""
    seed: int
    """Initialization of sections 1, 2 and 4."""
    clr_lr: float
    """Section 1: peak of the triangular cycle."""
    clr_lr_min: float
    """Section 1: start and end of the cycle."""
    clr_cycle: int
    """Section 1: steps per cycle."""
    clr_cycles: int
    """Section 1: cycles per run."""
    clr_eval_every: int
    """Section 1: steps between evaluations (loss and sharpness)."""
    sharpness_iters: int
    """Power-iteration steps per sharpness measurement (section 2 uses twice as many)."""
    opt_lrs: tuple[float, ...]
    """Section 2: ε of SGD, SGD + momentum 0.9, Adam, RMSprop."""
    opt_steps: int
    """Section 2: steps of every optimizer."""
    opt_seeds: tuple[int, ...]
    """Section 2: initializations (each: 4 optimizers × 2 orders)."""
    perm_widths: tuple[int, ...]
    """Section 3: hidden widths of the two-hidden-layer MLPs, narrowest first."""
    perm_pairs: int
    """Section 3: pairs of initializations per width."""
    perm_lr: float
    """Section 3: SGD's ε."""
    perm_steps: int
    """Section 3: SGD steps per network."""
    saddle_steps: tuple[int, ...]
    """Section 4: steps at which the Hessian is examined (each its own run)."""
    saddle_lr: float
    """Section 4: ε of GD and SGD."""
    eig_iters: int
    """Section 4: power-iteration steps for λ_min on σI − H."""
    slq_steps: int
    """Section 4: Lanczos steps of the spectral density."""
    curvature_examples: int
    """Training examples on which curvature and barriers are measured."""
    interp_points: int
    """Points on each straight line between two solutions."""

    CHAPTER: ClassVar[str] = CHAPTER

    def __post_init__(self) -> None:
        self._tuples("widths", "opt_lrs", "opt_seeds", "perm_widths", "saddle_steps")
        self._positive_ints("batch_size", "clr_cycle", "clr_cycles",
                             "clr_eval_every", "sharpness_iters", "opt_steps",
                             "perm_pairs", "perm_steps", "eig_iters",
                             "slq_steps", "curvature_examples", "interp_points")
        if len(self.opt_lrs) != len(OPTIMIZERS):
            raise ValueError(f"Params.opt_lrs = {self.opt_lrs!r}: one rate for each of "
                             f"{list(OPTIMIZERS)}")
        if not self.perm_widths or list(self.perm_widths) != sorted(self.perm_widths):
            raise ValueError(f"Params.perm_widths = {self.perm_widths!r}: widths, "
                             "narrowest first")
        if not self.saddle_steps or list(self.saddle_steps) != sorted(self.saddle_steps):
            raise ValueError(f"Params.saddle_steps = {self.saddle_steps!r}: increasing steps")


# The named profile's values plus overrides (see :meth:`ChapterParams.profile`).
profile = Params.profile


OPTIMIZERS = {"SGD": dict(optimizer="sgd"), "SGD + momentum": dict(optimizer="sgd", momentum=0.9),
              "Adam": dict(optimizer="adam"), "RMSprop": dict(optimizer="rmsprop")}


# ------------------------------------------------------------------ design
@dataclass(frozen=True, order=True)
class Arm:
    """One run: ``section`` is clr, opt, perm or saddle; ``name`` the method or
    optimizer; ``order`` 0 for the minibatch order of ``seed``, 1 for another;
    ``width`` the hidden width (perm); ``steps`` the length of a saddle run."""
    section: str
    name: str = ""
    seed: int = 0
    order: int = 0
    width: int = 0
    steps: int = 0


# The sections whose measurements need the trained weights.
KEEP_MODEL = {"clr": False, "opt": True, "perm": True, "saddle": True}


def base_config(p: Params):
    from ..engine.config import RunConfig

    return RunConfig(dataset=p.dataset, n_train=p.n_train, n_test=p.n_test, model="mlp",
                     widths=tuple(p.widths), batch_size=p.batch_size, seed=p.seed,
                     eval_examples=p.curvature_examples, progress=False)


def clr_config(p: Params):
    return base_config(p).replace(
        lr=p.clr_lr, lr_min=p.clr_lr_min, lr_schedule="triangular", cycle_steps=p.clr_cycle,
        steps=p.clr_cycle * p.clr_cycles, eval_every=p.clr_eval_every, sharpness=True,
        sharpness_iters=p.sharpness_iters)


def clr_sgd_name(p: Params) -> str:
    return f"SGD, B = {p.batch_size}"


def design(p: Params, section: str | None = None) -> list[tuple[Arm, Any]]:
    """The chapter's runs (or one section's): GD and SGD under the cyclical rate; four
    optimizers × two orders per seed; pairs of networks per width; GD and SGD stopped at
    each of ``saddle_steps``."""
    base = base_config(p)
    clr = clr_config(p)
    out = [(Arm("clr", "GD", p.seed), clr.replace(method="gd")),
           (Arm("clr", clr_sgd_name(p), p.seed), clr.replace(method="sgd"))]
    ocfg = base.replace(method="sgd", steps=p.opt_steps, eval_every=p.opt_steps)
    for s in p.opt_seeds:
        for (name, kw), lr in zip(OPTIMIZERS.items(), p.opt_lrs):
            for order in (0, 1):
                out.append((Arm("opt", name, s, order),
                            ocfg.replace(seed=s, lr=lr, **kw,
                                         order_seed=None if order == 0 else 1000 + s)))
    pcfg = base.replace(method="sgd", lr=p.perm_lr, steps=p.perm_steps, eval_every=p.perm_steps)
    out += [(Arm("perm", "SGD", s, width=w), pcfg.replace(widths=(w, w), seed=s))
            for w in p.perm_widths for s in range(2 * p.perm_pairs)]
    scfg = base.replace(lr=p.saddle_lr)
    out += [(Arm("saddle", arm, p.seed, steps=s), scfg.replace(method=m, steps=s, eval_every=s))
            for arm, m in [("GD", "gd"), ("SGD", "sgd")] for s in p.saddle_steps]
    return [(a, c) for a, c in out if section is None or a.section == section]


def run(p: Params, **options: Any) -> RunSet:
    """Train or load every run of :func:`design`, keeping the weights of the sections
    whose measurements restore the networks."""
    from ..runs.sweeps import run_labeled

    d = design(p)
    runs: dict[Arm, Any] = {}
    for keep in (False, True):
        part = [(a, c) for a, c in d if KEEP_MODEL[a.section] is keep]
        runs.update(run_labeled(part, keep_model=keep, **options))
    return RunSet({a: runs[a] for a, _ in d})


# ------------------------------------------------------------------ criteria
REGISTERED = "2026-11-26"
JUMP_FACTOR = 2.0
RECONVERGE = 1.5
MATCH_FACTOR = 1.5
TARGET_LOSS = 0.1
ZERO_BARRIER = 0.05
NEG_TOL = 0.01
GRAD_FRAC = 0.1
ALPHA = 0.05
MIN_RISING = 3

CRITERIA = (
    Criterion(
        claim="clr",
        statement="Once a cyclical learning rate passes some value the training loss jumps "
                  "out of its basin, and re-converges as the rate falls.",
        statistic="under a triangular cycle from clr_lr_min up to clr_lr and back over "
                  "clr_cycle steps, for GD and SGD: a jump is the first evaluation in the "
                  "rising half of a cycle at which the training loss exceeds "
                  f"{JUMP_FACTOR:g} times its smallest value earlier in that cycle; it "
                  "re-converges when the loss at the cycle's end is below "
                  f"{RECONVERGE:g} times that pre-jump minimum",
        threshold="reproduced when at least half of the cycles (over both arms) jump and "
                  "every jump re-converges; partly when some cycle jumps; not reproduced "
                  "when none does",
        premises=("no run diverged",
                  f"at least {MIN_RISING} evaluations in the rising half of each cycle"),
        registered=REGISTERED),
    Criterion(
        claim="clr-match",
        statement="The rate at which the loss jumps is the stability threshold 2/λ of the "
                  "sharpness just before.",
        statistic="ε·λ/2 at each jump of GD, ε the rate of the step before the jump and λ "
                  "the sharpness (top Hessian eigenvalue) at the evaluation before it",
        threshold=f"a jump matches when 1/{MATCH_FACTOR:g} ≤ ε·λ/2 ≤ {MATCH_FACTOR:g}; "
                  "reproduced when every jump of GD matches, partly when some do, not "
                  "reproduced when none does (SGD's ratios are reported, not judged: its "
                  "threshold is known to be lower)",
        premises=("GD did not diverge", "GD jumped in at least one cycle"),
        registered=REGISTERED),
    Criterion(
        claim="opt",
        statement="Different optimizers from one initialization end in different minima.",
        statistic="from each initialization, SGD, SGD + momentum, Adam and RMSprop, each "
                  "with two minibatch orders; the barrier between two solutions is the "
                  "largest excess of the training loss on the straight line between them "
                  "over the line between its end values; difference of the mean barrier "
                  "between solutions of different optimizers and the mean barrier between "
                  "the two orders of one optimizer, with a Welch 95% interval",
        threshold="reproduced when the interval's lower end is above zero; otherwise not "
                  "reproduced, with the difference detectable at 80% power",
        premises=(f"every solution reached a training loss below {TARGET_LOSS:g} and none "
                  "diverged",
                  "at least two barriers of each kind"),
        alpha=ALPHA, registered=REGISTERED),
    Criterion(
        claim="perm",
        statement="After weight matching the barrier between networks from different "
                  "initializations shrinks, more so for wider networks.",
        statistic="per width in perm_widths, the mean over pairs of the training-loss "
                  "barrier before and after weight matching the second network to the "
                  "first, and the mean fraction of it removed",
        threshold="reproduced when matching lowers the mean barrier at every width and the "
                  "fraction removed is larger at the widest than at the narrowest width; "
                  "partly when one of the two holds; not reproduced when neither does",
        premises=("at every width, at least one pair finished without divergence",),
        registered=REGISTERED),
    Criterion(
        claim="perm-zero",
        statement="Modulo permutations, SGD solutions of wide enough networks have no "
                  "barrier between them.",
        statistic="the mean matched barrier at the widest width",
        threshold=f"reproduced at the widest width when below {ZERO_BARRIER:g}; above it "
                  "the claim, which is about wide enough networks, is not assessable at "
                  "this width",
        premises=("the widest width has a finished pair",
                  f"the widest width's matched barrier is below {ZERO_BARRIER:g}"),
        registered=REGISTERED),
    Criterion(
        claim="saddle-pass",
        statement="GD and SGD pass near saddle points (small gradient, negative curvature).",
        statistic="at each step of saddle_steps, for GD and SGD: λ_min (the smaller of "
                  "power iteration on σI − H with σ = λ_max and the smallest Lanczos "
                  "node), λ_max (the largest Lanczos node), and ‖∇C‖² over its initial "
                  "value",
        threshold=f"reproduced when at some step before the last ‖∇C‖² is below "
                  f"{GRAD_FRAC:g} times its initial value while λ_min < −{NEG_TOL:g}·λ_max",
        premises=("no examined run diverged",),
        registered=REGISTERED),
    Criterion(
        claim="saddle-end",
        statement="The solutions reached still have measurable negative curvature.",
        statistic="λ_min and λ_max at the last step of saddle_steps, for GD and SGD",
        threshold=f"reproduced when λ_min < −{NEG_TOL:g}·λ_max at the last step of every "
                  "arm",
        premises=("no run at the last step diverged",),
        registered=REGISTERED),
)
MIN_PAIRS = 2
# What revisions perm-zero-r1 and opt-r1 assume, fixed with them.
MIN_ZERO_PAIRS = 3
SD_MATCHED = 0.02
"""SD across pairs of the matched barrier at the widest width (training loss), assumed:
small against the threshold, as the barriers between networks that matching makes
equivalent would be; it sets the power statement of an undecided verdict only, and the
runs must bear it out."""
MIN_OPT_SEEDS = 2
SD_OPT = 0.1
"""SD across initializations of D, the difference of one initialization's mean barriers
(training loss), assumed; it sets the power statement of an undecided verdict only, and the
runs must bear it out."""

# Revisions keep the original criterion registered and judged; they are fingerprinted
# apart, so that the hash of the criteria as registered before the runs stays checkable.
REVISIONS = (
    Revision(
        original="perm",
        revised=dataclasses.replace(
            CRITERIA[3], claim="perm-r1",
            statistic="per width: the one-sided paired t test of barrier before > barrier "
                      "after matching over the pairs, its p-values Holm-adjusted over the "
                      "widths; and the one-sided Welch test of fraction removed at the "
                      "widest > at the narrowest width",
            threshold=f"reproduced when every width's adjusted p-value is ≤ {ALPHA:g} and "
                      f"the Welch p-value is ≤ {ALPHA:g}; partly when one of the two holds; "
                      "not reproduced when neither does, with the drop of the barrier "
                      "detectable at 80% power at that number of pairs",
            premises=(f"at every width, at least {MIN_PAIRS} pairs finished without "
                      "divergence",),
            alpha=ALPHA, registered="2026-12-01"),
        reason="The registered criterion compares means over a few pairs per width without "
               "a test: a lower mean at every width of a sweep can arise by chance, and "
               "the more widths the likelier. The revision tests each width and controls "
               "the family-wise error over the widths (Holm).",
        date="2026-12-01"),
    Revision(
        original="perm-zero",
        revised=dataclasses.replace(
            CRITERIA[4], claim="perm-zero-r1",
            statistic="at the widest width, over the pairs that finished: the training-loss "
                      "barrier of each pair before and after weight matching; the mean "
                      "matched barrier with its one-sided 95% lower and upper confidence "
                      "bounds (Student t over the pairs), and the mean unmatched barrier",
            threshold=f"upper bound below {ZERO_BARRIER:g}: reproduced; lower bound at or "
                      f"above {ZERO_BARRIER:g}: not reproduced; otherwise not reproduced, "
                      "with the mean matched barrier at which the upper bound falls below "
                      f"{ZERO_BARRIER:g} with 80% probability, given the SD assumed",
            premises=(f"at least {MIN_ZERO_PAIRS} finished pairs at the widest width",
                      f"the mean unmatched barrier there is at least {2 * ZERO_BARRIER:g}, "
                      "twice the threshold: there is a barrier to remove, and a matching "
                      "that removes less than half of it cannot pass",
                      "for a verdict that neither bound decides, the SD of the matched "
                      f"barrier across pairs is at most {SD_FACTOR:g}× the SD assumed: its "
                      "power statement rests on it"),
            alpha=ALPHA, sd_assumed=SD_MATCHED, registered=""),
        reason="The registered criterion's second premise is its success condition (the "
               f"matched barrier below {ZERO_BARRIER:g}), so its only outcomes are "
               "reproduced and not assessable: a matching that fails cannot show. The "
               "revision keeps the threshold as the condition of success and puts "
               "something else in the premise: a barrier to remove, measured before "
               "matching. A matching that fails leaves the barrier about where it was, "
               "above the threshold, and the verdict is then not reproduced. A confidence "
               "bound over the pairs replaces the bare mean, so that either verdict rests "
               "on the pairs' spread.",
        date=""),
    Revision(
        original="opt",
        revised=dataclasses.replace(
            CRITERIA[2], claim="opt-r1",
            statistic="barriers as registered; per initialization D = mean barrier between "
                      "solutions of different optimizers − mean barrier between the two "
                      "orders of one optimizer; the mean of D over the initializations, which "
                      "share no solution, with its two-sided 95% Student t interval",
            threshold="reproduced when the interval's lower end is above zero; not reproduced "
                      "when its upper end is below zero; otherwise not reproduced, with the "
                      "mean D that the interval would exclude zero from with 80% "
                      "probability, given the SD assumed",
            premises=(CRITERIA[2].premises[0],
                      f"at least {MIN_OPT_SEEDS} initializations with barriers of both kinds",
                      "for a verdict the interval does not decide, the SD of D across "
                      f"initializations is at most {SD_FACTOR:g}× the SD assumed: its power "
                      "statement rests on it"),
            alpha=ALPHA, sd_assumed=SD_OPT, registered=""),
        reason="The registered Welch interval takes every barrier as an independent "
               "observation, but every solution enters several pairs (an initialization's "
               "solution of each optimizer with the first order is in three cross-optimizer "
               "pairs and one same-optimizer pair), so the barriers of one initialization "
               "are correlated and the interval is too narrow for the evidence it has. The "
               "revision reduces each initialization to one difference of its mean "
               "barriers and takes the initializations, between which no solution is "
               "shared, as the replicates.",
        date=""),
)


# Fingerprints of the criteria (as registered; the revisions apart) and their table.
registered_hash, revisions_hash, criteria_table = register(CRITERIA, REVISIONS, CHAPTER)

# The glue keys of each criterion's statistic and verdict, for the claims ledger: a row
# there quotes only the numbers its verdict was computed from.
STATISTIC_GLUE = {"clr": ("clr_jumps",), "clr-match": ("clr_ratio",),
                  "opt": ("opt_barriers",), "opt-r1": ("opt_r1_numbers",),
                  "perm": ("perm_table", "perm_removed"),
                  "perm-r1": ("perm_r1_numbers",), "perm-zero": ("perm_widest",),
                  "perm-zero-r1": ("perm_zero_r1_numbers",),
                  "saddle-pass": ("saddle_near",), "saddle-end": ("saddle_end_eigs",)}
VERDICT_GLUE = {c.claim: f"{c.claim.replace('-', '_')}_verdict"
                for c in CRITERIA + tuple(r.revised for r in REVISIONS)}


# ------------------------------------------------------------------ measurements
@dataclass
class Measurements:
    """What :func:`measure` reads from the runs; :func:`judge` needs nothing else."""
    jumps: pd.DataFrame
    """Section 1, one row per (arm, cycle): jump step, ε at the jump, λ before, ε·λ/2,
    peak and end loss, re-converged, diverged."""
    clr_curves: pd.DataFrame
    """Section 1: arm, step, metric (loss, sharpness), value."""
    solutions: pd.DataFrame
    """Section 2, one row per solution: optimizer, seed, order, training loss, test
    accuracy, sharpness, diverged."""
    pairs: pd.DataFrame
    """Section 2, one row per pair of solutions: seed, a, b, kind, barrier."""
    perm: pd.DataFrame
    """Section 3, one row per (width, pair): before, after, removed."""
    perm_paths: pd.DataFrame
    """Section 3: the loss along the line of the first pair per width, before and
    after matching."""
    saddle: pd.DataFrame
    """Section 4, one row per (arm, step): training loss, ‖∇C‖² / initial, λ_max,
    λ_min, |λ_min| / λ_max, negative mass, diverged."""


def _train_subset(data: Any, p: Params):
    return data.x_train[:p.curvature_examples], data.y_train[:p.curvature_examples]


def path_barrier(ra: Any, rb: Any, p: Params, state_b: Any = None):
    """Training-loss barrier and the whole path between two stored solutions."""
    from ..analysis import landscape as L
    from ..runs.runner import restore

    net, data = restore(ra)
    xs, ys = _train_subset(data, p)
    path = L.interpolation_path(net, ra.load_model_state(),
                                state_b if state_b is not None else rb.load_model_state(),
                                xs, ys, p.interp_points)
    return L.barrier_height(path["loss"]), path


def measure_clr(runs: Mapping[Arm, Any], p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..analysis import landscape as L

    rows, curves = [], []
    for arm, r in ((a, r) for a, r in runs.items() if a.section == "clr"):
        lo = r.curve("loss", "train")
        sh = r.curve("sharpness", "eval").set_index("step").value
        curves += [pd.DataFrame({"arm": arm.name, "step": lo.step.to_numpy(),
                                 "metric": "loss", "value": lo.value.to_numpy()}),
                   pd.DataFrame({"arm": arm.name, "step": sh.index.to_numpy(),
                                 "metric": "sharpness", "value": sh.to_numpy()})]
        for row in L.cycle_jumps(lo.step, lo.value, p.clr_cycle, JUMP_FACTOR, RECONVERGE):
            eps_jump = lam = ratio = np.nan
            if row["jump_step"] is not None:
                # The rate of the step that led to the jump.
                eps_jump = r.config.lr_at(row["jump_step"] - 1)
                lam = float(sh.get(row["before_step"], np.nan))
                ratio = eps_jump * lam / 2
            rows.append({"arm": arm.name, "cycle": row["cycle"] + 1,
                         "jump step": row["jump_step"], "ε at jump": eps_jump,
                         "λ before": lam, "ε·λ/2": ratio, "peak loss": row["peak"],
                         "end loss": row["end_loss"], "re-converged": row["reconverged"],
                         "diverged": bool(r.summary["diverged"])})
    return (pd.DataFrame(rows),
            pd.concat(curves, ignore_index=True) if curves else pd.DataFrame())


def measure_opt(runs: Mapping[Arm, Any], p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..analysis import landscape as L
    from ..runs.runner import restore

    opt = {(a.name, a.seed, a.order): r for a, r in runs.items() if a.section == "opt"}
    sol = []
    for (name, s, order), r in opt.items():
        sharp = np.nan
        if not r.summary["diverged"]:
            net, data = restore(r)
            xs, ys = _train_subset(data, p)
            sharp = float(L.top_eigenvalue(net, xs, ys, iters=p.sharpness_iters * 2))
        sol.append({"optimizer": name, "seed": s, "order": order,
                    "training loss": r.final("loss", "train"),
                    "test accuracy": r.final("accuracy", "test"), "sharpness": sharp,
                    "diverged": bool(r.summary["diverged"])})
    pairs = []
    names = list(OPTIMIZERS)
    for s in p.opt_seeds:
        for i, a in enumerate(names):
            for b in names[i:]:
                for oa, ob in ([(0, 1)] if a == b else [(0, 0)]):
                    ra, rb = opt[(a, s, oa)], opt[(b, s, ob)]
                    bar = np.nan
                    if not (ra.summary["diverged"] or rb.summary["diverged"]):
                        bar, _ = path_barrier(ra, rb, p)
                    pairs.append({"seed": s, "a": a, "b": b, "barrier": bar,
                                  "kind": "same optimizer, other order" if a == b
                                  else "different optimizers"})
    return pd.DataFrame(sol), pd.DataFrame(pairs)


def measure_perm(runs: Mapping[Arm, Any], p: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..analysis import landscape as L
    from ..runs.runner import restore

    perm = {(a.width, a.seed): r for a, r in runs.items() if a.section == "perm"}
    rows, paths = [], []
    for w in p.perm_widths:
        for k in range(p.perm_pairs):
            ra, rb = perm[(w, 2 * k)], perm[(w, 2 * k + 1)]
            if ra.summary["diverged"] or rb.summary["diverged"]:
                rows.append({"width": w, "pair": k, "before": np.nan, "after": np.nan,
                             "removed": np.nan})
                continue
            na, _ = restore(ra)
            nb, _ = restore(rb)
            perms = L.weight_matching(na, nb, seed=k)
            before, p0 = path_barrier(ra, rb, p)
            after, p1 = path_barrier(ra, rb, p, state_b=L.permuted_state(nb, perms))
            rows.append({"width": w, "pair": k, "before": before, "after": after,
                         "removed": 1 - after / before if before > 0 else np.nan})
            if k == 0:
                for label, path in (("before matching", p0), ("after matching", p1)):
                    paths += [{"width": w, "t": t, "loss": v, "": label}
                              for t, v in zip(path["t"], path["loss"])]
    return pd.DataFrame(rows), pd.DataFrame(paths)


def measure_saddle(runs: Mapping[Arm, Any], p: Params) -> pd.DataFrame:
    from ..analysis import landscape as L
    from ..runs.runner import restore

    rows = []
    for arm, r in ((a, r) for a, r in runs.items() if a.section == "saddle"):
        gn = r.curve("grad_norm2_full", "eval").set_index("step").value
        row = {"arm": arm.name, "step": arm.steps, "training loss": r.final("loss", "train"),
               "‖∇C‖² / initial": float(gn.iloc[-1] / gn.iloc[0]),
               "diverged": bool(r.summary["diverged"])}
        if r.summary["diverged"]:
            rows.append({**row, "λ_max": np.nan, "λ_min": np.nan, "|λ_min| / λ_max": np.nan,
                         "negative mass": np.nan})
            continue
        net, data = restore(r)
        xs, ys = _train_subset(data, p)
        nodes, w = L.hessian_spectrum_slq(net, xs, ys, steps=p.slq_steps, probes=1, seed=p.seed)
        lam_max = float(nodes.max())  # the largest Ritz value: the shift σ of the power iteration
        lam_pow, _ = L.most_negative_eigenvalue(net, xs, ys, iters=p.eig_iters, shift=lam_max,
                                                seed=p.seed)
        # Both estimates are upper bounds on λ_min (power iteration approaches it from
        # above, and a Ritz value lies inside the spectrum): the smaller is the tighter.
        lam_min = min(lam_pow, float(nodes.min()))
        rows.append({**row, "λ_max": lam_max, "λ_min": lam_min,
                     "|λ_min| / λ_max": -lam_min / lam_max,
                     "negative mass": L.negative_mass(nodes, w, -NEG_TOL * lam_max)})
    return pd.DataFrame(rows)


def measure(runs: Mapping[Arm, Any], p: Params) -> Measurements:
    """Every table of the chapter from its runs (the opt, perm and saddle runs must have
    been stored with their weights: :func:`run` does that)."""
    jumps, curves = measure_clr(runs, p)
    sol, pairs = measure_opt(runs, p)
    perm, paths = measure_perm(runs, p)
    return Measurements(jumps, curves, sol, pairs, perm, paths, measure_saddle(runs, p))


# ------------------------------------------------------------------ verdicts
@dataclass
class Analysis:
    m: Measurements
    verdicts: dict[str, Verdict]
    glue: dict[str, Any] = field(default_factory=dict)


def _verdict(claim: str, v: str, numbers: str) -> Verdict:
    """A verdict whose detail is the failed premise (with its numbers) when it is not
    assessable, else the measured numbers."""
    if v.startswith(NOT_ASSESSABLE):
        return Verdict(claim, NOT_ASSESSABLE, v[len(NOT_ASSESSABLE) + 2:])
    return Verdict(claim, v, numbers)


def _share(ok: pd.Series) -> str:
    return REPRODUCED if bool(ok.all()) else PARTLY if bool(ok.any()) else NOT_REPRODUCED


def judge_clr(m: Measurements, p: Params) -> tuple[Verdict, Verdict, dict[str, str]]:
    jumps = m.jumps
    jumped = jumps[jumps["jump step"].notna()] if len(jumps) else jumps
    n_cyc = len(jumps)
    gd_j = jumped[jumped.arm == "GD"] if len(jumped) else jumped
    diverged = sorted(set(jumps[jumps.diverged].arm)) if len(jumps) else []
    evals = (p.clr_cycle // 2) // p.clr_eval_every + 1
    why = premise_failure([
        Premise("no run diverged", not diverged, f"{', '.join(diverged)} diverged"),
        Premise(f"at least {MIN_RISING} evaluations in the rising half of each cycle",
                evals >= MIN_RISING,
                f"{evals} evaluations in {p.clr_cycle // 2} steps, every {p.clr_eval_every}"),
        Premise("at least one cycle", n_cyc > 0, "no cycle was evaluated")])
    all_back = bool(len(jumped)) and bool(jumped["re-converged"].all())
    if why:
        v = why
    elif len(jumped) >= n_cyc / 2 and all_back:
        v = REPRODUCED
    else:
        v = PARTLY if len(jumped) else NOT_REPRODUCED
    gd_rows = jumps[jumps.arm == "GD"] if len(jumps) else jumps
    why_m = premise_failure([
        Premise("GD did not diverge", "GD" not in diverged, "GD diverged"),
        Premise("GD jumped in at least one cycle", len(gd_j) > 0,
                f"GD jumped in 0 of its {len(gd_rows)} cycles")])
    match = (gd_j["ε·λ/2"] >= 1 / MATCH_FACTOR) & (gd_j["ε·λ/2"] <= MATCH_FACTOR)
    vm = why_m or _share(match)
    eps_res = (p.clr_lr - p.clr_lr_min) / (p.clr_cycle / 2) * p.clr_eval_every
    n_back = int(jumped["re-converged"].sum()) if len(jumped) else 0
    g = {"clr_jumps": f"{len(jumped)} of {n_cyc} cycles jumped (GD {len(gd_j)}, SGD "
                      f"{len(jumped) - len(gd_j)}), {n_back} of them re-converged by the "
                      "cycle's end",
         "clr_eps": "; ".join(f"{r['arm']} cycle {r['cycle']}: ε = {r['ε at jump']:.3f}"
                              for _, r in jumped.iterrows()) or "no jump",
         "clr_ratio": "; ".join(f"{r['arm']} cycle {r['cycle']}: {r['ε·λ/2']:.2f}"
                                for _, r in jumped.iterrows()) or "no jump",
         "clr_verdict": v, "clr_match_verdict": vm, "clr_resolution": f"{eps_res:.3f}"}
    g["clr_comment"] = (
        ("" if v == REPRODUCED else
         f"The test cannot see a rise of the loss by less than a factor {JUMP_FACTOR:g} "
         f"within a cycle, nor one that begins and ends between two evaluations "
         f"({p.clr_eval_every} steps, ε changing by {eps_res:.3f} between them). ")
        + (f"Every jump of GD came within a factor {MATCH_FACTOR:g} of 2/λ."
           if vm == REPRODUCED else
           "The ratio ε·λ/2 at GD's jumps is "
           + (", ".join(f"{x:.2f}" for x in gd_j["ε·λ/2"]) or "undefined")
           + f": the test can resolve it only to the change of ε between evaluations "
             f"({eps_res:.3f}) and to λ measured up to {p.clr_eval_every} steps before the "
             "jump, by a power iteration that approaches λ from below."))
    return (_verdict("clr", v, g["clr_jumps"]),
            _verdict("clr-match", vm, g["clr_ratio"]), g)


def judge_opt(m: Measurements, p: Params) -> tuple[Verdict, dict[str, str]]:
    from ..analysis.stats import detectable_difference, diff_ci

    sol, pairs = m.solutions, m.pairs
    same = pairs[pairs.kind.str.startswith("same")].barrier.to_numpy(dtype=float)
    diff = pairs[pairs.kind == "different optimizers"].barrier.to_numpy(dtype=float)
    order = [k for k in OPTIMIZERS if k in set(sol.optimizer)]
    worst = sol.groupby("optimizer")["training loss"].max().loc[order]
    above = worst[~(worst < TARGET_LOSS)]
    n_div = int(sol.diverged.sum())
    why = premise_failure([
        Premise(f"every solution reached a training loss below {TARGET_LOSS:g} and none "
                "diverged", len(above) == 0 and n_div == 0,
                "largest: " + ", ".join(f"{k} {x:.3f}" for k, x in above.items())
                + (f"; {n_div} diverged" if n_div else "")),
        Premise("at least two barriers of each kind",
                min(np.isfinite(diff).sum(), np.isfinite(same).sum()) >= 2,
                f"{np.isfinite(diff).sum()} across optimizers, {np.isfinite(same).sum()} "
                "within one")])
    same_f, diff_f = same[np.isfinite(same)], diff[np.isfinite(diff)]
    d_est = diff_ci(diff_f, same_f)
    detect = detectable_difference(diff_f, same_f)
    if why:
        v = why
    else:
        v = REPRODUCED if np.isfinite(d_est.low) and d_est.low > 0 else NOT_REPRODUCED
    g = {"opt_barriers": f"different optimizers {np.nanmean(diff):.3f}, same optimizer "
                         f"with another order {np.nanmean(same):.3f}; difference "
                         f"{d_est.fmt(digits=3)}",
         "opt_losses": ", ".join(f"{k} {x:.3f}" for k, x in worst.items()),
         "opt_sharp": ", ".join(f"{k} {x:.1f}" for k, x in
                                sol.groupby("optimizer")["sharpness"].mean().loc[order].items()),
         "opt_acc": ", ".join(f"{k} {x:.3f}" for k, x in
                              sol.groupby("optimizer")["test accuracy"].mean().loc[order].items()),
         "opt_verdict": v}
    g["opt_comment"] = (
        f"Not every solution reached the training loss {TARGET_LOSS:g}, so the barriers "
        "compare solutions at different heights and the test is not made; more steps (the "
        "`paper` profile) would be needed." if why else
        "" if v == REPRODUCED else
        f"With {len(diff_f)} cross-optimizer and {len(same_f)} same-optimizer pairs, the "
        f"test detects (80% power, at the measured spreads) a difference of mean barriers "
        f"of {detect:.3f} or more; a smaller one would go unseen.")
    return _verdict("opt", v, g["opt_barriers"]), g


def judge_perm(m: Measurements, p: Params) -> tuple[Verdict, Verdict, dict[str, str]]:
    from ..analysis.stats import mean_ci

    perm = m.perm
    ok = perm[np.isfinite(perm.before)]
    pw = ok.groupby("width")[["before", "after", "removed"]].mean()
    missing = [w for w in p.perm_widths if w not in pw.index]
    why = premise_failure([Premise(
        "at every width, at least one pair finished without divergence", not missing,
        "none at width " + ", ".join(str(w) for w in missing))])
    lower_all = bool(len(pw)) and bool((pw.after < pw.before).all())
    more_wide = len(pw) > 1 and bool(pw.removed.iloc[-1] > pw.removed.iloc[0])
    v = why or (REPRODUCED if lower_all and more_wide else
                PARTLY if lower_all or more_wide else NOT_REPRODUCED)
    widest = p.perm_widths[-1]
    zero_ok = widest in pw.index and bool(pw.after.loc[widest] < ZERO_BARRIER)
    if widest not in pw.index:
        vz = not_assessable(f"no finished pair at width {widest}")
    elif zero_ok:
        vz = "reproduced at the widest width"
    else:
        vz = not_assessable(f"the matched barrier at width {widest} is "
                            f"{pw.after.loc[widest]:.3f}, above {ZERO_BARRIER:g}")
    rem_w = ok[ok.width == widest].removed.to_numpy(dtype=float)
    rem_est = mean_ci(rem_w[np.isfinite(rem_w)]) if np.isfinite(rem_w).any() else None
    g = {"perm_table": "; ".join(f"width {w}: {r.before:.3f} → {r.after:.3f}"
                                 for w, r in pw.iterrows()),
         "perm_removed": "; ".join(f"width {w}: {r.removed:.0%}" for w, r in pw.iterrows()),
         "perm_widest": (f"{pw.after.loc[widest]:.3f} at width {widest}"
                         if widest in pw.index else f"no finished pair at width {widest}"),
         "perm_verdict": v,
         "perm_zero_verdict": vz}
    g["perm_comment"] = (
        ("" if v == REPRODUCED else
         f"With {p.perm_pairs} pair(s) per width"
         + (f", the fraction removed at the widest width is "
            f"{rem_est.fmt(scale=100, digits=0, unit='%')}" if rem_est is not None else "")
         + "; a difference between widths smaller than that interval's half-width could not "
           "be detected. ")
        + ("" if zero_ok or widest not in pw.index else
           f"The matched barrier at width {widest} is {pw.after.loc[widest]:.3f}, above "
           f"{ZERO_BARRIER:g}: whether it vanishes for wide networks needs the widths at "
           "which the papers see it vanish (hundreds to thousands of units per layer, "
           "trained to convergence on the full data set; the `paper` profile goes to "
           "2048)."))
    return (_verdict("perm", v, g["perm_table"]),
            _verdict("perm-zero", REPRODUCED if zero_ok else vz,
                     f"at width {widest}: {g['perm_table']}"), g)


def judge_perm_r1(m: Measurements, p: Params) -> tuple[Verdict, dict[str, str]]:
    """The recorded revision of the perm criterion: a test per width, Holm over widths."""
    from ..analysis.stats import holm

    ok = m.perm[np.isfinite(m.perm.before) & np.isfinite(m.perm.after)]
    counts = {w: int((ok.width == w).sum()) for w in p.perm_widths}
    few = {w: n for w, n in counts.items() if n < MIN_PAIRS}
    why = premise_failure([Premise(
        f"at every width, at least {MIN_PAIRS} pairs finished without divergence", not few,
        ", ".join(f"{n} at width {w}" for w, n in few.items()))])
    raw = {w: paired_p_greater(ok[ok.width == w].before.to_numpy(),
                               ok[ok.width == w].after.to_numpy()) for w in p.perm_widths}
    adj = holm({str(w): v for w, v in raw.items()}, ALPHA)
    lo, hi = p.perm_widths[0], p.perm_widths[-1]
    rem = {w: ok[ok.width == w].removed.to_numpy(dtype=float) for w in (lo, hi)}
    p_wide = welch_p_greater(rem[hi][np.isfinite(rem[hi])], rem[lo][np.isfinite(rem[lo])])
    detect = {w: detectable_paired((ok[ok.width == w].before - ok[ok.width == w].after)
                                   .to_numpy(), alpha=ALPHA) for w in p.perm_widths}
    lower_all = all(np.isfinite(adj[str(w)]) and adj[str(w)] <= ALPHA for w in p.perm_widths)
    more_wide = bool(np.isfinite(p_wide) and p_wide <= ALPHA)
    v = why or (REPRODUCED if lower_all and more_wide else
                PARTLY if lower_all or more_wide else NOT_REPRODUCED)
    numbers = ("; ".join(f"width {w}: p = {raw[w]:.3g}, Holm-adjusted {adj[str(w)]:.3g}, "
                         f"detectable drop {detect[w]:.3f}" for w in p.perm_widths)
               + f"; fraction removed at width {hi} above width {lo}: Welch p = {p_wide:.3g}")
    g = {"perm_r1_verdict": v, "perm_r1_numbers": numbers,
         "perm_revision_reason": REVISIONS[0].reason,
         "perm_revision_statistic": REVISIONS[0].revised.statistic}
    return _verdict("perm-r1", v, numbers), g


def _detectable(n: int, sd: float, two_sided: bool) -> float:
    """How far from the bound's reference a true mean must lie for the Student t bound at
    ``ALPHA`` (two-sided: the interval at 1 − ALPHA) to exclude it with probability 0.8,
    from ``n`` values of SD ``sd`` (NaN with fewer than two)."""
    from scipy.stats import t

    if n < 2:
        return float("nan")
    q = 1 - ALPHA / 2 if two_sided else 1 - ALPHA
    return float((t.ppf(q, n - 1) + t.ppf(0.8, n - 1)) * sd / np.sqrt(n))


def judge_perm_zero_r1(m: Measurements, p: Params) -> tuple[Verdict, dict[str, str]]:
    """Revision perm-zero-r1: the matched barrier at the widest width against the
    threshold, with a barrier to remove as the premise."""
    from ..analysis.stats import mean_ci

    widest = p.perm_widths[-1]
    d = m.perm[(m.perm.width == widest) & np.isfinite(m.perm.before)
               & np.isfinite(m.perm.after)]
    b0, b1 = d.before.to_numpy(dtype=float), d.after.to_numpy(dtype=float)
    n = len(b1)
    why = premise_failure([
        Premise(f"at least {MIN_ZERO_PAIRS} finished pairs at width {widest}",
                n >= MIN_ZERO_PAIRS, f"{n} of {p.perm_pairs}"),
        Premise(f"a mean unmatched barrier of at least {2 * ZERO_BARRIER:g} at width {widest}",
                n > 0 and b0.mean() >= 2 * ZERO_BARRIER,
                f"{b0.mean():.3f}" if n else "no finished pair")])
    # the two one-sided 95% bounds are the ends of the two-sided 90% interval
    est = mean_ci(b1, level=1 - 2 * ALPHA)
    reach = ZERO_BARRIER - _detectable(n, SD_MATCHED, two_sided=False)
    if why:
        v = why
    elif est.high < ZERO_BARRIER:
        v = REPRODUCED
    elif est.low >= ZERO_BARRIER:
        v = NOT_REPRODUCED
    else:
        v = premise_failure([sd_premise("the matched barrier", b1, SD_MATCHED, scale=1,
                                        unit="", digits=3)]) or NOT_REPRODUCED
    power = (f"the upper bound falls below {ZERO_BARRIER:g} with 80% probability when the "
             f"mean matched barrier is {reach:.3f} or less" if reach > 0 else
             f"no mean matched barrier gives the upper bound an 80% chance of falling below "
             f"{ZERO_BARRIER:g}" if np.isfinite(reach) else "")
    numbers = (f"width {widest}, {n} pair{'s' if n != 1 else ''}: "
               + (f"unmatched barrier {b0.mean():.3f}, matched {b1.mean():.3f} ("
                  + (f"one-sided 95% bounds {est.low:.3f} and {est.high:.3f}" if n > 1 else
                     "no bound from one pair") + f", threshold {ZERO_BARRIER:g})"
                  if n else "no finished pair")
               + (f"; {power} (SD across pairs {SD_MATCHED:g}, assumed)" if power else ""))
    return (_verdict("perm-zero-r1", v, numbers),
            {"perm_zero_r1_numbers": numbers, "perm_zero_r1_verdict": v})


def judge_opt_r1(m: Measurements, p: Params) -> tuple[Verdict, dict[str, str]]:
    """Revision opt-r1: one difference of mean barriers per initialization, the
    initializations as the replicates."""
    from ..analysis.stats import mean_ci

    sol, pairs = m.solutions, m.pairs
    order = [k for k in OPTIMIZERS if k in set(sol.optimizer)]
    worst = sol.groupby("optimizer")["training loss"].max().loc[order]
    above = worst[~(worst < TARGET_LOSS)]
    n_div = int(sol.diverged.sum())
    per = []
    for s, g in pairs[np.isfinite(pairs.barrier.astype(float))].groupby("seed"):
        cross = g[g.kind == "different optimizers"].barrier.astype(float)
        same = g[g.kind.str.startswith("same")].barrier.astype(float)
        if len(cross) and len(same):
            per.append((s, float(cross.mean()), float(same.mean())))
    dd = np.array([c - w for _, c, w in per])
    why = premise_failure([
        Premise(f"every solution reached a training loss below {TARGET_LOSS:g} and none "
                "diverged", len(above) == 0 and n_div == 0,
                "largest: " + ", ".join(f"{k} {x:.3f}" for k, x in above.items())
                + (f"; {n_div} diverged" if n_div else "")),
        Premise(f"at least {MIN_OPT_SEEDS} initializations with barriers of both kinds",
                len(per) >= MIN_OPT_SEEDS, f"{len(per)}")])
    est = mean_ci(dd, level=1 - ALPHA)
    det = _detectable(len(dd), SD_OPT, two_sided=True)
    if why:
        v = why
    elif est.low > 0:
        v = REPRODUCED
    elif est.high < 0:
        v = NOT_REPRODUCED
    else:
        v = premise_failure([sd_premise("D", dd, SD_OPT, scale=1, unit="",
                                        digits=3)]) or NOT_REPRODUCED
    numbers = ("; ".join(f"initialization {s}: different optimizers {c:.3f}, same optimizer "
                         f"{w:.3f}" for s, c, w in per) or "no initialization with both kinds")
    if len(dd):
        numbers += (f"; mean D {est.fmt(digits=3)} over {len(dd)} initialization"
                    + ("s" if len(dd) != 1 else ""))
    if np.isfinite(det):
        numbers += (f"; the interval excludes zero with 80% probability when the mean D is "
                    f"{det:.3f} or more (SD across initializations {SD_OPT:g}, assumed)")
    return _verdict("opt-r1", v, numbers), {"opt_r1_numbers": numbers, "opt_r1_verdict": v}


def judge_saddle(m: Measurements, p: Params) -> tuple[Verdict, Verdict, dict[str, str]]:
    sad = m.saddle
    last_step = max(p.saddle_steps)
    div = sad[sad.diverged]
    neg = sad["λ_min"] < -NEG_TOL * sad["λ_max"]
    near = sad[(sad.step < last_step) & (sad["‖∇C‖² / initial"] < GRAD_FRAC) & neg]
    last = sad[sad.step == last_step]
    div_text = ", ".join(f"{r.arm} at step {r.step}" for r in div.itertuples()) + " diverged"
    why_pass = premise_failure([Premise("no examined run diverged", not len(div), div_text)])
    last_div = last[last.diverged]
    why_end = premise_failure([Premise(
        "no run at the last step diverged", not len(last_div),
        ", ".join(last_div.arm) + " diverged"), Premise("a run at the last step",
                                                         len(last) > 0, "none")])
    last_neg = bool(len(last)) and bool((last["λ_min"] < -NEG_TOL * last["λ_max"]).all())
    v_pass = why_pass or (REPRODUCED if len(near) else NOT_REPRODUCED)
    v_end = why_end or (REPRODUCED if last_neg else NOT_REPRODUCED)
    g = {"saddle_end": "; ".join(f"{r.arm}: λ_min = {r['λ_min']:.3g}, λ_max = "
                                 f"{r['λ_max']:.3g}, mass below −{NEG_TOL:g}·λ_max "
                                 f"{r['negative mass']:.3f}" for _, r in last.iterrows()),
         "saddle_end_eigs": "; ".join(f"{r.arm}: λ_min = {r['λ_min']:.3g}, λ_max = "
                                      f"{r['λ_max']:.3g}" for _, r in last.iterrows()),
         "saddle_near": "; ".join(f"{r.arm} at step {r.step}" for _, r in near.iterrows())
         or "no step before the last with both",
         "saddle_pass_verdict": v_pass, "saddle_end_verdict": v_end}
    g["saddle_comment"] = (
        f"Negative curvature smaller than {NEG_TOL:g} × λ_max (at the last step: "
        + ", ".join(f"{r.arm} {NEG_TOL * r['λ_max']:.2g}" for _, r in last.iterrows())
        + f") is not counted, and the estimates ({p.eig_iters} power-iteration steps, "
        f"{p.slq_steps} Lanczos steps) approach λ_min from above, so negative curvature "
        "smaller than that, lost in the bulk of eigenvalues near zero, would go unseen. "
        + ("" if len(near) else
           f"No examined step before the last had a squared gradient norm below "
           f"{GRAD_FRAC:g} of its initial value together with negative curvature: the test "
           f"looks only at the steps {list(p.saddle_steps)}, so a saddle passed between "
           "them goes unseen."))
    return (_verdict("saddle-pass", v_pass, g["saddle_near"]),
            _verdict("saddle-end", v_end, g["saddle_end"]), g)


def judge(m: Measurements, p: Params) -> Analysis:
    """Verdicts and glue values from the measurements (premises first: a failed one
    gives "not assessable: <premise, with its numbers>")."""
    glue: dict[str, Any] = {}
    verdicts: dict[str, Verdict] = {}
    for fn in (judge_clr, judge_opt, judge_opt_r1, judge_perm, judge_perm_r1,
               judge_perm_zero_r1, judge_saddle):
        *vs, g = fn(m, p)
        glue.update(g)
        verdicts.update({v.claim: v for v in vs})
    glue.update({"lc_criteria_hash": registered_hash(), "lc_registered": REGISTERED,
                 "lc_jump_factor": f"{JUMP_FACTOR:g}", "lc_reconverge": f"{RECONVERGE:g}",
                 "lc_match_factor": f"{MATCH_FACTOR:g}", "lc_target_loss": f"{TARGET_LOSS:g}",
                 "lc_zero_barrier": f"{ZERO_BARRIER:g}", "lc_neg_tol": f"{NEG_TOL:g}",
                 "lc_grad_frac": f"{GRAD_FRAC:g}"})
    return Analysis(m, verdicts, glue)


def analyze(runs: Mapping[Arm, Any], p: Params) -> Analysis:
    return judge(measure(runs, p), p)


# ------------------------------------------------------------------ figures
def fig_clr(a: Analysis, p: Params):
    """Training loss and sharpness under the cyclical rate; dotted: jumps."""
    import matplotlib.pyplot as plt

    m, c = a.m, a.m.clr_curves
    clr = clr_config(p)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for i, arm in enumerate(dict.fromkeys(c.arm) if len(c) else []):
        lo = c[(c.arm == arm) & (c.metric == "loss")]
        sh = c[(c.arm == arm) & (c.metric == "sharpness")]
        axes[0].plot(lo.step, lo.value, color=f"C{i}", label=arm)
        axes[1].plot(sh.step, sh.value, color=f"C{i}", label=arm)
        j = m.jumps[(m.jumps.arm == arm) & m.jumps["jump step"].notna()]
        for s in j["jump step"]:
            axes[0].axvline(s, color=f"C{i}", lw=0.8, ls=":")
    steps_all = np.arange(clr.steps + 1)
    eps_curve = [clr.lr_at(s) for s in steps_all]
    ax2 = axes[0].twinx()
    ax2.plot(steps_all, eps_curve, color="0.6", lw=1)
    ax2.set(ylabel="learning rate ε")
    axes[0].set(yscale="log", xlabel="step", ylabel="training loss",
                title="Training loss (dotted: jumps)")
    axes[0].legend(fontsize="small")
    axes[1].plot(steps_all[1:], [2 / e for e in eps_curve[1:]], "k--", lw=1, label="2/ε")
    axes[1].set(yscale="log", xlabel="step", ylabel="sharpness λ", title="Sharpness; dashed: 2/ε")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    return fig


def fig_opt(a: Analysis, p: Params):
    """Solutions' sharpness against test accuracy; barriers by kind of pair."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    sns.scatterplot(a.m.solutions, x="sharpness", y="test accuracy", hue="optimizer",
                    style="order", s=70, ax=axes[0])
    axes[0].set(title="Solutions: sharpness vs test accuracy")
    sns.stripplot(a.m.pairs, x="kind", y="barrier", ax=axes[1], size=7)
    axes[1].set(title="Training-loss barrier on the straight line", xlabel="")
    fig.tight_layout()
    return fig


def opt_tables(a: Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    sol = a.m.solutions
    order = [k for k in OPTIMIZERS if k in set(sol.optimizer)]
    means = (sol.groupby("optimizer")[["training loss", "sharpness", "test accuracy"]]
             .mean().loc[order].round(3))
    return means, a.m.pairs.pivot_table(index="a", columns="b", values="barrier").round(3)


def fig_perm(a: Analysis, p: Params):
    """Loss along the line between two networks per width, before and after matching;
    barrier against width."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    if len(a.m.perm_paths):
        sns.lineplot(a.m.perm_paths, x="t", y="loss", hue="width", style="", ax=axes[0],
                     palette="viridis")
    axes[0].set(title="Training loss between two networks", ylabel="training loss")
    pm = a.m.perm.melt(id_vars=["width", "pair"], value_vars=["before", "after"], var_name="",
                       value_name="barrier")
    sns.lineplot(pm, x="width", y="barrier", hue="", marker="o", ax=axes[1])
    axes[1].set(xscale="log", title="Barrier vs width")
    fig.tight_layout()
    return fig


def perm_table(a: Analysis) -> pd.DataFrame:
    return a.m.perm.groupby("width")[["before", "after", "removed"]].mean().round(3)


def fig_saddle(a: Analysis, p: Params):
    """Negative curvature, negative spectral mass and gradient norm at each examined
    step."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sad = a.m.saddle
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    sns.lineplot(sad, x="step", y="|λ_min| / λ_max", hue="arm", marker="o", ax=axes[0])
    axes[0].axhline(NEG_TOL, color="k", ls=":", lw=1)
    axes[0].set(xscale="log", title="Negative curvature relative to λ_max; dotted: 0.01")
    sns.lineplot(sad, x="step", y="negative mass", hue="arm", marker="o", ax=axes[1],
                 legend=False)
    axes[1].set(xscale="log", title=f"Spectral mass below −{NEG_TOL:g}·λ_max")
    sns.lineplot(sad, x="step", y="‖∇C‖² / initial", hue="arm", marker="o", ax=axes[2],
                 legend=False)
    axes[2].axhline(GRAD_FRAC, color="k", ls=":", lw=1)
    axes[2].set(xscale="log", yscale="log",
                title=f"Squared gradient norm / initial; dotted: {GRAD_FRAC:g}")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the chapter protocol
def summary(a: Analysis, p: Params) -> dict[str, str]:
    """The verdict of each claim and revision with its numbers (a column of
    :func:`~implicitreg.chapters.result_sets.side_by_side`)."""
    return verdict_summary(a)


def scale_description(p: Params) -> str:
    """What the runs were, for the sentence on the scale."""
    n = "all" if p.n_train is None else f"{p.n_train:,}"
    return (f"MLPs with hidden widths {list(p.widths)} on {n} {p.dataset} training "
            f"images: {p.clr_cycles} learning-rate cycle(s) of {p.clr_cycle:,} steps, "
            f"{len(p.opt_lrs)} optimizers × {len(p.opt_seeds)} initialization(s) for "
            f"{p.opt_steps:,} steps, {p.perm_pairs} pair(s) of networks at each of "
            f"{len(p.perm_widths)} width(s), the Hessian at {len(p.saddle_steps)} step(s).")


def figures(a: Analysis, runs: Mapping[Arm, Any], p: Params) -> dict[str, Any]:
    """The chapter's figures, each drawn when called."""
    return {"clr": lambda: fig_clr(a, p), "opt": lambda: fig_opt(a, p),
            "perm": lambda: fig_perm(a, p), "saddle": lambda: fig_saddle(a, p)}


__all__ = ["Params", "profile", "Arm", "design", "run", "CRITERIA", "REVISIONS",
           "STATISTIC_GLUE", "VERDICT_GLUE", "registered_hash", "revisions_hash",
           "criteria_table", "Measurements", "measure", "judge", "analyze", "Analysis",
           "summary", "scale_description", "figures",
           "fig_clr", "fig_opt", "fig_perm", "fig_saddle", "opt_tables", "perm_table"]
