"""Each chapter's execution time against its budget (``notebooks/budgets.yaml``).

A budget holds for an execution that trained its runs; a chapter that loaded its runs from
the store is reported as such, since its time then says nothing about the budget.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Union

import yaml

BUDGETS_FILE = Path("notebooks") / "budgets.yaml"


def _read(root: Path) -> dict[str, Any]:
    f = root / BUDGETS_FILE
    return (yaml.safe_load(f.read_text()) or {}) if f.is_file() else {}


def load_budgets(root: Path, profile: str) -> dict[str, float]:
    """Seconds per chapter (and ``book`` for the whole build) at ``profile``; empty when
    the profile has no budget."""
    return {k: float(v) for k, v in (_read(root).get(profile) or {}).items()}


def load_workers(root: Path, profile: str) -> dict[str, int]:
    """Local worker processes for each chapter's runs at ``profile`` (the ``workers``
    section of the budgets file), used where the build is given no worker count; empty
    when the profile names none."""
    out = {k: int(v) for k, v in ((_read(root).get("workers") or {}).get(profile)
                                  or {}).items()}
    bad = {k: v for k, v in out.items() if v < 1}
    if bad:
        raise ValueError(f"{BUDGETS_FILE}: workers must be integers >= 1, not {bad}")
    return out


def against_budget(seconds: float | None, budget: float | None,
                   trained: int | None = None, profile: str | None = None) -> str:
    """One phrase: the time against the budget, or why it cannot be compared; with
    ``profile``, the phrase names the profile whose budget it is (or that has none)."""
    if seconds is None:
        return "not timed"
    whose = f"the {profile} budget" if profile else "the budget"
    if budget is None:
        return f"{seconds:.0f} s (" + (f"no budget at profile {profile}" if profile
                                       else "no budget at this profile") + ")"
    share = seconds / budget
    over = seconds - budget
    # Under a second over reads "over budget by 0 s" in whole seconds: give the tenths.
    verdict = ("within budget" if over <= 0 else
               f"over budget by {over:.0f} s" if over >= 0.5 else f"over budget by {over:.1f} s")
    text = f"{seconds:.0f} s of {budget:.0f} s, {whose} ({share:.0%}): {verdict}"
    if trained == 0:
        text += " (every run loaded from the store: not a test of the budget)"
    return text


Budgets = Union[Mapping[str, float], Callable[[str], Mapping[str, float]]]


def _of(budgets: Budgets, profile: str | None) -> Mapping[str, float]:
    return budgets(profile) if callable(budgets) else budgets


def summary(rows: list[dict[str, Any]], budgets: Budgets,
            profile: str | None = None) -> list[str]:
    """Lines for the end of a build: each chapter's time against the budget of the
    profile it ran at, and the total against the book's. ``rows`` hold ``chapter``,
    ``seconds``, ``trained`` and, where chapters ran at different profiles, their
    ``profile``; ``budgets`` maps a chapter to seconds or a profile to such a mapping."""
    lines = []
    for r in rows:
        p = r.get("profile") or profile
        lines.append(f"  {r['chapter']:<20} " + against_budget(
            r["seconds"], _of(budgets, p).get(r["chapter"]), r.get("trained"), p))
    total = sum(r["seconds"] for r in rows)
    used = {r.get("profile") or profile for r in rows} - {None} or {None}
    if len(used) == 1:
        (p,) = used
        lines.append(f"  {'all chapters':<20} "
                     + against_budget(total, _of(budgets, p).get("book"), profile=p))
    else:
        lines.append(f"  {'all chapters':<20} {total:.0f} s (chapters at profiles "
                     f"{', '.join(sorted(str(p) for p in used))}: no one budget applies)")
    return lines


def profiles_heading(profiles: Iterable[str | None], budgets: Budgets) -> str:
    """The line above a build's times, naming the profiles they are measured against."""
    names = sorted({str(p) for p in profiles if p})
    if len(names) == 1:
        (name,) = names
        return (f"== time against the {name} budgets ({BUDGETS_FILE}):" if _of(budgets, name)
                else f"== time (profile {name} has no budgets in {BUDGETS_FILE}):")
    return (f"== time against the budgets of each chapter's profile ({', '.join(names)}; "
            f"{BUDGETS_FILE}):")


__all__ = ["BUDGETS_FILE", "load_budgets", "load_workers", "against_budget", "summary",
           "profiles_heading"]
