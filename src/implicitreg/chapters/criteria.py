"""Registered criteria: what each chapter's claims must show, fixed before its runs.

A :class:`Criterion` is frozen and dated. Changing one after seeing results is done by
adding a :class:`Revision` that keeps the original, so that both verdicts can be shown;
:func:`criteria_hash` fingerprints a chapter's registered criteria, so that a test (and
the reader) can see that they have not moved since they were registered.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_ASSESSABLE = "not assessable"
INCONCLUSIVE = "inconclusive at this scale"


@dataclass(frozen=True)
class Criterion:
    claim: str
    """Short id of the claim within its chapter, e.g. ``"plateau"``."""
    statement: str
    """The claim in words, as the paper makes it."""
    statistic: str
    """What is computed from the runs, precisely enough to recompute it by hand."""
    threshold: str
    """When the statistic counts as reproducing the claim."""
    premises: tuple[str, ...]
    """Conditions without which the statistic says nothing about the claim; a verdict
    whose premise fails is "not assessable", never "not reproduced"."""
    registered: str = ""
    """Legacy: the date typed when the criterion was written, kept because the
    fingerprints of the result sets committed before the registry existed hash it. The
    time a criterion was fixed is what ``results/registry.json`` records (see
    :mod:`implicitreg.chapters.registry`); a new criterion leaves this empty."""
    alpha: float | None = None
    """Significance level of a test, where the statistic is one."""
    sd_assumed: float | None = None
    """Standard deviation across seeds assumed for power calculations, where relevant."""
    aggregate: str = ""
    """How the per-case verdicts (per ε, per batch size) combine into the claim's."""
    results_before: str = ""
    """Date (ISO) of the results it judges where they were made before ``registered``:
    the criterion was written after them, and the book says so. Empty for a criterion
    registered before its runs (the rule)."""

    def as_text(self) -> str:
        lines = [f"[{self.claim}] {self.statement}", f"  statistic: {self.statistic}",
                 f"  threshold: {self.threshold}"]
        lines += [f"  premise: {p}" for p in self.premises]
        if self.aggregate:
            lines.append(f"  aggregate: {self.aggregate}")
        if self.alpha is not None:
            lines.append(f"  alpha: {self.alpha:g}")
        if self.sd_assumed is not None:
            lines.append(f"  SD assumed for power: {self.sd_assumed:g}")
        lines.append(f"  registered: {self.registered}")
        if self.results_before:
            lines.append(f"  registered after its results were made ({self.results_before})")
        return "\n".join(lines)


@dataclass(frozen=True)
class Revision:
    """A change of a registered criterion after results were seen: the original stays
    registered and is judged too; ``reason`` says what prompted the change."""
    original: str
    """``claim`` of the criterion it revises."""
    revised: Criterion
    reason: str
    date: str = ""
    """Legacy, as :attr:`Criterion.registered`: the registry records when a revision was
    fixed; a new revision leaves this empty."""


@dataclass(frozen=True)
class Verdict:
    """A criterion's outcome: the verdict word and the numbers behind it, in words."""
    claim: str
    verdict: str
    detail: str
    cases: Mapping[str, str] = field(default_factory=dict)
    """Per-case verdicts (e.g. per ε) with their numbers."""

    @property
    def text(self) -> str:
        return f"{self.verdict}: {self.detail}" if self.detail else self.verdict


def not_assessable(premise: str) -> str:
    return f"{NOT_ASSESSABLE}: {premise}"


def combine(case_verdicts: Iterable[str], min_assessable: int = 1) -> str:
    """One claim verdict from per-case verdicts: reproduced when every assessable case
    reproduces, partly when some do, not reproduced when none does; not assessable when
    fewer than ``min_assessable`` cases are assessable."""
    vs = [v for v in case_verdicts]
    decided = [v for v in vs if not v.startswith(NOT_ASSESSABLE)]
    if len(decided) < min_assessable:
        return NOT_ASSESSABLE
    ok = sum(v == REPRODUCED for v in decided)
    if ok == len(decided):
        return REPRODUCED
    return PARTLY if ok else NOT_REPRODUCED


def combine_ladder(case_verdicts: Iterable[str], min_assessable: int = 1) -> str:
    """One claim verdict from per-case verdicts of a ladder (reproduced, not reproduced,
    inconclusive): reproduced when every assessable case reproduces, partly when some do,
    not reproduced when every assessable case is not reproduced, inconclusive otherwise;
    not assessable when fewer than ``min_assessable`` cases are assessable."""
    decided = [v for v in case_verdicts if not v.startswith(NOT_ASSESSABLE)]
    if len(decided) < min_assessable:
        return NOT_ASSESSABLE
    ok = sum(v == REPRODUCED for v in decided)
    if ok == len(decided):
        return REPRODUCED
    if ok:
        return PARTLY
    return (NOT_REPRODUCED if all(v.startswith(NOT_REPRODUCED) for v in decided)
            else INCONCLUSIVE)


@dataclass(frozen=True)
class Premise:
    """One premise of a verdict, checked on the runs: ``numbers`` says what was measured
    (e.g. "SGD at 91–98% training accuracy, threshold 99%"), so that a failure can be
    reported with its numbers."""
    statement: str
    holds: bool
    numbers: str = ""


def premise_failure(premises: Iterable[Premise]) -> str | None:
    """``None`` when every premise holds; otherwise "not assessable: <each failed
    premise, with its numbers>", the verdict a comparison must then give."""
    failed = [p for p in premises if not p.holds]
    if not failed:
        return None
    return not_assessable("; ".join(
        f"{p.statement} ({p.numbers})" if p.numbers else p.statement for p in failed))


def _percent_range(values: Sequence[float]) -> str:
    """"91–98%": rounded down, so that an accuracy just under a threshold of 99% never
    reads as 99%."""
    import math

    lo, hi = math.floor(100 * min(values)), math.floor(100 * max(values))
    return f"{lo}%" if lo == hi else f"{lo}–{hi}%"


def fit_premise(arm: str, train_accuracy: Sequence[float], diverged: Sequence[bool],
                threshold: float, where: str = "") -> Premise:
    """"``arm`` fit its training set and did not diverge" at one compared point, with
    its numbers: the final training accuracy of every run must reach ``threshold``
    (implicit regularization is about which interpolating solution an optimizer finds;
    an arm below it compares optimization speed instead)."""
    at = f" at {where}" if where else ""
    acc = [float(a) for a, d in zip(train_accuracy, diverged) if not d]
    n_div = sum(bool(d) for d in diverged)
    statement = (f"every {arm} run{at} reaches {100 * threshold:g}% training accuracy "
                 "and none diverged")
    if not len(train_accuracy):
        return Premise(statement, False, f"no {arm} run{at}")
    finite = [a for a in acc if a == a]
    holds = n_div == 0 and len(finite) == len(acc) and all(a >= threshold for a in finite)
    parts = []
    if finite:
        parts.append(f"{arm} at {_percent_range(finite)} training accuracy in "
                     f"{len(finite)} seed{'s' if len(finite) != 1 else ''}")
    if n_div:
        parts.append(f"{n_div} of {len(train_accuracy)} {arm} runs diverged")
    return Premise(statement, holds, ", ".join(parts) + f", threshold {100 * threshold:g}%")


def power_ladder(p_for: float, p_against: float, alpha: float, needed: float,
                 decisive: float, sd_check: "Premise | None", *, detected: str, reach: str,
                 against: str) -> str:
    """The verdict of one test whose power comes from a measured SD (a pilot's): reproduced
    when the test rejects (``p_for`` ≤ ``alpha``; a Holm-adjusted p where the claim is
    tested over a sweep); not reproduced when the opposite test rejects (``against`` says
    what it found); otherwise not reproduced when the effect the test detects at 80% power
    (``needed``) is at most the ``decisive`` one (``detected`` names it) and the runs bear
    the SD out (``sd_check``), inconclusive at this scale when it is larger (``reach``
    says what it detects) or when there is no SD to compute power from."""
    if p_for <= alpha:
        return REPRODUCED
    if p_against <= alpha:
        return f"{NOT_REPRODUCED} ({against})"
    if not needed == needed:
        return f"{INCONCLUSIVE} (no SD from a pilot, so no power statement)"
    if needed <= decisive:
        if sd_check is not None and not sd_check.holds:
            return premise_failure([sd_check]) or NOT_ASSESSABLE
        return f"{NOT_REPRODUCED} ({detected} would have been detected with 80% power)"
    return f"{INCONCLUSIVE} (the test detects only {reach} with 80% power)"


SD_FACTOR = 2.0
"""A verdict whose power comes from an SD assumed in advance needs the runs to bear that
SD out: a measured SD across seeds above this multiple of it fails the premise."""


def sd_premise(name: str, values: Sequence[float], sd_assumed: float,
               factor: float = SD_FACTOR, scale: float = 100, unit: str = " points",
               digits: int = 1, basis: str = "assumed for power") -> Premise:
    """"the SD across seeds of ``name`` is at most ``factor`` × the SD assumed for
    power", with the measured SD (fewer than two values: holds, nothing to measure);
    ``basis`` says where the SD of the power statement came from."""
    import numpy as np

    v = np.asarray([x for x in values if x == x], dtype=float)
    statement = (f"the SD across seeds of {name} is at most {factor:g}× the SD {basis} "
                 f"({scale * sd_assumed:.{digits}f}{unit})")
    if len(v) < 2:
        return Premise(statement, True)
    sd = float(v.std(ddof=1))
    return Premise(statement, sd <= factor * sd_assumed,
                   f"measured {scale * sd:.{digits}f}{unit} over {len(v)} seeds")


# The workstation designs' ladder (edge_of_stability, where_they_end): the premise and the
# aggregate their revisions register, and the verdicts that :func:`holm_power_ladder` gives.
SD_POWER_PREMISE = (f"where a negative verdict rests on power, the SD across the "
                    f"confirmation's seeds is at most {SD_FACTOR:g}× the SD used for power")
"""The premise of a verdict from :func:`holm_power_ladder`, as the revisions register it."""
LADDER_AGGREGATE = ("reproduced when every assessable case reproduces it; partly when some "
                    "do; not reproduced when every assessable case is not reproduced; "
                    "inconclusive at this scale otherwise")
"""How :func:`combine_ladder` combines the cases, as the revisions register it."""


def holm_power_ladder(tests: Mapping[object, dict], alpha: float) -> None:
    """Each test's verdict, written into its dict: ``"p"`` and ``"p against"`` (the
    opposite test's) Holm-adjusted over ``tests`` (``"Holm p"``, ``"Holm p against"``);
    ``"detectable"``, the effect the test detects with probability ``"power"`` (0.8 when
    absent) at the first Holm level ``alpha``/k from the pilot's SD ``"sd"`` (a
    :class:`~implicitreg.analysis.pilot.PilotSD`) over ``"n"`` seeds (NaN where the pilot
    gave none); then :func:`power_ladder` with ``"decisive"``, ``"detected"``, ``"reach"``
    (a function of the detectable effect) and ``"against"``, the runs' own SD of
    ``"values"`` checked against the pilot's by :func:`sd_premise` under ``"name"``."""
    from ..analysis import stats

    k_n = max(len(tests), 1)
    adj = stats.holm({k: t["p"] for k, t in tests.items()}, alpha)
    adj_against = stats.holm({k: t["p against"] for k, t in tests.items()}, alpha)
    for k, t in tests.items():
        sd = t["sd"]
        need = (stats.t_factor(t["n"], alpha / k_n, t.get("power", 0.8)) * sd.power_sd
                if sd.usable else float("nan"))
        check = (sd_premise(t["name"], t["values"], sd.power_sd, scale=1, unit="", digits=3,
                            basis="the pilot measured for power") if sd.usable else None)
        t.update({"Holm p": adj[k], "Holm p against": adj_against[k], "detectable": need})
        t["verdict"] = power_ladder(adj[k], adj_against[k], alpha, need, t["decisive"], check,
                                    detected=t["detected"], reach=t["reach"](need),
                                    against=t["against"])


def criteria_table(criteria: Iterable[Criterion], revisions: Iterable[Revision] = (),
                   times: Mapping[str, str] | None = None):
    """A chapter's criteria as registered, then each revision with what it revises and
    why; ``times`` (claim → when the registry says it was fixed) fills the column
    "registered" (the typed legacy date where it has none); ``note`` marks a criterion
    registered after its results were made."""
    import pandas as pd

    times = times or {}
    rows = [(c, "", "") for c in criteria] + [(r.revised, r.original, r.reason)
                                              for r in revisions]
    return pd.DataFrame([{
        "claim": c.claim,
        "registered": (times.get(c.claim) or c.registered or "not registered").replace("T", " "),
        "revises": rev,
        "statistic": c.statistic, "threshold": c.threshold,
        "premises": "; ".join(c.premises), "why revised": why,
        "note": (f"registered after its results were made ({c.results_before})"
                 if getattr(c, "results_before", "") else "")}
        for c, rev, why in rows]).set_index("claim")


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\*_[]<>|#"})


def _md(text: str) -> str:
    """Criterion text as literal Markdown (an ε* or a |x| must not turn into emphasis
    or a table); backticks stay, since the criteria quote parameter names as code."""
    return " ".join(str(text).split()).translate(_MARKDOWN_SPECIAL)


def _when(stamp: str) -> str:
    return stamp.replace("T", " ")[:16] + (" UTC" if stamp[:1].isdigit() else "")


def _power(c: Criterion) -> str:
    parts = []
    if c.alpha is not None:
        parts.append(f"α = {c.alpha:g}")
    if c.sd_assumed is not None:
        parts.append(f"SD across seeds assumed for power: {c.sd_assumed:g}")
    return "; ".join(parts)


def _fields(c: Criterion, times: Mapping[str, str], typed: str = "") -> list[tuple[str, str]]:
    fixed = times.get(c.claim) or c.registered or typed
    dates = f"registered {_when(fixed)}" if fixed else "not registered as it reads now"
    if c.results_before:
        dates += f"; after its results were made ({_md(c.results_before)})"
    rows = [("statistic", _md(c.statistic)), ("threshold", _md(c.threshold))]
    rows += [("premise", _md(p)) for p in c.premises]
    rows += [("aggregate", _md(c.aggregate))] if c.aggregate else []
    rows += [("power", _power(c))] if _power(c) else []
    return rows + [("dates", dates)]


def _definition(c: Criterion, times: Mapping[str, str], original: Criterion | None = None,
                reason: str = "", typed: str = "") -> list[str]:
    """One criterion as a short block; a revision says what it revises and why, and
    gives only the fields that differ from the criterion it revises."""
    if original is None:
        head = f"**`{c.claim}`** {_md(c.statement)}"
    else:
        head = (f"**`{c.claim}`**, revision of `{original.claim}`"
                + (f": {_md(reason)}" if reason else ""))
    same = dict(_fields(original, {})) if original is not None else {}
    lines = [head, ""]
    for name, value in _fields(c, times, typed):
        if name == "premise" and original is not None and tuple(c.premises) == tuple(
                original.premises):
            continue
        if name != "dates" and same.get(name) == value:
            continue
        lines.append(f"- *{name}*: {value}")
    if original is not None and tuple(c.premises) == tuple(original.premises) and c.premises:
        lines.append(f"- *premises*: as in `{original.claim}`")
    return lines + [""]


def criteria_markdown(criteria: Iterable[Criterion], revisions: Iterable[Revision] = (),
                      times: Mapping[str, str] | None = None) -> str:
    """A chapter's criteria as Markdown definition blocks (statistic, threshold,
    premises, power, dates, one per line), each revision in a quote under the criterion
    it revises, its chain in order; ``times`` as for :func:`criteria_table`."""
    times = times or {}
    revs = list(revisions)
    by_id = {c.claim: c for c in criteria} | {r.revised.claim: r.revised for r in revs}
    lines = ["As registered, with the time `results/registry.json` records for each; a "
             "revision stands under the criterion it revises and gives what it changes.", ""]
    for c in criteria:
        lines += _definition(c, times)
        chain, current = [], {c.claim}
        while True:
            nxt = [r for r in revs if r.original in current and r not in chain]
            if not nxt:
                break
            chain += nxt
            current = {r.revised.claim for r in nxt}
        for r in chain:
            lines += ["> " + x if x else ">" for x in _definition(
                r.revised, times, by_id.get(r.original), r.reason, r.date)[:-1]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def criteria_hash(criteria: Iterable[Criterion | Revision]) -> str:
    """A short fingerprint of a chapter's registered criteria (and revisions), stable
    across Python versions: sha256 of their fields as sorted JSON."""
    def as_dict(c: Criterion | Revision) -> dict:
        d = dataclasses.asdict(c)
        # an empty results_before is left out, so that fingerprints taken before the
        # field existed stay valid
        for x in (d, d.get("revised")):
            for name in ("results_before", "registered", "date"):
                if isinstance(x, dict) and not x.get(name, True):
                    del x[name]
        return d

    blob = json.dumps([as_dict(c) for c in criteria], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def register(criteria: tuple[Criterion, ...], revisions: tuple[Revision, ...] = (),
             chapter: str = ""):
    """A chapter's three views of its criteria, written once for every chapter:
    ``registered_hash()`` (the criteria as registered before the runs),
    ``revisions_hash()`` (the recorded revisions, fingerprinted apart so that the first
    stays checkable) and ``criteria_table()`` (with the times the registry records for
    ``chapter``)."""
    def table():
        from . import registry

        return criteria_table(criteria, revisions,
                              registry.item_times(chapter) if chapter else None)

    return (lambda: criteria_hash(criteria), lambda: criteria_hash(revisions), table)


__all__ = ["Criterion", "Revision", "Verdict", "REPRODUCED", "PARTLY", "NOT_REPRODUCED",
           "NOT_ASSESSABLE", "INCONCLUSIVE", "combine_ladder", "power_ladder",
           "holm_power_ladder", "SD_POWER_PREMISE", "LADDER_AGGREGATE", "not_assessable",
           "Premise", "premise_failure", "criteria_table", "criteria_markdown", "register",
           "fit_premise", "sd_premise", "SD_FACTOR", "combine", "criteria_hash"]
