"""The backward-error-analysis chapter as a module: its parameters, what it computes,
its registered criteria and its figures.

Barrett & Dherin (2021) and Smith et al. (2021) state that GD and SGD follow, to a
higher order in ε than the gradient flow of C, the flows of modified losses. The chapter
checks the orders numerically, on problems small enough that an accurate ODE solver is
cheap (:func:`compute`, with :mod:`implicitreg.analysis.flows`), and reads the variance
term that separates the two modified losses along real CIFAR-10 runs (:func:`design`).
The notebook ``notebooks/backward_error.ipynb`` is prose around the functions here:

- :class:`Params`, whose named instances are the profiles of
  ``notebooks/profiles/backward_error.yaml``;
- :func:`compute`: the error of the discrete iterates against each flow, per step size;
- :func:`design`: the labelled :class:`~implicitreg.engine.config.RunConfig` of the real
  runs;
- :func:`run`: both, as :class:`Runs` (the chapter protocol, :mod:`.protocol`);
- :func:`analyze`: slopes, verdicts and the values the prose glues;
- :func:`summary`, :func:`scale_description`, :func:`figures`: what the result sets and
  the book read of it;
- :data:`CRITERIA`: the claims' criteria, registered before the runs;
- :func:`fig_gd_errors`, :func:`fig_trajectory`, :func:`fig_sgd_errors`,
  :func:`fig_cloud`, :func:`fig_variance`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from .base import ChapterParams
from .protocol import verdict_summary
from .criteria import (NOT_REPRODUCED, REPRODUCED, Criterion, Premise, Verdict, combine,
                       premise_failure, register)

CHAPTER = "backward_error"


# ------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Params(ChapterParams):
    """The values the chapter runs with; every profile gives all of them."""
    T: float
    """Time horizon of the GD comparison (n steps of size T/n)."""
    gd_steps: tuple[int, ...]
    """Numbers of GD steps n over time T (step size T/n)."""
    sgd_eps: tuple[float, ...]
    """SGD step sizes ε of the one-epoch comparisons."""
    fit_points: int
    """Slopes are fitted on this many smallest step sizes."""
    m: int
    """Minibatches per epoch in section 2 (m! orders are averaged exactly)."""
    m_replacement: int
    """Minibatches in section 3 (m^m sequences averaged exactly)."""
    max_orders: int
    """Above this many orders (or sequences), a random sample of them is used."""
    mlp_hidden: int
    """Hidden units of the small MLP problem."""
    mlp_dim: int
    """Input dimension of the small MLP problem."""
    mlp_batch: int
    """Examples per minibatch of the MLP problem."""
    traj_eps: float
    """A large step for the 2-D trajectory picture."""
    traj_T: float
    """Time horizon of the 2-D trajectory picture."""
    traj_start: tuple[float, ...]
    """Starting point (a, b) of the 2-D trajectory picture."""
    cloud_eps: float
    """Step of the SGD endpoint cloud."""
    rtol: float
    """ODE solver relative tolerance (DOP853)."""
    atol: float
    """ODE solver absolute tolerance (DOP853)."""
    seed: int
    """Seed of the small problems."""
    run_n_train: int
    """CIFAR-10 training examples of the real runs (the SGD-vs-GD chapter's)."""
    run_widths: tuple[int, ...]
    """Hidden widths of the real runs' MLP."""
    run_batch_size: int
    """SGD batch size of the real runs."""
    run_lr: float
    """Learning rate of the real runs."""
    run_steps: int
    """Steps of the real runs."""
    run_eval_every: int
    """Steps between evaluations of the real runs."""
    run_seeds: tuple[int, ...]
    """Seeds of the real runs."""

    CHAPTER: ClassVar[str] = CHAPTER

    def __post_init__(self) -> None:
        self._tuples("gd_steps", "sgd_eps", "traj_start", "run_widths", "run_seeds")
        self._positive_ints("fit_points", "m", "m_replacement", "max_orders",
                             "mlp_hidden", "mlp_dim", "mlp_batch",
                             "run_n_train", "run_batch_size", "run_steps",
                             "run_eval_every")
        if not self.gd_steps or any(n < 1 for n in self.gd_steps):
            raise ValueError(f"Params.gd_steps = {self.gd_steps!r}: step counts >= 1")
        if not self.sgd_eps or any(not (e > 0) for e in self.sgd_eps):
            raise ValueError(f"Params.sgd_eps = {self.sgd_eps!r}: step sizes > 0")
        if len(self.traj_start) != 2:
            raise ValueError(f"Params.traj_start = {self.traj_start!r}: a point (a, b)")
        if not (self.T > 0 and self.traj_T > 0 and self.rtol > 0 and self.atol > 0):
            raise ValueError("Params.T, traj_T, rtol and atol must be > 0")


# The named profile's values plus overrides (see :meth:`ChapterParams.profile`).
profile = Params.profile


# ------------------------------------------------------------------ criteria
REGISTERED = "2026-11-25"
TOLERANCE = 0.3
MIN_POINTS = 3
FLOOR_FACTOR = 10

FLOW_NAMES = {"plain": "flow of C", "gd": "flow of C̃_GD", "sgd": "flow of C̃_SGD"}
SECTIONS = {"gd": "GD, time T", "shuffle": "SGD epoch, shuffled",
            "replace": "SGD epoch, with replacement"}
# The order p of each error O(ε^p), section by section and flow by flow.
PREDICTED = {("gd", "plain"): 1, ("gd", "gd"): 2,
             ("shuffle", "plain"): 2, ("shuffle", "gd"): 2, ("shuffle", "sgd"): 3,
             ("replace", "plain"): 2, ("replace", "gd"): 3, ("replace", "sgd"): 2}

_STATISTIC = ("least-squares slope of log error against log ε over the `fit_points` "
              "smallest step sizes, where the error is the Euclidean distance between {what}")
_PREMISES = (f"at least {MIN_POINTS} fitted step sizes, every iterate finite",
             f"every fitted error is at least {FLOOR_FACTOR} times the solver's tolerance "
             "there (rtol·‖θ_flow‖ + atol), so that the slope measures the method, not "
             "the solver")
_EXACT = ("the mean is over every order of the epoch ({count} ≤ max_orders), not a "
          "random sample whose noise would hide the effect")
_AGGREGATE = ("per (problem, flow) case; reproduced when every assessable case is, partly "
              "when some are, not reproduced when none is")

CRITERIA = (
    Criterion(
        claim="gd",
        statement="GD with step ε, run for a fixed time T = nε, stays within O(ε²) of the "
                  "flow of C + (ε/4)‖∇C‖², but only within O(ε) of the flow of C.",
        statistic=_STATISTIC.format(what="GD after n = T/ε steps and the flow at time T"),
        threshold=f"|fitted slope − predicted order| < {TOLERANCE:g} for each problem "
                  "(two-parameter model, MLP) and flow (predicted: 1 against the flow of "
                  "C, 2 against that of C̃_GD)",
        premises=_PREMISES, aggregate=_AGGREGATE, registered=REGISTERED),
    Criterion(
        claim="sgd",
        statement="Averaged over the orders of an epoch, SGD with random reshuffling over "
                  "m minibatches follows the flow of C + (ε/4m)Σ‖∇Ĉ_k‖² to O(ε³), the "
                  "flows of C and of C̃_GD only to O(ε²).",
        statistic=_STATISTIC.format(what="the mean endpoint of one epoch over the orders "
                                         "and the flow at time mε"),
        threshold=f"|fitted slope − predicted order| < {TOLERANCE:g} for each problem and "
                  "flow (predicted: 2, 2, 3 against the flows of C, C̃_GD, C̃_SGD)",
        premises=_PREMISES + (_EXACT.format(count="m!"),),
        aggregate=_AGGREGATE, registered=REGISTERED),
    Criterion(
        claim="replace",
        statement="With minibatches drawn with replacement the mean iterate follows the "
                  "flow of C̃_GD instead.",
        statistic=_STATISTIC.format(what="the mean endpoint of m steps over every "
                                         "sequence of minibatches and the flow at time mε"),
        threshold=f"|fitted slope − predicted order| < {TOLERANCE:g} for each problem and "
                  "flow (predicted: 2, 3, 2 against the flows of C, C̃_GD, C̃_SGD)",
        premises=_PREMISES + (_EXACT.format(count="m^m"),),
        aggregate=_AGGREGATE, registered=REGISTERED),
)
REVISIONS: tuple = ()


# Fingerprints of the criteria (as registered; the revisions apart) and their table.
registered_hash, revisions_hash, criteria_table = register(CRITERIA, REVISIONS, CHAPTER)

# The glue keys of each criterion's statistic and verdict, for the claims ledger: a row
# there quotes only the numbers its verdict was computed from.
_SECTION = {"gd": "gd", "sgd": "shuffle", "replace": "replace"}
STATISTIC_GLUE = {c.claim: tuple(f"slope_{_SECTION[c.claim]}_{flow}_{problem}"
                                 for problem in ("mlp", "two")
                                 for section, flow in PREDICTED if section == _SECTION[c.claim])
                  for c in CRITERIA}
VERDICT_GLUE = {c.claim: f"verdict_{c.claim}" for c in CRITERIA}


# ------------------------------------------------------------------ computation
def make_problems(p: Params, m: int) -> dict[str, Any]:
    from ..analysis import flows as F

    return {"two-parameter": F.two_parameter_problem(m=m, seed=p.seed),
            "MLP": F.mlp_problem(n=m * p.mlp_batch, dim=p.mlp_dim, hidden=p.mlp_hidden,
                                 m=m, seed=p.seed)}


@dataclass
class Computed:
    """What :func:`compute` measures on the small problems."""
    errors: pd.DataFrame
    """One row per (section, problem, ε, flow): error, scale (‖θ_flow‖), orders (how
    many orders or sequences were averaged) and exact (whether that is all of them)."""
    trajectory: dict[str, np.ndarray] = field(default_factory=dict)
    """Section 1's picture: GD's path, the two flows and the loss on a grid."""
    cloud: dict[str, Any] = field(default_factory=dict)
    """Section 2's picture: endpoints of one epoch under every order, and the flows'."""


def _solve(F: Any, p: Params, f: Any, th0: Any, t: float, **kw: Any) -> np.ndarray:
    return F.solve_flow(f, th0, t, rtol=p.rtol, atol=p.atol, **kw)


def _row(section: str, pname: str, eps: float, kind: str, got: np.ndarray,
         ref: np.ndarray, orders: int = 1, exact: bool = True) -> dict[str, Any]:
    return {"section": section, "problem": pname, "eps": eps, "flow": kind,
            "error": float(np.linalg.norm(got - ref)), "scale": float(np.linalg.norm(ref)),
            "orders": orders, "exact": exact}


def gd_errors(p: Params, problems: Mapping[str, Any]) -> list[dict[str, Any]]:
    from ..analysis import flows as F

    rows = []
    for pname, P in problems.items():
        for n in p.gd_steps:
            e = p.T / n
            th = F.gd(P, e, n).numpy()
            for kind in ("plain", "gd"):
                rows.append(_row("gd", pname, e, kind, th,
                                 _solve(F, p, F.field(P, kind, e), P.theta0, p.T)))
    return rows


def sgd_errors(p: Params, problems: Mapping[str, Any], replacement: bool
               ) -> list[dict[str, Any]]:
    from ..analysis import flows as F

    rows = []
    for pname, P in problems.items():
        orders = F.all_orders(P.m, p.max_orders, seed=p.seed, replacement=replacement)
        total = P.m ** P.m if replacement else math.factorial(P.m)
        for e in p.sgd_eps:
            mean = F.sgd_epochs(P, e, orders).mean(0).numpy()
            for kind in ("plain", "gd", "sgd"):
                ref = _solve(F, p, F.field(P, kind, e), P.theta0, P.m * e)
                rows.append(_row("replace" if replacement else "shuffle", pname, e, kind,
                                 mean, ref, len(orders), len(orders) == total))
    return rows


def trajectory(p: Params, problems: Mapping[str, Any]) -> dict[str, np.ndarray]:
    import torch

    from ..analysis import flows as F

    P = problems["two-parameter"]
    th0 = torch.tensor(p.traj_start, dtype=torch.float64)
    P2 = F.Problem(P.loss, th0, P.x, P.y, P.m, P.name)
    path = F.gd(P2, p.traj_eps, round(p.traj_T / p.traj_eps), record=True).numpy()
    ts = np.linspace(0, p.traj_T, 300)
    plain = _solve(F, p, F.field(P2, "plain", p.traj_eps), th0, p.traj_T, t_eval=ts)
    modif = _solve(F, p, F.field(P2, "gd", p.traj_eps), th0, p.traj_T, t_eval=ts)
    pts = np.concatenate([path, plain, modif])
    lo, hi = pts.min(0) - 0.15, pts.max(0) + 0.15
    a, b = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    with torch.no_grad():
        th = torch.tensor(np.stack([a.ravel(), b.ravel()], 1))
        cz = torch.stack([P.loss(t, P.x, P.y) for t in th]).numpy().reshape(a.shape)
    return {"path": path, "plain": plain, "modified": modif, "a": a, "b": b, "loss": cz,
            "lo": lo, "hi": hi}


def cloud(p: Params, problems: Mapping[str, Any]) -> dict[str, Any]:
    from ..analysis import flows as F

    P = problems["two-parameter"]
    orders = F.all_orders(P.m, p.max_orders, seed=p.seed)
    ends = F.sgd_epochs(P, p.cloud_eps, orders).numpy()
    flows = {k: _solve(F, p, F.field(P, k, p.cloud_eps), P.theta0, P.m * p.cloud_eps)
             for k in FLOW_NAMES}
    return {"endpoints": ends, "mean": ends.mean(0), "flows": flows, "m": P.m}


def compute(p: Params, pictures: bool = True) -> Computed:
    """Every error of sections 1–3 (and, with ``pictures``, the data of the trajectory
    and cloud figures). Float64 throughout; the mean over orders is exact where the
    orders are few enough (see :func:`implicitreg.analysis.flows.all_orders`)."""
    problems = make_problems(p, p.m)
    rows = gd_errors(p, problems) + sgd_errors(p, problems, replacement=False)
    rows += sgd_errors(p, make_problems(p, p.m_replacement), replacement=True)
    c = Computed(pd.DataFrame(rows))
    if pictures:
        c.trajectory = trajectory(p, problems)
        c.cloud = cloud(p, problems)
    return c


# ------------------------------------------------------------------ real runs
def base_config(p: Params):
    from ..engine.config import RunConfig

    # The SGD-vs-GD chapter's configuration, so that its stored runs are reused.
    return RunConfig(dataset="cifar10", n_train=p.run_n_train, n_test=2000, model="mlp",
                     widths=tuple(p.run_widths), batch_size=p.run_batch_size, lr=p.run_lr,
                     steps=p.run_steps, eval_every=p.run_eval_every, progress=False)


def design(p: Params) -> list[tuple[tuple[str, int], Any]]:
    """SGD and GD at every seed of ``run_seeds``, labelled (arm, seed)."""
    base = base_config(p)
    return [((arm, s), base.replace(method=meth, seed=s))
            for arm, meth in [("SGD", "sgd"), ("GD", "gd")] for s in p.run_seeds]


@dataclass
class Runs:
    """Everything the chapter measures: the small problems solved exactly and the real
    runs of :func:`design`."""
    computed: Computed
    training: dict[tuple[str, int], Any] = field(default_factory=dict)
    """(arm, seed) → result of the real runs."""

    def all(self) -> list[tuple[tuple[str, int], Any]]:
        return list(self.training.items())


def run(p: Params, **options: Any) -> Runs:
    """:func:`compute`, then every run of :func:`design`, loaded from the run store or
    trained (``options``: those of :func:`~implicitreg.runs.sweeps.run_labeled`)."""
    from ..runs.sweeps import run_labeled

    computed = compute(p)
    return Runs(computed, dict(run_labeled(design(p), **options)))


def variance_curves(runs: Mapping[tuple[str, int], Any], p: Params) -> pd.DataFrame:
    """(ε/4m)Σ‖∇Ĉ_k − ∇C‖², the difference C̃_SGD − C̃_GD, along each run."""
    from ..analysis.tables import tidy

    var = tidy([(arm, r) for (arm, _), r in runs.items()], "grad_variance", "eval")
    if len(var):
        var["value"] = var["value"] * p.run_lr / 4
    return var


# ------------------------------------------------------------------ analysis
@dataclass
class Analysis:
    errors: pd.DataFrame
    slopes: pd.DataFrame
    """One row per (section, problem, flow): predicted and fitted slope, its standard
    error, the premises' numbers and the case verdict."""
    verdicts: dict[str, Verdict]
    variance: pd.DataFrame = field(default_factory=pd.DataFrame)
    glue: dict[str, Any] = field(default_factory=dict)

    def slope(self, section: str, problem: str, flow: str) -> Any:
        return self.slopes.set_index(["section", "problem", "flow"]).loc[(section, problem, flow)]


def _fit_case(g: pd.DataFrame, p: Params, section: str, predicted: int) -> dict[str, Any]:
    from ..analysis.stats import loglog_slope

    fitted = g.sort_values("eps").head(p.fit_points)
    floor = FLOOR_FACTOR * (p.rtol * fitted["scale"] + p.atol)
    finite = np.isfinite(fitted["error"]).all() and np.isfinite(fitted["scale"]).all()
    low = fitted[fitted["error"] < floor]
    premises = [
        Premise(f"at least {MIN_POINTS} fitted step sizes, every iterate finite",
                finite and len(fitted) >= MIN_POINTS,
                f"{len(fitted)} fitted" + ("" if finite else ", some not finite")),
        Premise(f"every fitted error at least {FLOOR_FACTOR}× the solver's tolerance",
                len(low) == 0,
                ", ".join(f"ε = {r.eps:g}: error {r.error:.2g} < {f:.2g}"
                          for r, f in zip(low.itertuples(), floor[low.index])))]
    if section != "gd":
        total = "m^m" if section == "replace" else "m!"
        exact = bool(g["exact"].all())
        premises.append(Premise(f"the mean is over every order ({total} ≤ max_orders)",
                                exact, f"{int(g['orders'].min())} sampled orders"))
    row: dict[str, Any] = {"predicted slope": predicted, "fitted slope": float("nan"),
                           "std. error": float("nan"), "fitted ε": len(fitted),
                           "smallest fitted error": float(fitted["error"].min())
                           if len(fitted) else float("nan")}
    why = premise_failure(premises)
    if why is None:
        s = loglog_slope(fitted["eps"].to_numpy(), fitted["error"].to_numpy())
        row.update({"fitted slope": s.slope, "std. error": s.stderr})
        ok = abs(s.slope - predicted) < TOLERANCE
        row[f"within {TOLERANCE:g}"] = ok
        row["verdict"] = REPRODUCED if ok else NOT_REPRODUCED
    else:
        row[f"within {TOLERANCE:g}"] = False
        row["verdict"] = why
    return row


def slopes_table(errors: pd.DataFrame, p: Params) -> pd.DataFrame:
    rows = []
    for (section, kind), predicted in PREDICTED.items():
        d = errors[(errors["section"] == section) & (errors["flow"] == kind)]
        for pname, g in d.groupby("problem", sort=False):
            rows.append({"section": section, "experiment": SECTIONS[section],
                         "problem": pname, "flow": kind, "compared with": FLOW_NAMES[kind],
                         **_fit_case(g, p, section, predicted)})
    return pd.DataFrame(rows)


def _key(pname: str) -> str:
    return "mlp" if pname == "MLP" else "two"


def _case_text(r: Mapping[str, Any]) -> str:
    head = f"{r['problem']}, {r['compared with']}"
    if r["verdict"].startswith("not assessable"):
        return f"{head}: {r['verdict']}"
    return (f"{head}: slope {r['fitted slope']:.2f} ± {r['std. error']:.3f} "
            f"(predicted {r['predicted slope']})")


def variance_comparison(var: pd.DataFrame) -> dict[str, str]:
    """The last measured variance term per arm, mean over seeds, and how they compare;
    a descriptive reading, not a registered claim."""
    from ..analysis.tables import arm_estimates, not_assessable

    if not len(var):
        return {"var_sgd": "(no run)", "var_gd": "(no run)",
                "var_compare": "not comparable: no run", "var_comment": ""}
    # The last value of each run; a diverged run is counted as such, not averaged.
    last_rows = (var[np.isfinite(var.value)].sort_values("step").groupby(["arm", "seed"])
                 .agg(value=("value", "last"), diverged=("diverged", "first")).reset_index())
    last = arm_estimates(last_rows, ["SGD", "GD"])
    es, eg = last["SGD"], last["GD"]
    why = not_assessable(last)
    compare = (f"not comparable: {why}" if why else
               "higher on SGD's trajectory than on GD's" if es.low > eg.high else
               "lower on SGD's trajectory than on GD's" if es.high < eg.low else
               "not distinguishable between the two trajectories at this number of seeds")
    comment = ("" if why else
               "SGD implicitly penalizes this term, yet its trajectory ends with more of "
               "it. The penalty acts on a loss that also contains C; a method that fits the "
               "training set faster lowers every minibatch gradient along with the full "
               "one, and the variance term with them, so a lower value is not by itself "
               "evidence of a stronger penalty." if es.low > eg.high else
               "This is the direction the implicit penalty predicts." if es.high < eg.low
               else "More seeds or longer runs would be needed to separate them.")
    return {"var_sgd": es.fmt(1, 4), "var_gd": eg.fmt(1, 4), "var_compare": compare,
            "var_comment": comment}


def analyze(runs: Runs, p: Params) -> Analysis:
    """Slopes, verdicts and glue values from :func:`compute`'s errors and the real runs
    (anything with ``curve(metric, split)``, ``config.seed`` and ``summary``)."""
    errors = runs.computed.errors
    slopes = slopes_table(errors, p)
    verdicts = {}
    for c in CRITERIA:
        d = slopes[slopes["section"] == ("shuffle" if c.claim == "sgd" else c.claim)]
        cases = {f"{r['problem']}, {r['compared with']}": r["verdict"]
                 for r in d.to_dict("records")}
        verdicts[c.claim] = Verdict(c.claim, combine(cases.values()),
                                    "; ".join(_case_text(r) for r in d.to_dict("records")),
                                    cases)
    var = variance_curves(dict(runs.training), p)
    a = Analysis(errors, slopes, verdicts, var)
    g: dict[str, Any] = {}
    for r in slopes.to_dict("records"):
        g[f"slope_{r['section']}_{r['flow']}_{_key(r['problem'])}"] = (
            f"{r['fitted slope']:.2f} ± {r['std. error']:.3f}"
            if not r["verdict"].startswith("not assessable") else r["verdict"])
    g["verdict_gd"] = verdicts["gd"].verdict
    g["verdict_sgd"] = verdicts["sgd"].verdict
    g["verdict_replace"] = verdicts["replace"].verdict
    g["verdict_gd_numbers"] = verdicts["gd"].detail
    g["verdict_sgd_numbers"] = verdicts["sgd"].detail
    g["verdict_replace_numbers"] = verdicts["replace"].detail
    for section, key in (("shuffle", "n_orders"), ("replace", "n_sequences")):
        d = errors[errors["section"] == section]
        g[key] = int(d["orders"].max()) if len(d) else 0
    g.update(variance_comparison(var))
    g["be_criteria_hash"] = registered_hash()
    g["be_registered"] = REGISTERED
    a.glue = g
    return a


# ------------------------------------------------------------------ figures
def fig_gd_errors(a: Analysis, p: Params):
    """Error of GD at time T against the flows of C and C̃_GD, per problem."""
    return _fig_errors(a, "gd", "‖θ_GD(T/ε) − θ_flow(T)‖", f"GD, T = {p.T:g}")


def fig_sgd_errors(a: Analysis, p: Params, section: str = "shuffle"):
    """Error of the mean endpoint of one epoch against the three flows, per problem."""
    return _fig_errors(a, section, "‖mean endpoint − θ_flow(mε)‖",
                       "SGD, one epoch" if section == "shuffle" else "With replacement")


def _fig_errors(a: Analysis, section: str, ylabel: str, title: str):
    import matplotlib.pyplot as plt

    e = a.errors[a.errors["section"] == section]
    s = a.slopes[a.slopes["section"] == section].set_index(["problem", "flow"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (pname, g) in zip(axes, e.groupby("problem", sort=False)):
        for kind, gg in g.groupby("flow"):
            r = s.loc[(pname, kind)]
            lab = (f"slope {r['fitted slope']:.2f} ± {r['std. error']:.2f}"
                   if np.isfinite(r["fitted slope"]) else "not assessable")
            ax.loglog(gg.eps, gg.error, "o-", label=f"{FLOW_NAMES[kind]}: {lab}")
        orders = "" if section == "gd" else f" ({int(g.orders.iloc[0])} orders)"
        ax.set(xlabel="step size ε", ylabel=ylabel, title=f"{title}, {pname}{orders}")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def fig_trajectory(c: Computed, p: Params):
    """GD at a large step, the flow of C and the flow of C̃_GD on the two-parameter
    model's loss; the right panel zooms on the end points."""
    import matplotlib.pyplot as plt

    t = c.trajectory
    path, plain, modif = t["path"], t["plain"], t["modified"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, zoom in zip(axes, [False, True]):
        ax.contour(t["a"], t["b"], np.log10(t["loss"] + 1e-4), levels=25, cmap="Greys",
                   linewidths=0.6)
        ax.plot(plain[:, 0], plain[:, 1], "-", lw=2, label="gradient flow of C")
        ax.plot(modif[:, 0], modif[:, 1], "--", lw=2, label="flow of C̃_GD")
        ax.plot(path[:, 0], path[:, 1], "o", ms=4, label=f"GD, ε = {p.traj_eps:g}")
        ax.set(xlabel="a", ylabel="b")
        if zoom:
            ends = np.stack([path[-1], plain[-1], modif[-1]])
            mid, r = ends.mean(0), max(np.ptp(ends, 0).max(), 1e-3)
            ax.set(xlim=(mid[0] - 1.5 * r, mid[0] + 1.5 * r),
                   ylim=(mid[1] - 1.5 * r, mid[1] + 1.5 * r),
                   title=f"Zoom on the end points (time T = {p.traj_T:g})")
        else:
            ax.set(xlim=(t["lo"][0], t["hi"][0]), ylim=(t["lo"][1], t["hi"][1]),
                   title="GD, gradient flow and modified flow")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def fig_cloud(c: Computed, p: Params):
    """Endpoints of one epoch under every order, their mean and the three flows' end
    points (two-parameter model)."""
    import matplotlib.pyplot as plt

    cl = c.cloud
    fig, ax = plt.subplots(figsize=(6, 5))
    ends = cl["endpoints"]
    ax.scatter(ends[:, 0], ends[:, 1], s=6, alpha=0.4, color="0.5",
               label=f"SGD endpoints ({len(ends)} orders)")
    ax.plot(*cl["mean"], "k*", ms=14, label="mean endpoint")
    for (k, v), mk in zip(cl["flows"].items(), ["o", "s", "D"]):
        ax.plot(*v, mk, ms=9, mfc="none", mew=2, label=FLOW_NAMES[k])
    ax.set(xlabel="a", ylabel="b", title=f"One SGD epoch, ε = {p.cloud_eps:g}, m = {cl['m']}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def cloud_distances(c: Computed) -> pd.DataFrame:
    cl = c.cloud
    return pd.Series({FLOW_NAMES[k]: float(np.linalg.norm(cl["mean"] - v))
                      for k, v in cl["flows"].items()},
                     name="distance from the mean endpoint").to_frame()


def fig_variance(a: Analysis, p: Params):
    """C̃_SGD − C̃_GD along the real SGD and GD runs (mean over seeds, 95% band)."""
    import matplotlib.pyplot as plt

    from ..analysis.plots import band_plot

    fig, ax = plt.subplots(figsize=(7, 4))
    if len(a.variance):
        band_plot(a.variance, "step", "value", "arm", ax=ax, log=True)
    ax.set(xlabel="update (step)", ylabel="(ε/4m) Σ‖∇Ĉ_k − ∇C‖²",
           title="C̃_SGD − C̃_GD along SGD and GD trajectories")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the chapter protocol
# The summary (a column of :func:`~implicitreg.chapters.result_sets.side_by_side`) is the
# verdict of each claim with its fitted slopes.
summary = verdict_summary


def scale_description(p: Params) -> str:
    """What the computations and runs were, for the sentence on the scale."""
    return (f"GD over time T = {p.T:g} at {len(p.gd_steps)} step counts and one SGD epoch "
            f"of {p.m} minibatches at {len(p.sgd_eps)} step sizes, on a two-parameter "
            f"problem and an MLP with {p.mlp_hidden} hidden units; {len(p.run_seeds)} "
            f"seed(s) of SGD and GD on {p.run_n_train:,} CIFAR-10 images for "
            f"{p.run_steps:,} steps.")


def figures(a: Analysis, runs: Runs, p: Params) -> dict[str, Any]:
    """The chapter's figures, each drawn when called."""
    return {"gd_errors": lambda: fig_gd_errors(a, p),
            "trajectory": lambda: fig_trajectory(runs.computed, p),
            "sgd_errors": lambda: fig_sgd_errors(a, p, "shuffle"),
            "cloud": lambda: fig_cloud(runs.computed, p),
            "sgd_errors_replacement": lambda: fig_sgd_errors(a, p, "replace"),
            "variance": lambda: fig_variance(a, p)}


__all__ = ["Params", "profile", "CRITERIA", "REVISIONS", "STATISTIC_GLUE", "VERDICT_GLUE",
           "registered_hash", "criteria_table", "PREDICTED", "Computed", "compute",
           "design", "Runs", "run", "Analysis", "analyze", "summary",
           "scale_description", "figures", "fig_gd_errors", "fig_sgd_errors",
           "fig_trajectory", "fig_cloud", "fig_variance", "cloud_distances"]
