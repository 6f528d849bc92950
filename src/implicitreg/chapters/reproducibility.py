"""The reproducibility page as a module: the checks behind its claims about the run
store, and the tables it reads from the profiles, the store and the committed result
sets.

The page claims that on a CPU one configuration and seed reproduce every metric bit for
bit, and that a run stopped at a checkpoint and resumed gives the same metrics as one
that was not stopped. :func:`check` trains one tiny synthetic configuration three times
in empty run stores (twice straight through, once stopped after its first step and
resumed), so that every build of the page measures both claims where it runs. The
notebook ``notebooks/reproducibility.ipynb`` is prose around the functions here:

- :class:`Params`, whose named instances are the profiles of
  ``notebooks/profiles/reproducibility.yaml``;
- :func:`design`: the configuration checked; :func:`check`: its three trainings
  (:func:`run` under the chapter protocol, :mod:`.protocol`);
- :func:`analyze`: verdicts and the values the prose glues; :func:`summary`,
  :func:`scale_description`, :func:`figures` (none);
- :data:`CRITERIA`: the claims' criteria;
- :func:`profiles_table`, :func:`machine_table`, :func:`store_table`,
  :func:`committed_sets_table`, :func:`bench_table`, :func:`timings_table`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .base import ChapterParams
from .protocol import verdict_summary
from .criteria import (NOT_ASSESSABLE, NOT_REPRODUCED, REPRODUCED, Criterion, Premise,
                       Verdict, premise_failure, register)

CHAPTER = "reproducibility"


# ------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class Params(ChapterParams):
    """The configuration the page trains to check its claims; every profile gives all
    of them."""
    check_n_train: int
    """Training examples of the synthetic data set of the check."""
    check_widths: tuple[int, ...]
    """Hidden widths of the check's MLP."""
    check_batch_size: int
    """SGD's batch size in the check."""
    check_steps: int
    """Training steps of the check (at least 2, so that a resumed run has a step left)."""
    check_eval_every: int
    """Steps between evaluations of the check."""
    check_seed: int
    """Seed of the check."""

    CHAPTER: ClassVar[str] = CHAPTER

    def __post_init__(self) -> None:
        self._tuples("check_widths")
        self._positive_ints("check_n_train", "check_batch_size", "check_steps",
                             "check_eval_every")
        if self.check_steps < 2:
            raise ValueError(f"Params.check_steps = {self.check_steps}: at least 2")


# The named profile's values plus overrides (see :meth:`ChapterParams.profile`).
profile = Params.profile


# ------------------------------------------------------------------ criteria
REGISTERED = "2026-11-25"

CRITERIA = (
    Criterion(
        claim="determinism",
        statement="On a CPU, the same configuration and seed reproduce every metric bit "
                  "for bit.",
        statistic="one configuration trained twice, each time in an empty run store: the "
                  "number of metric values (rows of the metric tables, matched by metric, "
                  "split and step) that differ, and the largest absolute difference",
        threshold="reproduced when the two tables have the same rows and no value differs",
        premises=("both trainings ran on the CPU",
                  "training is allowed in this build (IMPLICITREG_NO_TRAIN is not set)",
                  "neither training diverged"),
        registered=REGISTERED),
    Criterion(
        claim="resume",
        statement="A run stopped at its checkpoint and resumed gives the same metric table "
                  "as an uninterrupted one.",
        statistic="the configuration trained in an empty run store, stopped after its "
                  "first step (its checkpoint written), then asked for again so that it "
                  "resumes; compared with the first uninterrupted training as above",
        threshold="reproduced when the resumed run says it resumed, the tables have the "
                  "same rows and no value differs",
        premises=("both trainings ran on the CPU",
                  "training is allowed in this build (IMPLICITREG_NO_TRAIN is not set)",
                  "neither training diverged"),
        registered=REGISTERED),
)
REVISIONS: tuple = ()


# Fingerprints of the criteria (as registered; the revisions apart) and their table.
registered_hash, revisions_hash, criteria_table = register(CRITERIA, REVISIONS, CHAPTER)


# ------------------------------------------------------------------ the check
def design(p: Params):
    """The configuration checked: a small MLP on synthetic data, on the CPU."""
    from ..engine.config import RunConfig

    return RunConfig(dataset="synthetic", n_train=p.check_n_train, n_test=64,
                     widths=tuple(p.check_widths), batch_size=p.check_batch_size,
                     steps=p.check_steps, eval_every=p.check_eval_every, seed=p.check_seed,
                     device="cpu", progress=False)


@dataclass
class Check:
    """The three trainings of :func:`check` (``None`` where training was refused)."""
    first: Any = None
    second: Any = None
    resumed: Any = None
    no_train: bool = False
    """IMPLICITREG_NO_TRAIN was set: nothing was trained."""
    stopped_at: str = ""
    """What the stopped training reported."""

    def all(self) -> list[tuple[str, Any]]:
        return [(name, r) for name, r in (("first", self.first), ("second", self.second),
                                          ("resumed", self.resumed)) if r is not None]


def check(p: Params, exec_config: Any = None) -> Check:
    """Train :func:`design` in three empty temporary run stores: twice straight
    through, and once stopped after its first step, then resumed from its checkpoint.
    The chapter's stores are not touched; nothing trains when ``exec_config`` (default:
    the shell's settings) forbids training."""
    import tempfile
    import time

    from ..engine.training import DeadlineReached
    from ..runs.execution import ExecConfig, resolve
    from ..runs.runner import run
    from ..runs.store import RunStore

    if resolve(exec_config).no_train:
        return Check(no_train=True)
    cfg = design(p)
    ex = ExecConfig(progress=False)
    out = Check()
    with tempfile.TemporaryDirectory() as tmp:
        out.first = run(cfg, RunStore(Path(tmp) / "first"), exec_config=ex)
        out.second = run(cfg, RunStore(Path(tmp) / "second"), exec_config=ex)
        store = RunStore(Path(tmp) / "resumed")
        try:  # a deadline already past: it checkpoints after its first step and stops
            run(cfg, store, exec_config=ExecConfig(progress=False, deadline=time.time() - 1))
            out.stopped_at = "it was not stopped"
        except DeadlineReached as e:
            out.stopped_at = str(e)
        out.resumed = run(cfg, store, exec_config=ex)
    return out


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """Rows present in one table only, values that differ, and the largest absolute
    difference, matching rows by metric, split and step."""
    keys = ["metric", "split", "step"]

    def indexed(t: pd.DataFrame) -> pd.Series:
        # A metric may be recorded more than once at a step: number the repeats.
        t = t.assign(repeat=t.groupby(keys).cumcount())
        return t.set_index(keys + ["repeat"])["value"].astype(float)

    ka, kb = indexed(a), indexed(b)
    common = ka.index.intersection(kb.index)
    va, vb = ka.loc[common].to_numpy(), kb.loc[common].to_numpy()
    same = (va == vb) | (np.isnan(va) & np.isnan(vb))
    diff = np.abs(va - vb)
    return {"rows": len(common), "only in one": len(ka.index.symmetric_difference(kb.index)),
            "differ": int((~same).sum()),
            "largest difference": float(np.nanmax(diff)) if (~same).any() else 0.0}


def _device(r: Any) -> str:
    return str(r.provenance.get("device", "")) if r is not None else ""


def _judge(claim: str, a: Any, b: Any, c: Check, extra: list[Premise] | None = None
           ) -> tuple[Verdict, dict[str, Any]]:
    if c.no_train:
        return Verdict(claim, NOT_ASSESSABLE, "training is allowed in this build "
                       "(IMPLICITREG_NO_TRAIN is set, so nothing was trained)"), {}
    devices = [_device(a), _device(b)]
    why = premise_failure([
        Premise("both trainings ran on the CPU", all(d == "cpu" for d in devices),
                f"devices: {', '.join(devices)}"),
        Premise("neither training diverged",
                not (a.summary.get("diverged") or b.summary.get("diverged")),
                "a training diverged")] + (extra or []))
    cmp = compare(a.metrics, b.metrics)
    numbers = (f"{cmp['rows']} metric values compared, {cmp['differ']} differ (largest "
               f"difference {cmp['largest difference']:.3g}), {cmp['only in one']} rows "
               "in one table only")
    if why:
        return Verdict(claim, NOT_ASSESSABLE, why[len(NOT_ASSESSABLE) + 2:]), cmp
    ok = cmp["differ"] == 0 and cmp["only in one"] == 0 and cmp["rows"] > 0
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED, numbers), cmp


@dataclass
class Analysis:
    verdicts: dict[str, Verdict]
    comparisons: pd.DataFrame
    glue: dict[str, Any] = field(default_factory=dict)


def analyze(c: Check, p: Params) -> Analysis:
    """Verdicts on both claims (premises first) and the glue values."""
    v1, c1 = _judge("determinism", c.first, c.second, c)
    resumed_note = (any("resumed" in n for n in c.resumed.provenance.get("notes", []))
                    if c.resumed is not None else False)
    v2, c2 = _judge("resume", c.first, c.resumed, c, [Premise(
        "the run was stopped and resumed from its checkpoint",
        resumed_note, f"{c.stopped_at}; the resumed run has no note of a resume")])
    table = pd.DataFrame([{"claim": v.claim, **cmp, "verdict": v.verdict}
                          for v, cmp in ((v1, c1), (v2, c2))]).set_index("claim")
    g = {"repro_determinism_verdict": v1.verdict, "repro_determinism_numbers": v1.detail,
         "repro_resume_verdict": v2.verdict, "repro_resume_numbers": v2.detail,
         "repro_stopped": c.stopped_at or "(not stopped)",
         "repro_criteria_hash": registered_hash(), "repro_registered": REGISTERED}
    return Analysis({"determinism": v1, "resume": v2}, table, g)


# ------------------------------------------------------------------ the page's tables
def repository() -> Path | None:
    """The checkout the page's notebook belongs to, whatever the working directory
    (None when only the notebook is available, e.g. on Colab)."""
    from ..runs.store import locate_notebook

    here = locate_notebook(f"{CHAPTER}.ipynb")
    return here.parent.parent if here is not None else None


def profiles_table(profiles_dir: Path | None) -> pd.DataFrame | None:
    """Every parameter of every profile file (``notebooks/profiles`` of a checkout), one
    column per profile (None when the profile files are not available)."""
    import yaml

    rows = []
    for f in sorted(profiles_dir.glob("*.yaml")) if profiles_dir is not None else []:
        for prof, values in (yaml.safe_load(f.read_text()) or {}).items():
            for k, v in (values or {}).items():
                rows.append({"chapter": f.stem, "profile": prof, "parameter": k,
                             "value": str(v)})
    if not rows:
        return None
    return (pd.DataFrame(rows).pivot_table(index=["chapter", "parameter"], columns="profile",
                                           values="value", aggfunc="first")
            .fillna("(default)"))


PACKAGES = ["implicitreg", "torch", "torchvision", "numpy", "pandas", "pyarrow", "seaborn",
            "matplotlib", "scipy", "papermill", "jupyter-book", "myst-nb"]


def machine_table(profile: str, executed_at: str) -> pd.DataFrame:
    """This build's Python, platform, torch threads and device, and package versions."""
    import importlib.metadata as md
    import platform

    import torch

    info = {"python": platform.python_version(), "platform": platform.platform(),
            "CPU threads used by torch": torch.get_num_threads(),
            "CUDA device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
            "profile of this build": profile, "built": executed_at or "(not recorded)"}
    for pkg in PACKAGES:
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = "not installed"
    return pd.DataFrame(info.items(), columns=["", "version / value"]).set_index("")


def store_table(store: Any) -> pd.DataFrame:
    """One row per stored run: configuration, where it ran, how long it took, which data
    it read."""
    rows = []
    for key in store.keys():
        prov = json.loads((store.path(key) / "provenance.json").read_text())
        cfg = json.loads((store.path(key) / "config.json").read_text())
        summ = json.loads((store.path(key) / "summary.json").read_text())
        rows.append({"key": key, "dataset": cfg["dataset"], "model": cfg["model"],
                     "method": cfg["method"], "reg": cfg["reg"], "lr": cfg["lr"],
                     "seed": cfg["seed"], "device": prov["device_name"],
                     "wall time (s)": prov["wall_time_s"], "data source": prov["data_source"],
                     "diverged": summ["diverged"]})
    if not rows:
        return pd.DataFrame()
    return (pd.DataFrame(rows).sort_values(["dataset", "model", "method", "reg", "lr", "seed"])
            .reset_index(drop=True))


def committed_sets_table(repo: Path | None) -> pd.DataFrame:
    """Each committed result set's windows and the chapters made in each."""
    sets = []
    for manifest in sorted((repo / "results").glob("*/manifest.json")) if repo else []:
        m = json.loads(manifest.read_text())
        for w in m.get("windows", []):
            for c in w["chapters"]:
                sets.append({"result set": manifest.parent.name, "window": w["created"],
                             "device": w["device"], "torch": w["torch"],
                             "chapter": c["chapter"], "status": c["status"],
                             "runs": c.get("runs"), "wall time (s)": c.get("wall_time_s")})
    return pd.DataFrame(sets).set_index(["result set", "window"]) if sets else pd.DataFrame()


def bench_table(repo: Path | None) -> pd.DataFrame:
    """The step costs ``implicitreg bench`` measured with each committed result set."""
    rows = []
    for f in sorted((repo / "results").glob("*/bench-*.json")) if repo else []:
        b = json.loads(f.read_text())
        thr = b.get("throughput_resnet18") or b.get("throughput_cnn") or {}
        rows.append({
            "file": f"{f.parent.name}/{f.name}", "device": b.get("device_name", b["device"]),
            "torch": b["torch"],
            "engine images/s (ResNet-18)": thr.get("engine_images_per_s"),
            "DataLoader loop images/s": thr.get("reference_images_per_s"),
            "engine / loop": thr.get("engine_over_reference"),
            "penalty step / plain step (CNN, vmap)": b.get("cnn", {}).get("fd_vmap_over_plain"),
            "32 batched / sequential (MLP)":
                b.get("batched_mlp784_2048_10_b100", {}).get("K32_batched_over_sequential")})
    return pd.DataFrame(rows).set_index("file").T if rows else pd.DataFrame()


def timings_table(repo: Path | None) -> tuple[pd.DataFrame, bool]:
    """Wall times per executor from ``results/timings/``, and whether any was on a GPU."""
    files = sorted((repo / "results" / "timings").glob("*.json")) if repo else []
    rows = []
    for f in files:
        t = json.loads(f.read_text())
        base_wall = {m["mode"]: m["wall_time_s"] for m in t["modes"]}.get("sequential")
        for m in t["modes"]:
            rows.append({"chapter": t["chapter"], "profile": t["profile"],
                         "device": f'{t["device"]} ({t["cpu_count"]} cores)',
                         "mode": m["mode"], "runs": m["runs"],
                         "wall time (min)": round(m["wall_time_s"] / 60, 1),
                         "sequential / this": (round(base_wall / m["wall_time_s"], 2)
                                               if base_wall else None)})
    return pd.DataFrame(rows), any(f.stem.endswith("-cuda") for f in files)


# ------------------------------------------------------------------ the chapter protocol
def run(p: Params, exec_config: Any = None, **options: Any) -> Check:
    """:func:`check` under ``exec_config``; the other ``options`` (``store``,
    ``progress``) do not apply: the check trains into empty stores of its own."""
    return check(p, exec_config)


# The summary is the verdict of each claim with its numbers.
summary = verdict_summary


def scale_description(p: Params) -> str:
    """What the check trained, for the sentence on the scale."""
    return (f"one MLP with hidden widths {list(p.check_widths)} on {p.check_n_train:,} "
            f"synthetic examples, {p.check_steps} steps at batch size "
            f"{p.check_batch_size}, trained three times.")


def figures(a: Analysis, runs: Check, p: Params) -> dict[str, Any]:
    """The page draws no figure: its evidence is tables."""
    return {}


__all__ = ["Params", "profile", "repository", "CRITERIA", "REVISIONS", "registered_hash",
           "criteria_table", "design", "Check", "check", "run", "summary",
           "scale_description", "figures", "compare", "Analysis", "analyze", "profiles_table",
           "machine_table", "store_table", "committed_sets_table", "bench_table",
           "timings_table"]
