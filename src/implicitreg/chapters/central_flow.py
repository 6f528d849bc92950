"""The central-flow chapter as a module: its parameters, the trajectories it computes,
what it measures on them, its registered criteria and its figure.

At the edge of stability GD no longer follows any flow of a loss: its sharpness would
pass 2/ε along such a flow, and GD instead oscillates along the top Hessian eigenvectors
while the sharpness hovers at 2/ε. Cohen, Damian, Talwalkar, Kolter & Lee (2024) describe
the time average of that motion by the *central flow*
(:mod:`implicitreg.analysis.central_flow`),

    dw/dt = −ε [∇L(w) + ½ ∇⟨Σ(t), H(w)⟩]     (t in GD steps),

where Σ is the covariance of the oscillations, fixed at each instant by asking that the
critical eigenvalues stay at 2/ε, and they predict GD's time-averaged loss to be
L(w) + ½⟨Σ, H(w)⟩. This chapter puts GD, the gradient flow of L, the modified flow of
L + (ε/4)‖∇L‖² and the central flow side by side from one initialization, on the edge of
stability chapter's problem (fc-tanh, square loss, CIFAR-10 at 8×8), and asks whether
the central flow describes GD where the modified flow cannot.

None of the four trajectories is a run of the engine: all are computed on one flat
float64 :class:`~implicitreg.analysis.flows.Problem` so that they start from the same
weights and their distances mean something. :func:`run` caches what each case measured
(not the weights) under ``<run store>/flows/``, so that a re-plot does not recompute and
a committed result set re-reads without training. The notebook
``notebooks/central_flow.ipynb`` is prose around the functions here:

- :class:`Params`, whose named instances are the profiles of
  ``notebooks/profiles/central_flow.yaml``;
- :func:`design` and :func:`run`: the cases (ε, seed), computed or loaded (the chapter
  protocol, :mod:`.protocol`; :func:`run_counts` and :func:`case_table` stand for the
  engine runs' counts and table in the book's execution report);
- :func:`analyze`: the measurements, verdicts and glue values; :func:`summary`,
  :func:`scale_description` and :func:`figures`;
- :data:`CRITERIA`: the claims' criteria;
- :func:`fig_flows`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .base import ChapterParams
from .protocol import RunSet, verdict_glue, verdict_summary
from .criteria import (NOT_ASSESSABLE, NOT_REPRODUCED, REPRODUCED, Criterion, Premise,
                       Verdict, combine, not_assessable, premise_failure, register)

CHAPTER = "central_flow"


# ------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Params(ChapterParams):
    """The values the chapter runs with; every profile gives all of them."""
    n_train: int
    """CIFAR-10 training images (a class-stratified subset); GD is full batch."""
    downsample: int
    """Average-pool the 32×32 images by this factor (4: 8×8, the input of the edge of
    stability chapter's ci profile)."""
    widths: tuple[int, ...]
    """Hidden widths of the fc-tanh network (the edge of stability chapter: 200, 200)."""
    eps: tuple[float, ...]
    """GD step sizes ε, each a case of its own."""
    seeds: tuple[int, ...]
    """Initializations: every ε is run from each (the intervals of claims 1 and 3 are
    over these)."""
    steps: int
    """GD steps; the flows run for the same time, ε·steps."""
    every: int
    """Weights, sharpness and distances are recorded every this many steps (GD's loss at
    every step); divides ``steps``."""
    avg_window: int
    """GD's time-averaged loss at step k is its mean over the ``avg_window`` steps centred
    on k (an even number, so that period-2 oscillations cancel)."""
    substeps: int
    """Euler substeps per GD step of the central flow (the authors use 4)."""
    n_eigs: int
    """Top Hessian eigenpairs tracked from the start, by the central flow and by the
    sharpness measurements (more are tracked once all of them are critical)."""
    eig_tol: float
    """Relative residual ‖Hu − λu‖/|λ| at which an eigensolve stops."""
    rtol: float
    """Relative tolerance of the adaptive ODE solver (DOP853) of the gradient flow and
    the modified flow."""
    atol: float
    """Absolute tolerance of that solver."""

    CHAPTER: ClassVar[str] = CHAPTER

    def __post_init__(self) -> None:
        self._tuples("widths", "eps", "seeds")
        self._positive_ints("n_train", "downsample", "steps", "every", "avg_window",
                            "substeps", "n_eigs")
        if 32 % self.downsample:
            raise ValueError(f"Params.downsample = {self.downsample!r}: a divisor of 32 "
                             "(CIFAR-10 images are 32×32)")
        if not 10 <= self.n_train <= 50_000:
            raise ValueError(f"Params.n_train = {self.n_train!r}: between 10 (one image "
                             "per class) and 50,000 (the training set)")
        if not self.widths or any(not (isinstance(w, int) and w >= 1) for w in self.widths):
            raise ValueError(f"Params.widths = {self.widths!r}: one or more integers >= 1")
        if not self.eps or any(not (e > 0) for e in self.eps) or len(set(self.eps)) < len(self.eps):
            raise ValueError(f"Params.eps = {self.eps!r}: distinct step sizes > 0")
        if (not self.seeds or any(not isinstance(s, int) for s in self.seeds)
                or len(set(self.seeds)) < len(self.seeds)):
            raise ValueError(f"Params.seeds = {self.seeds!r}: distinct integers")
        if self.steps % self.every:
            raise ValueError(f"Params.every = {self.every!r}: must divide steps = "
                             f"{self.steps} (the last step is recorded like the others)")
        if self.avg_window % 2 or not 2 <= self.avg_window <= self.steps // 2:
            raise ValueError(f"Params.avg_window = {self.avg_window!r}: an even number of "
                             f"steps between 2 and steps/2 = {self.steps // 2}")
        if not 0 < self.eig_tol < 1:
            raise ValueError(f"Params.eig_tol = {self.eig_tol!r}: in (0, 1)")
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"Params.rtol = {self.rtol!r}, atol = {self.atol!r}: both > 0")

    @property
    def side(self) -> int:
        return 32 // self.downsample


# The named profile's values plus overrides (see :meth:`ChapterParams.profile`).
profile = Params.profile


# ------------------------------------------------------------------ design
@dataclass(frozen=True, order=True)
class Case:
    """One initialization at one step size: GD and the three flows from its weights."""
    eps: float
    seed: int

    @property
    def label(self) -> str:
        return f"ε = {self.eps:g}, seed {self.seed}"


COMPUTE_VERSION = 1
"""Bumped by hand when a change of the computation changes its numbers: cached cases of
an earlier version are then recomputed, not loaded."""

SERIES_EVERY_STEP = ("gd_loss", "cf_loss", "cf_predicted", "cf_sharpness", "cf_trace",
                     "cf_critical")
SERIES_RECORDED = ("rec", "gd_sharpness", "gf_loss", "gf_sharpness", "mf_loss",
                   "mf_sharpness", "dist_cf", "dist_mf", "dist_gf", "travelled")


def spec(p: Params, case: Case) -> dict[str, Any]:
    """What determines a case's numbers (the fields of its cache key): the problem, the
    case, and the integration and recording settings; ``avg_window`` is analysis only."""
    return {"chapter": CHAPTER, "version": COMPUTE_VERSION, "dataset": "cifar10",
            "n_train": p.n_train, "side": p.side, "widths": list(p.widths),
            "activation": "tanh", "loss": "mse", "eps": case.eps, "seed": case.seed,
            "steps": p.steps, "every": p.every, "substeps": p.substeps,
            "n_eigs": p.n_eigs, "eig_tol": p.eig_tol, "rtol": p.rtol, "atol": p.atol}


def design(p: Params) -> list[tuple[Case, dict[str, Any]]]:
    """The chapter's cases, every ε from every seed, each with its :func:`spec`."""
    return [(Case(e, s), spec(p, Case(e, s))) for e in p.eps for s in p.seeds]


def case_key(case_spec: Mapping[str, Any], data_source: str) -> str:
    """The cache key: same key, same numbers."""
    blob = json.dumps({**case_spec, "data_source": data_source}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# ------------------------------------------------------------------ one case
@dataclass
class CaseResult:
    """What one case measured. ``series`` holds, at every GD step (index = step):
    ``gd_loss``, and the central flow's ``cf_loss`` (L(w)), ``cf_predicted``
    (L + ½⟨Σ, H⟩), ``cf_sharpness``, ``cf_trace`` (tr Σ) and ``cf_critical`` (number of
    critical directions); at the recorded steps ``rec``: ``gd_sharpness``, ``gf_loss``,
    ``gf_sharpness``, ``mf_loss``, ``mf_sharpness``, the distances from GD's weights
    ``dist_cf``, ``dist_mf``, ``dist_gf``, and ``travelled`` (GD's distance from its
    initialization). Missing values are NaN. ``status`` says per trajectory (``gd``,
    ``cf``, ``gf``, ``mf``) what went wrong ("" when nothing)."""
    case: Case
    series: dict[str, np.ndarray]
    status: dict[str, str]
    provenance: dict[str, Any] = field(default_factory=dict)
    cached: bool = False

    def __getitem__(self, name: str) -> np.ndarray:
        return self.series[name]


DIVERGED_LOSS = 1e6


def _top(prob: Any, theta: Any, n: int, u0: Any, tol: float) -> tuple[float, Any]:
    from ..analysis import central_flow as CF

    cur = CF.Curvature(prob, theta)
    vals, u = CF.top_eigenpairs(cur.hvp, theta.numel(), n, v0=u0, tol=tol)
    return float(vals[0]), u


def gd_record(prob: Any, eps: float, steps: int, every: int, n_eigs: int, tol: float,
              progress: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
    """Full-batch GD θ ← θ − ε∇L(θ) from ``prob.theta0``: the loss at every step, the
    sharpness and the weights every ``every`` steps. Stops where the loss stops being
    finite or exceeds :data:`DIVERGED_LOSS`. Returns (series, weights, why it stopped)."""
    from torch.func import grad_and_value
    from tqdm import tqdm

    step = grad_and_value(prob.loss)
    th = prob.theta0.detach().clone()
    loss = np.full(steps + 1, np.nan)
    n_rec = steps // every + 1
    sharp = np.full(n_rec, np.nan)
    weights = np.full((n_rec, th.numel()), np.nan)
    u, why = None, ""
    for k in tqdm(range(steps + 1), desc=f"GD, ε = {eps:g}", leave=False,
                  disable=None if progress else True):
        g, value = step(th, prob.x, prob.y)
        loss[k] = float(value)
        if not math.isfinite(loss[k]) or loss[k] > DIVERGED_LOSS:
            why = f"GD diverged at step {k} (loss {loss[k]:.3g})"
            break
        if k % every == 0:
            sharp[k // every], u = _top(prob, th, n_eigs, u, tol)
            weights[k // every] = th.numpy()
        th = (th - eps * g).detach()
    return {"gd_loss": loss, "gd_sharpness": sharp}, weights, why


def _sharpness_along(prob: Any, thetas: np.ndarray, n: int, tol: float) -> np.ndarray:
    import torch

    out, u = np.full(len(thetas), np.nan), None
    for i, th in enumerate(thetas):
        out[i], u = _top(prob, torch.from_numpy(np.ascontiguousarray(th)), n, u, tol)
    return out


def _losses(prob: Any, thetas: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.array([float(prob.loss(torch.from_numpy(np.ascontiguousarray(th)),
                                         prob.x, prob.y)) for th in thetas])


def compute_case(p: Params, case: Case, progress: bool = False) -> CaseResult:
    """GD, the central flow, the gradient flow and the modified flow of one case, and
    the measurements of :class:`CaseResult`; the weights are dropped after the distances
    are taken."""
    import torch

    threads = torch.get_num_threads()
    # A case is one long chain of small tensor operations: a second thread shortens none
    # of them and spins while it waits, the more so when another process holds the other
    # core (the ci chapter took 12-13 s with one thread, 180-210 s with two beside a busy
    # core).
    torch.set_num_threads(1)
    try:
        return _compute_case(p, case, progress)
    finally:
        torch.set_num_threads(threads)


def _compute_case(p: Params, case: Case, progress: bool) -> CaseResult:
    import warnings

    import torch

    from ..analysis import central_flow as CF
    from ..analysis import stability as S

    t_start = time.time()
    prob = S.cifar_mlp_problem(n=p.n_train, side=p.side, widths=p.widths, seed=case.seed,
                               loss="mse")
    rec = np.arange(0, p.steps + 1, p.every)
    nan_steps, nan_rec = np.full(p.steps + 1, np.nan), np.full(len(rec), np.nan)
    series: dict[str, np.ndarray] = {k: nan_steps.copy() for k in SERIES_EVERY_STEP}
    series.update({k: nan_rec.copy() for k in SERIES_RECORDED})
    series["rec"] = rec.astype(float)
    status = {"gd": "", "cf": "", "gf": "", "mf": ""}
    seconds: dict[str, float] = {}

    t0 = time.process_time()
    gd, gd_w, status["gd"] = gd_record(prob, case.eps, p.steps, p.every, p.n_eigs,
                                       p.eig_tol, progress)
    series.update(gd)
    seconds["GD"] = time.process_time() - t0
    # Distances are taken against GD's weights, so they exist only while GD does; each is
    # the Euclidean norm ‖θ_GD(k) − θ(k)‖ at the same recorded step k (time εk).
    gd_ok = ~np.isnan(gd_w[:, 0])
    series["travelled"] = np.where(gd_ok, np.linalg.norm(gd_w - gd_w[0], axis=1), np.nan)

    t0 = time.process_time()
    extra: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            # More tracked eigenpairs is recorded below, not warned about.
            warnings.simplefilter("ignore", UserWarning)
            cf = CF.central_flow(prob, case.eps, p.steps, substeps=p.substeps,
                                 n_eigs=p.n_eigs, every=p.every, eig_tol=p.eig_tol,
                                 progress=progress)
        series.update(cf_loss=cf.loss, cf_predicted=cf.predicted_loss,
                      cf_sharpness=cf.sharpness, cf_trace=cf.trace_sigma,
                      cf_critical=cf.n_critical.astype(float))
        series["dist_cf"] = np.where(gd_ok, np.linalg.norm(gd_w - cf.theta, axis=1), np.nan)
        extra = {"cf_tracked": int(cf.eigs.shape[1]), "cf_hvp": int(cf.n_hvp),
                 "cf_third": int(cf.n_d3)}
    except CF.NoCentralFlow as err:
        status["cf"] = f"the central flow stopped existing ({err})"
    seconds["central flow"] = time.process_time() - t0

    for kind, key, name in (("plain", "gf", "gradient flow"), ("gd", "mf", "modified flow")):
        t0 = time.process_time()
        try:
            path = S.flow_path(prob, kind, case.eps, rec * case.eps, rtol=p.rtol,
                               atol=p.atol)
            series[f"{key}_loss"] = _losses(prob, path.theta)
            series[f"{key}_sharpness"] = _sharpness_along(prob, path.theta, p.n_eigs,
                                                          p.eig_tol)
            series[f"dist_{key}"] = np.where(gd_ok, np.linalg.norm(gd_w - path.theta, axis=1),
                                             np.nan)
        except RuntimeError as err:
            status[key] = f"the {name} solver failed ({err})"
        seconds[name] = time.process_time() - t0

    import importlib.metadata as md

    prov = {"chapter": CHAPTER, "case": {"eps": case.eps, "seed": case.seed},
            "cpu_seconds": {k: round(v, 3) for k, v in seconds.items()},
            "wall_time_s": round(time.time() - t_start, 3),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "implicitreg": _version(md), "problem": prob.name, "dim": int(prob.theta0.numel()),
            **extra}
    return CaseResult(case, series, status, prov)


def _version(md: Any) -> str:
    try:
        return md.version("implicitreg")
    except md.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------ the cache
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_case(folder: Path, key: str, r: CaseResult) -> CaseResult:
    """Write atomically: a temporary folder renamed into place, its file's sha256 in
    ``provenance.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    np.savez(tmp / "series.npz", **{k: np.asarray(v, dtype=float) for k, v in r.series.items()})
    prov = {**r.provenance, "key": key, "status": r.status,
            "files": {"series.npz": _sha(tmp / "series.npz")}}
    (tmp / "provenance.json").write_text(json.dumps(prov, indent=1, sort_keys=True,
                                                    ensure_ascii=False))
    final = folder / key
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    r.provenance = prov
    return r


def load_case(folder: Path, key: str, case: Case) -> CaseResult | None:
    """The cached case, or None when absent or when its file fails its checksum."""
    import warnings

    d = folder / key
    if not (d / "provenance.json").is_file():
        return None
    try:
        prov = json.loads((d / "provenance.json").read_text())
        if _sha(d / "series.npz") != prov["files"]["series.npz"]:
            raise ValueError("series.npz fails its sha256 checksum")
        with np.load(d / "series.npz") as z:
            series = {k: z[k] for k in z.files}
    except Exception as exc:
        warnings.warn(f"cached case {key} in {folder} is damaged ({exc}); it will be "
                      "recomputed", RuntimeWarning, stacklevel=2)
        return None
    return CaseResult(case, series, dict(prov.get("status", {})), prov, cached=True)


def _past_deadline(exec_config: Any) -> bool:
    """Whether ``exec_config.deadline`` (a Unix time; None: none) has passed."""
    return exec_config.deadline is not None and time.time() > exec_config.deadline


def _deadline_reached(done: int, total: int, folder: Path) -> Exception:
    """The engine's :class:`~implicitreg.engine.training.DeadlineReached` for a run that
    stops before its next case: how many cases are done (cached under ``folder``) and how
    many are left."""
    from ..engine.training import DeadlineReached

    return DeadlineReached(f"{CHAPTER}: deadline reached with {done} of {total} case(s) "
                           f"done (cached in {folder}) and {total - done} left; rerun to "
                           "resume")


def _compute_and_save(p: Params, case: Case, key: str, folder: str,
                      exec_config: Any) -> tuple[Case, str | None]:
    """In a worker process: one case computed and cached (the engine's data settings
    handed over first, as a worker of :func:`~implicitreg.runs.sweeps.run_many` does);
    its key, or None when ``exec_config.deadline`` had passed before it started."""
    if _past_deadline(exec_config):
        return case, None
    exec_config.apply()
    save_case(Path(folder), key, compute_case(p, case))
    return case, key


def run(p: Params, store: str | os.PathLike | None = None, progress: bool = True,
        exec_config: Any = None, **settings: Any) -> RunSet:
    """Every case of :func:`design`, loaded from ``<store>/flows/`` or computed and
    cached there, by :class:`Case` (the chapter protocol's ``run``; ``store``: the run
    store of ``exec_config``, else the project's). ``exec_config`` is the entry point's
    :class:`~implicitreg.runs.execution.ExecConfig` (a library call given none gets the
    shell's, see :func:`~implicitreg.runs.execution.resolve`); keyword ``settings``
    override single fields of it, as in :func:`~implicitreg.runs.sweeps.run_many`. With
    ``no_train`` a missing case is an error, as a missing run is; with ``workers`` > 1
    the missing cases are computed in that many local processes. Past
    ``exec_config.deadline`` (a Unix time) no further case is started: the run stops with
    :class:`~implicitreg.engine.training.DeadlineReached`, the cases done so far cached
    for the next call."""
    import concurrent.futures as cf
    import multiprocessing as mp

    from ..engine.data import resolve_source
    from ..runs.execution import resolve
    from ..runs.runner import MissingRunError
    from ..runs.store import RunStore, default_store_root

    ex = resolve(exec_config).replace(**{k: v for k, v in settings.items() if v is not None})
    ex.apply()  # the data settings decide which source (and so which key) a case has
    root = Path(store) if store is not None else (ex.store_path() or default_store_root())
    folder = root / "flows"
    source = resolve_source("cifar10")
    keyed = [(case, case_key(s, source)) for case, s in design(p)]
    out: dict[Case, CaseResult] = {}
    todo = []
    for case, key in keyed:
        hit = load_case(folder, key, case)
        if hit is not None:
            out[case] = hit
        else:
            todo.append((case, key))
    if todo and ex.no_train:
        raise MissingRunError(
            f"{len(todo)} case(s) of {CHAPTER} are not in {folder} and computing is "
            f"switched off (ExecConfig.no_train, IMPLICITREG_NO_TRAIN=1); the first is "
            f"{todo[0][0].label}")
    if todo and _past_deadline(ex):
        raise _deadline_reached(len(out), len(keyed), folder)
    lock_store = RunStore(folder)
    if ex.workers > 1 and len(todo) > 1:
        # fork after torch has started threads is unsafe
        with cf.ProcessPoolExecutor(min(ex.workers, len(todo)),
                                    mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_compute_and_save, p, case, key, str(folder), ex)
                       for case, key in todo]
            for fut in cf.as_completed(futures):
                case, key = fut.result()
                if key is None:  # not started: the deadline had passed
                    continue
                r = load_case(folder, key, case)
                r.cached = False
                out[case] = r
        if len(out) < len(keyed):
            raise _deadline_reached(len(out), len(keyed), folder)
    else:
        for case, key in todo:
            with lock_store.lock(key):
                # Another process may have finished it while this one waited.
                hit = load_case(folder, key, case)
                if hit is None and _past_deadline(ex):
                    raise _deadline_reached(len(out), len(keyed), folder)
                out[case] = hit if hit is not None else save_case(
                    folder, key, compute_case(p, case, progress and ex.progress))
    return RunSet((case, out[case]) for case, _ in keyed)


def run_counts(results: Mapping[Case, CaseResult]) -> dict[str, Any]:
    """What the book's execution report reads from every chapter, for cases rather than
    engine runs: ``exec_runs`` (cases), ``exec_runs_loaded`` (of them, loaded from the
    cache) and ``exec_runs_made`` (when they were computed, from their provenance)."""
    from .registry import run_interval

    interval = run_interval(list(results.values()))
    return {"exec_runs": len(results),
            "exec_runs_loaded": sum(bool(r.cached) for r in results.values()),
            "exec_runs_made": " / ".join(interval) if interval else ""}


def case_table(results: Mapping[Case, CaseResult]) -> pd.DataFrame:
    """One row per case, for the book's table of a chapter's runs (the CSV beside the
    page that the execution report links): its cache key, label, whether it was loaded,
    what it was computed with, what went wrong per trajectory and what it cost."""
    rows = []
    for case, r in results.items():
        prov = r.provenance or {}
        row = {"run": prov.get("key", ""), "label": case.label,
               "loaded from the store": bool(r.cached), "ε": case.eps, "seed": case.seed,
               "problem": prov.get("problem", ""), "dimension": prov.get("dim"),
               "created": prov.get("created", ""), "wall time (s)": prov.get("wall_time_s")}
        row.update({f"status {k}": v for k, v in (r.status or {}).items()})
        row.update({f"CPU seconds, {k}": v
                    for k, v in (prov.get("cpu_seconds") or {}).items()})
        row["final GD loss"] = _last(r.series["gd_loss"])
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ criteria
BAND = 0.10
"""Claim 2: GD's mean sharpness must lie within ±10% of 2/ε (the band the edge of
stability chapter registered for its plateau)."""
TIME_TOL = 0.10
"""Claim 2: the central flow's first critical step must lie within 10% of GD's first
crossing of 2/ε, plus the recording interval."""
START_BELOW = 0.9
MIN_PHASE = 5
MIN_SEEDS = 2
ALPHA = 0.05
RATIO_MAX = 1.0

_EOS = ("GD reached the edge of stability and stabilized there: its sharpness crossed "
        "2/ε (first recorded crossing s*) and later fell for the first time (τ_S: the first "
        "recorded step after s* with a lower sharpness than the recorded step before, "
        "GD's oscillation pulling the sharpness back), leaving at least "
        f"{MIN_PHASE} recorded steps of the EoS phase [τ_S, end] at which GD's averaging "
        "window fits")
_DIV = "GD did not diverge"
_PHASE_DEF = ("the EoS phase: the recorded steps k ≥ τ_S at which the averaging window "
              "[k − avg_window/2, k + avg_window/2) lies within the run")
_INTERVAL = (f"mean over the assessable seeds and its one-sided {1 - ALPHA:.0%} upper "
             "confidence bound (Student t)")
_PER_EPS = ("per ε; reproduced when every assessable ε reproduces it; partly when some "
            "do; not reproduced when none does")

CRITERIA = (
    Criterion(
        claim="loss",
        statement="Along the central flow, L(w) + ½⟨Σ, H(w)⟩ predicts GD's time-averaged "
                  "loss at the edge of stability better than the loss along the modified "
                  "flow of L + (ε/4)‖∇L‖² does.",
        statistic=f"per seed, over {_PHASE_DEF}: L̄(k) = GD's loss averaged over that "
                  "window; e_CF = mean over k of |L_CF(k) + ½⟨Σ, H⟩(k) − L̄(k)| / L̄(k) and "
                  "e_MF = mean over k of |L(θ_MF(k)) − L̄(k)| / L̄(k), with the modified flow "
                  "at the same time εk; q = e_CF / e_MF; " + _INTERVAL + " of q",
        threshold=f"upper bound of the mean q < {RATIO_MAX:g}",
        premises=(_DIV, _EOS, "the central flow and the modified flow completed the run",
                  f"at least {MIN_SEEDS} seeds at that ε for which the premises above hold"),
        alpha=ALPHA, aggregate=_PER_EPS, registered=""),
    Criterion(
        claim="sharpness",
        statement="While the central flow has a critical direction, GD's time-averaged "
                  "sharpness sits at 2/ε, and the central flow's first critical point "
                  "comes when GD's sharpness first reaches 2/ε.",
        statistic="per seed: (i) the mean of GD's sharpness / (2/ε) over the recorded "
                  "steps of the EoS phase (as in claim 1) at which the central flow has "
                  "Σ ≠ 0; (ii) τ_CF = the first step at which the central flow has Σ ≠ 0 "
                  "(a direction at 2/ε), against s* = GD's first recorded step with "
                  "sharpness ≥ 2/ε",
        threshold=f"|mean − 1| ≤ {BAND:g} and |τ_CF − s*| ≤ {TIME_TOL:g}·s* + every "
                  "(the recording interval); a central flow without a critical direction "
                  "in the EoS phase fails (i)",
        premises=(_DIV, f"GD starts below the edge: sharpness at step 0 below "
                  f"{START_BELOW:g}·2/ε", _EOS, "the central flow completed the run"),
        aggregate="per (ε, seed); reproduced when every assessable case reproduces both "
                  "(i) and (ii); partly when some do; not reproduced when none does",
        registered=""),
    Criterion(
        claim="distance",
        statement="GD's weights stay closer to the central flow than to the modified "
                  "flow.",
        statistic="per seed: ρ = ‖θ_GD − θ_CF‖ / ‖θ_GD − θ_MF‖ at the last step (the "
                  "flows at the same time ε·steps, all from GD's initialization); "
                  + _INTERVAL + " of ρ",
        threshold=f"upper bound of the mean ρ < {RATIO_MAX:g}",
        premises=(_DIV, _EOS, "the central flow and the modified flow completed the run",
                  f"at least {MIN_SEEDS} seeds at that ε for which the premises above hold"),
        alpha=ALPHA, aggregate=_PER_EPS, registered=""),
)
REVISIONS: tuple = ()


# Fingerprints of the criteria (as registered; the revisions apart) and their table.
registered_hash, revisions_hash, criteria_table = register(CRITERIA, REVISIONS, CHAPTER)

# The glue keys of each criterion's statistic and verdict, for the claims ledger: a row
# there quotes only the numbers its verdict was computed from.
STATISTIC_GLUE = {"loss": ("cf_loss_numbers",), "sharpness": ("cf_sharpness_numbers",),
                  "distance": ("cf_distance_numbers",)}
VERDICT_GLUE = {"loss": "cf_loss_verdict", "sharpness": "cf_sharpness_verdict",
                "distance": "cf_distance_verdict"}


# ------------------------------------------------------------------ measurements
def first_at_or_above(steps: np.ndarray, values: np.ndarray, level: float,
                      after: float = -math.inf) -> float:
    """The first step after ``after`` at which ``values`` ≥ ``level`` (NaN if none)."""
    hit = np.nonzero((steps > after) & (values >= level))[0]
    return float(steps[hit[0]]) if len(hit) else float("nan")


def first_fall(steps: np.ndarray, values: np.ndarray, after: float) -> float:
    """The first step after ``after`` at which ``values`` is lower than at the step
    before (NaN if none)."""
    fell = np.nonzero((steps[1:] > after) & (values[1:] < values[:-1]))[0]
    return float(steps[fell[0] + 1]) if len(fell) else float("nan")


def window_mean(loss: np.ndarray, k: int, window: int) -> float:
    """GD's time-averaged loss at step k: the mean over the ``window`` steps
    k − window/2, ..., k + window/2 − 1 (NaN where they leave the run)."""
    lo, hi = k - window // 2, k + window // 2
    if lo < 0 or hi > len(loss):
        return float("nan")
    # A mean over an even number of steps cancels a period-2 oscillation exactly.
    return float(np.mean(loss[lo:hi]))


def measure(r: CaseResult, p: Params) -> dict[str, Any]:
    """Every statistic and premise of one case, by name (see :data:`CRITERIA`)."""
    e, s = r["rec"].astype(int), r.series
    # GD's stability threshold on the local quadratic: ε·λ = 2.
    edge = 2 / r.case.eps
    gd_sh = s["gd_sharpness"]
    steps = len(s["gd_loss"]) - 1
    every = int(e[1] - e[0]) if len(e) > 1 else steps
    s_star = first_at_or_above(e, gd_sh, edge)
    # Until GD's oscillation along the top eigenvector has grown from its tiny initial
    # size, GD keeps following the stable flows and its sharpness keeps rising past 2/ε;
    # the first fall marks the oscillation taking over (self-stabilization).
    tau_s = first_fall(e, gd_sh, s_star) if not math.isnan(s_star) else float("nan")
    avg = np.array([window_mean(s["gd_loss"], int(k), p.avg_window) for k in e])
    in_phase = (e >= tau_s) & np.isfinite(avg)  # all False while τ_S is NaN
    crit_steps = np.nonzero(s["cf_trace"] > 0)[0]
    tau_cf = float(crit_steps[0]) if len(crit_steps) else float("nan")
    cf_at_rec = s["cf_predicted"][np.clip(e, 0, steps)]
    crit_at_rec = s["cf_trace"][np.clip(e, 0, steps)] > 0
    ph = np.nonzero(in_phase)[0]

    def rel(pred: np.ndarray) -> float:
        # Relative error of a prediction of GD's time-averaged loss, averaged over the
        # EoS phase: mean_k |pred(k) − L̄(k)| / L̄(k).
        return float(np.mean(np.abs(pred[ph] - avg[ph]) / avg[ph])) if len(ph) else float("nan")

    e_cf, e_mf, e_gf = rel(cf_at_rec), rel(s["mf_loss"]), rel(s["gf_loss"])
    both = ph[crit_at_rec[ph]]
    # GD's time-averaged sharpness in units of 2/ε: the mean over the recorded steps of
    # the phase at which the central flow has a critical direction.
    sharp_mean = float(np.mean(gd_sh[both]) / edge) if len(both) else float("nan")
    last = len(e) - 1
    d_cf, d_mf, d_gf = (float(s[k][last]) for k in ("dist_cf", "dist_mf", "dist_gf"))
    # q < 1 and ρ < 1 say that the central flow is the nearer description of GD.
    q = e_cf / e_mf if e_mf > 0 else float("nan")
    rho = d_cf / d_mf if d_mf > 0 else float("nan")
    diverged = bool(r.status.get("gd"))
    s0 = float(gd_sh[0] / edge) if len(gd_sh) else float("nan")
    premises = {
        "div": Premise(_DIV, not diverged, r.status.get("gd", "")),
        "start": Premise(f"GD starts below {START_BELOW:g}·2/ε", s0 < START_BELOW,
                         f"sharpness at step 0 = {s0:.2f}·2/ε"),
        "eos": Premise("GD reached the edge of stability and stabilized there",
                       len(ph) >= MIN_PHASE,
                       _eos_numbers(s_star, tau_s, len(ph), float(np.nanmax(gd_sh) / edge)
                                    if np.isfinite(gd_sh).any() else float("nan"))),
        "cf": Premise("the central flow completed the run", not r.status.get("cf"),
                      r.status.get("cf", "")),
        "mf": Premise("the modified flow completed the run", not r.status.get("mf"),
                      r.status.get("mf", "")),
    }
    return {"ε": r.case.eps, "seed": r.case.seed, "2/ε": edge, "every": every,
            "steps": steps, "start / (2/ε)": s0, "s*": s_star, "τ_S": tau_s, "τ_CF": tau_cf,
            "EoS phase steps": len(ph),
            "phase start": float(e[ph[0]]) if len(ph) else float("nan"),
            "phase end": float(e[ph[-1]]) if len(ph) else float("nan"),
            "e_CF": e_cf, "e_MF": e_mf, "e_GF": e_gf,
            "q": q,
            "critical steps in phase": len(both), "GD sharpness / (2/ε)": sharp_mean,
            "max GD sharpness / (2/ε)": float(np.nanmax(gd_sh) / edge)
            if np.isfinite(gd_sh).any() else float("nan"),
            "dist CF": d_cf, "dist MF": d_mf, "dist GF": d_gf,
            "ρ": rho,
            "GD travelled": float(s["travelled"][last]),
            "premises": premises}


def _eos_numbers(s_star: float, tau_s: float, n: int, peak: float) -> str:
    if math.isnan(s_star):
        return f"the sharpness never reached 2/ε (largest {peak:.2f}·2/ε)"
    if math.isnan(tau_s):
        return (f"crossed 2/ε at step {int(s_star)} and its sharpness never fell after "
                f"(largest {peak:.2f}·2/ε)")
    return (f"crossed 2/ε at step {int(s_star)}, sharpness first fell at step {int(tau_s)}, "
            f"{n} recorded steps in the EoS phase (needs {MIN_PHASE})")


def one_sided_upper(values: Sequence[float], alpha: float = ALPHA) -> float:
    """Mean + t_{1−α, n−1}·SD/√n: the one-sided upper confidence bound of the mean (NaN
    below two values)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float("nan")
    # mean + t_{1−α, n−1} · s / √n
    return float(v.mean() + stats.t.ppf(1 - alpha, len(v) - 1) * v.std(ddof=1)
                 / math.sqrt(len(v)))


def _fmt(values: Iterable[float], digits: int = 2) -> str:
    return ", ".join(f"{x:.{digits}f}" for x in values)


def _ratio_rows(rows: list[dict[str, Any]], p: Params, stat: str, needs: tuple[str, ...],
                ) -> list[dict[str, Any]]:
    """Claims 1 and 3: per ε, the seeds whose premises hold, their statistic, its mean and
    upper bound, and the verdict."""
    out = []
    for e in p.eps:
        mine = [r for r in rows if r["ε"] == e]
        ok = [r for r in mine if premise_failure([r["premises"][n] for n in needs]) is None]
        failed = [(r["seed"], premise_failure([r["premises"][n] for n in needs]))
                  for r in mine if r not in ok]
        v = np.asarray([r[stat] for r in ok], dtype=float)
        row = {"ε": e, "seeds": len(ok), "values": _fmt(v), "mean": float(v.mean())
               if len(v) else float("nan"), "upper bound": one_sided_upper(v),
               "seeds left out": "; ".join(f"seed {s}: {why}" for s, why in failed)}
        if stat == "q":
            row["e_CF"] = _fmt(100 * np.asarray([r["e_CF"] for r in ok]), 1)
            row["e_MF"] = _fmt(100 * np.asarray([r["e_MF"] for r in ok]), 1)
        if len(ok) < MIN_SEEDS:
            why = (f"{len(ok)} seed(s) at ε = {e:g} with every premise holding (an interval "
                   f"over initializations needs {MIN_SEEDS})")
            if failed:
                why += "; " + "; ".join(f"seed {s}: {w.removeprefix('not assessable: ')}"
                                        for s, w in failed)
            row["verdict"] = not_assessable(why)
        else:
            row["verdict"] = REPRODUCED if row["upper bound"] < RATIO_MAX else NOT_REPRODUCED
        out.append(row)
    return out


def _sharpness_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        row = {k: r[k] for k in ("ε", "seed", "s*", "τ_CF", "τ_S", "critical steps in phase",
                                 "GD sharpness / (2/ε)")}
        # s* is known only to the recording interval, so that much is allowed on top.
        tol = TIME_TOL * r["s*"] + r["every"]
        row["tolerance"] = tol
        why = premise_failure([r["premises"][n] for n in ("div", "start", "eos", "cf")])
        band_ok = abs(r["GD sharpness / (2/ε)"] - 1) <= BAND  # False for NaN
        time_ok = abs(r["τ_CF"] - r["s*"]) <= tol
        row["within band"], row["on time"] = band_ok, time_ok
        row["verdict"] = why or (REPRODUCED if band_ok and time_ok else NOT_REPRODUCED)
        out.append(row)
    return out


# ------------------------------------------------------------------ analysis
@dataclass
class Analysis:
    cases: pd.DataFrame
    """One row per (ε, seed): every measurement of :func:`measure` (premises apart)."""
    loss: pd.DataFrame
    """Claim 1, one row per ε."""
    sharpness: pd.DataFrame
    """Claim 2, one row per (ε, seed)."""
    distance: pd.DataFrame
    """Claim 3, one row per ε."""
    curves: pd.DataFrame
    """Tidy: eps, seed, step, series, value (the figure's data)."""
    verdicts: dict[str, Verdict]
    glue: dict[str, str] = field(default_factory=dict)


def tidy(results: Mapping[Case, CaseResult], p: Params) -> pd.DataFrame:
    """The curves of the figure, one row per (case, series, step); GD's time-averaged
    loss as ``gd_avg``, sharpness in units of 2/ε as ``*_ratio``."""
    frames = []
    for case, r in results.items():
        s = r.series
        every_step = np.arange(len(s["gd_loss"]))
        rec = s["rec"].astype(int)
        avg = np.array([window_mean(s["gd_loss"], int(k), p.avg_window) for k in every_step])
        cols = {"gd_loss": (every_step, s["gd_loss"]), "gd_avg": (every_step, avg),
                "cf_predicted": (every_step, s["cf_predicted"]),
                "cf_loss": (every_step, s["cf_loss"]),
                "cf_ratio": (every_step, s["cf_sharpness"] * case.eps / 2),
                "cf_trace": (every_step, s["cf_trace"])}
        for k in ("gf_loss", "mf_loss", "dist_cf", "dist_mf", "dist_gf"):
            cols[k] = (rec, s[k])
        for k in ("gd", "gf", "mf"):
            cols[f"{k}_ratio"] = (rec, s[f"{k}_sharpness"] * case.eps / 2)
        for name, (x, y) in cols.items():
            frames.append(pd.DataFrame({"eps": case.eps, "seed": case.seed, "step": x,
                                        "series": name, "value": np.asarray(y, float)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["eps", "seed", "step", "series", "value"])


def _step(x: float) -> str:
    return "never" if math.isnan(x) else f"step {int(x)}"


def analyze(results: Mapping[Case, CaseResult] | Iterable[tuple[Case, CaseResult]],
            p: Params) -> Analysis:
    """Measurements, verdicts and glue values from the cases (anything shaped like
    :class:`CaseResult`)."""
    results = dict(results)
    rows = [measure(results[c], p) for c in sorted(results)]
    loss = pd.DataFrame(_ratio_rows(rows, p, "q", ("div", "eos", "cf", "mf")))
    distance = pd.DataFrame(_ratio_rows(rows, p, "ρ", ("div", "eos", "cf", "mf")))
    sharp = pd.DataFrame(_sharpness_rows(rows))

    def cases_of(df: pd.DataFrame, with_seed: bool = False) -> dict[str, str]:
        return {(f"ε = {r['ε']:g}, seed {r['seed']}" if with_seed else f"ε = {r['ε']:g}"):
                r["verdict"] for r in df.to_dict("records")}

    def ratio_text(r: dict[str, Any], name: str) -> str:
        head = f"ε = {r['ε']:g}"
        if r["verdict"].startswith("not assessable"):
            return f"{head}: {r['verdict']}"
        extra = (f"; e_CF {r['e_CF']}%, e_MF {r['e_MF']}% by seed" if name == "q" else "")
        return (f"{head}: {name} = {r['values']} by seed (mean {r['mean']:.2f}, one-sided "
                f"{1 - ALPHA:.0%} upper bound {r['upper bound']:.2f}{extra}) ({r['verdict']})")

    def sharp_text(r: dict[str, Any]) -> str:
        head = f"ε = {r['ε']:g}, seed {r['seed']}"
        if r["verdict"].startswith("not assessable"):
            return f"{head}: {r['verdict']}"
        return (f"{head}: GD's mean sharpness {r['GD sharpness / (2/ε)']:.3f}·2/ε over "
                f"{r['critical steps in phase']} critical recorded steps; first critical "
                f"point of the central flow at {_step(r['τ_CF'])}, GD's first crossing at "
                f"{_step(r['s*'])} (tolerance ±{r['tolerance']:.0f} steps) ({r['verdict']})")

    v_loss = combine(cases_of(loss).values())
    v_sharp = combine(cases_of(sharp, True).values())
    v_dist = combine(cases_of(distance).values())
    verdicts = {
        "loss": Verdict("loss", v_loss, "; ".join(ratio_text(r, "q") for r in
                                                  loss.to_dict("records")), cases_of(loss)),
        "sharpness": Verdict("sharpness", v_sharp, "; ".join(
            sharp_text(r) for r in sharp.to_dict("records")), cases_of(sharp, True)),
        "distance": Verdict("distance", v_dist, "; ".join(ratio_text(r, "ρ") for r in
                                                          distance.to_dict("records")),
                            cases_of(distance)),
    }
    cases = pd.DataFrame([{k: v for k, v in r.items() if k != "premises"} for r in rows])
    a = Analysis(cases, loss, sharp, distance, tidy(results, p), verdicts)
    a.glue = _glue_values(a, p, results)
    return a


def _glue_values(a: Analysis, p: Params, results: Mapping[Case, CaseResult]) -> dict[str, str]:
    g = {**verdict_glue(a.verdicts, VERDICT_GLUE, STATISTIC_GLUE),
         "cf_criteria_hash": registered_hash()}
    c = a.cases

    def per_case(fmt) -> str:
        return "; ".join(f"ε = {r['ε']:g}, seed {r['seed']}: " + fmt(r)
                         for r in c.to_dict("records")) or "(no case)"

    g["cf_start"] = per_case(lambda r: f"{r['start / (2/ε)']:.2f}·2/ε")
    g["cf_phases"] = per_case(lambda r: (
        f"GD first reached 2/ε at {_step(r['s*'])}, peaked at "
        f"{r['max GD sharpness / (2/ε)']:.2f}·2/ε, and first fell at {_step(r['τ_S'])}; "
        f"the central flow's first critical point was at {_step(r['τ_CF'])}"))
    g["cf_errors"] = per_case(lambda r: (
        f"central flow {100 * r['e_CF']:.1f}%, modified flow {100 * r['e_MF']:.1f}%, "
        f"gradient flow {100 * r['e_GF']:.1f}%" if r["EoS phase steps"] else
        "no EoS phase"))
    g["cf_distances"] = per_case(lambda r: (
        f"‖θ_GD − θ_CF‖ = {r['dist CF']:.3f}, ‖θ_GD − θ_MF‖ = {r['dist MF']:.3f}, "
        f"‖θ_GD − θ_GF‖ = {r['dist GF']:.3f}, while GD travelled {r['GD travelled']:.3f} "
        "from its initialization"))
    g["cf_flow_sharpness"] = "; ".join(
        f"ε = {case.eps:g}, seed {case.seed}: gradient flow "
        f"{_last(r['gf_sharpness']) * case.eps / 2:.2f}·2/ε, modified flow "
        f"{_last(r['mf_sharpness']) * case.eps / 2:.2f}·2/ε, central flow "
        f"{_last(r['cf_sharpness']) * case.eps / 2:.3f}·2/ε"
        for case, r in sorted(results.items())) or "(no case)"
    g["cf_correction"] = "; ".join(
        f"ε = {case.eps:g}, seed {case.seed}: ½⟨Σ, H⟩ = "
        f"{_last(r['cf_predicted'] - r['cf_loss']):.4f} on L = {_last(r['cf_loss']):.4f}, "
        f"{int(np.nanmax(r['cf_critical'])) if np.isfinite(r['cf_critical']).any() else 0} "
        "critical direction(s) at most"
        for case, r in sorted(results.items())) or "(no case)"
    cost: dict[str, float] = {}
    for r in results.values():
        for k, v in (r.provenance.get("cpu_seconds") or {}).items():
            cost[k] = cost.get(k, 0.0) + float(v)
    total = sum(cost.values())
    g["cf_cost"] = ", ".join(f"{k} {v:.1f} s" for k, v in cost.items()) or "(not recorded)"
    g["cf_cost_total"] = f"{total:.0f} s" if cost else "(not recorded)"
    # Each reason a verdict could not be given, once: a reason the claims share (too few
    # initializations at one ε for claims 1 and 3) is one premise that failed.
    reasons: list[str] = []
    for v in a.verdicts.values():
        for text in v.cases.values():
            if text.startswith(NOT_ASSESSABLE):
                why = text[len(NOT_ASSESSABLE):].lstrip(": ").strip()
                if why and why not in reasons:
                    reasons.append(why)
    g["cf_premises_failed"] = "; ".join(reasons) or "none"
    g["cf_cases"] = str(len(results))
    g["cf_loaded"] = str(sum(r.cached for r in results.values()))
    return g


def _last(x: np.ndarray) -> float:
    v = np.asarray(x, dtype=float)
    v = v[np.isfinite(v)]
    return float(v[-1]) if len(v) else float("nan")


# ------------------------------------------------------------------ figure
COLORS = {"gd": "0.55", "gd_avg": "k", "cf": "C0", "mf": "C1", "gf": "C2"}


def fig_flows(a: Analysis, p: Params, seed: int | None = None):
    """For each ε (one row; the first seed unless ``seed``): GD's loss, raw and
    time-averaged, with the three flows' predictions; the sharpness in units of 2/ε;
    and GD's distance from each flow. Shaded: the EoS phase; dotted: GD's first crossing
    of 2/ε."""
    import matplotlib.pyplot as plt

    seed = p.seeds[0] if seed is None else seed
    c = a.curves[a.curves.seed == seed]
    eps = [e for e in p.eps if (c.eps == e).any()]
    fig, axes = plt.subplots(max(1, len(eps)), 3, figsize=(15, 3.9 * max(1, len(eps))),
                             squeeze=False)
    for row, e in zip(axes, eps):
        d = c[c.eps == e]

        def line(ax, name, **kw):
            s = d[d.series == name].dropna(subset=["value"])
            ax.plot(s.step, s.value, **kw)

        ax = row[0]
        line(ax, "gd_loss", color=COLORS["gd"], lw=0.6, label="GD")
        line(ax, "gd_avg", color=COLORS["gd_avg"], lw=1.6,
             label=f"GD, mean over {p.avg_window} steps")
        line(ax, "cf_predicted", color=COLORS["cf"], lw=1.6,
             label="central flow: L + ½⟨Σ, H⟩")
        line(ax, "cf_loss", color=COLORS["cf"], lw=1, ls="--", label="central flow: L alone")
        line(ax, "mf_loss", color=COLORS["mf"], lw=1.4, label="modified flow")
        line(ax, "gf_loss", color=COLORS["gf"], lw=1, ls=":", label="gradient flow")
        ax.set(yscale="log", ylabel="training loss (square loss)",
               title=f"Loss, ε = {e:g} (seed {seed})")
        ax = row[1]
        line(ax, "gd_ratio", color=COLORS["gd"], lw=1, marker=".", ms=3, label="GD")
        line(ax, "cf_ratio", color=COLORS["cf"], lw=1.6, label="central flow")
        line(ax, "mf_ratio", color=COLORS["mf"], lw=1.4, label="modified flow")
        line(ax, "gf_ratio", color=COLORS["gf"], lw=1, ls=":", label="gradient flow")
        ax.axhline(1, color="k", ls="--", lw=1)
        ax.axhspan(1 - BAND, 1 + BAND, color="0.9", zorder=0)
        ax.set(ylabel="sharpness / (2/ε)", title="Sharpness in units of 2/ε; grey: ±10%")
        ax = row[2]
        line(ax, "dist_cf", color=COLORS["cf"], lw=1.6, label="‖θ_GD − θ_CF‖")
        line(ax, "dist_mf", color=COLORS["mf"], lw=1.4, label="‖θ_GD − θ_MF‖")
        line(ax, "dist_gf", color=COLORS["gf"], lw=1, ls=":", label="‖θ_GD − θ_GF‖")
        ax.set(ylabel="distance in weight space", title="How far GD is from each flow")
        m = a.cases[(a.cases["ε"] == e) & (a.cases.seed == seed)]
        if len(m):
            m = m.iloc[0]
            for ax in row:
                if not math.isnan(m["phase start"]):
                    ax.axvspan(m["phase start"], m["phase end"], color="C4", alpha=0.07,
                               zorder=0)
                if not math.isnan(m["s*"]):
                    ax.axvline(m["s*"], color="k", ls=":", lw=0.8)
        for ax in row:
            ax.set(xlabel="step (flows: time / ε)")
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the chapter protocol
def summary(a: Analysis, p: Params) -> dict[str, str]:
    """This set's cases in words and the verdict of each claim with its numbers (a column
    of :func:`~implicitreg.chapters.result_sets.side_by_side`)."""
    return {"cases": f"ε ∈ {{{', '.join(f'{e:g}' for e in p.eps)}}} × {len(p.seeds)} "
                     f"seed(s); relative errors of the predicted loss: {a.glue['cf_errors']}",
            **verdict_summary(a)}


def scale_description(p: Params) -> str:
    """What the cases were, for the sentence on the scale (after the profile's name)."""
    return (f"fc-tanh {'-'.join(str(w) for w in p.widths)} with the square loss on "
            f"{p.n_train:,} CIFAR-10 training images at {p.side}×{p.side} pixels, "
            f"{p.steps} GD steps at ε ∈ {{{', '.join(f'{e:g}' for e in p.eps)}}} from "
            f"{len(p.seeds)} initialization(s); the central flow with {p.substeps} Euler "
            f"substeps per step.")


def figures(a: Analysis, runs: Mapping[Case, CaseResult], p: Params) -> dict[str, Any]:
    """The chapter's figure for each initialization, drawn when called."""
    return {("flows" if s == p.seeds[0] else f"flows, seed {s}"):
            (lambda s=s: fig_flows(a, p, seed=s)) for s in p.seeds}


__all__ = ["Params", "profile", "Case", "CaseResult", "design", "spec", "case_key", "run",
           "run_counts", "case_table", "figures",
           "compute_case", "gd_record", "save_case", "load_case", "CRITERIA", "REVISIONS",
           "registered_hash", "revisions_hash", "criteria_table", "STATISTIC_GLUE",
           "VERDICT_GLUE", "measure", "window_mean", "one_sided_upper", "Analysis",
           "analyze", "tidy", "fig_flows", "summary", "scale_description"]
