"""Each chapter's execution time against its budget (``notebooks/budgets.yaml``).

A budget holds for an execution that trained its runs; a chapter that loaded its runs from
the store is reported as such, since its time then says nothing about the budget.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

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
                   trained: int | None = None) -> str:
    """One phrase: the time against the budget, or why it cannot be compared."""
    if seconds is None:
        return "not timed"
    if budget is None:
        return f"{seconds:.0f} s (no budget at this profile)"
    share = seconds / budget
    over = seconds - budget
    # Under a second over reads "over budget by 0 s" in whole seconds: give the tenths.
    verdict = ("within budget" if over <= 0 else
               f"over budget by {over:.0f} s" if over >= 0.5 else f"over budget by {over:.1f} s")
    text = f"{seconds:.0f} s of {budget:.0f} s ({share:.0%}): {verdict}"
    if trained == 0:
        text += " (every run loaded from the store: not a test of the budget)"
    return text


def summary(rows: list[dict[str, Any]], budgets: dict[str, float]) -> list[str]:
    """Lines for the end of a build: each chapter's time against its budget, and the
    total against the book's. ``rows`` hold ``chapter``, ``seconds`` and ``trained``."""
    lines = [f"  {r['chapter']:<20} " + against_budget(r["seconds"], budgets.get(r["chapter"]),
                                                       r.get("trained"))
             for r in rows]
    total = sum(r["seconds"] for r in rows)
    lines.append(f"  {'all chapters':<20} " + against_budget(total, budgets.get("book")))
    return lines


__all__ = ["BUDGETS_FILE", "load_budgets", "load_workers", "against_budget", "summary"]
