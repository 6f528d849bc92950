"""Every chapter's registered criteria in one place, and the check that committed result
sets were judged by the criteria they were made under.

A chapter module of :mod:`implicitreg.chapters` that defines ``CRITERIA`` (and, where a
criterion was changed after results existed, ``REVISIONS``) is found here by itself: a
new chapter module needs no entry. Each committed result set's manifest
(``results/<profile>/manifest.json``) records, per chapter, the fingerprint of the
criteria in force when its runs were made (field ``criteria``, written by the book driver
and the GPU edition). :func:`check_committed` then holds: the criteria registered up to
that time must still have that fingerprint. A recorded :class:`Revision` dated later
leaves it unchanged; an edit of a criterion, or a revision backdated before the runs,
changes it.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from . import criteria as _criteria
from .criteria import Criterion, Revision

_NOT_CHAPTERS = {"base", "criteria", "registry"}


def chapters() -> dict[str, ModuleType]:
    """Chapter name → module, for every module of this package that defines
    ``CRITERIA``."""
    from .. import chapters as pkg

    out = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name in _NOT_CHAPTERS or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if hasattr(mod, "CRITERIA"):
            out[getattr(mod, "CHAPTER", info.name)] = mod
    return out


def _when(stamp: str) -> _dt.datetime:
    """An ISO date or time as an aware UTC datetime (a bare date means its start)."""
    t = _dt.datetime.fromisoformat(stamp)
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def entries(chapter: str, as_of: str | None = None) -> list[Criterion | Revision]:
    """The chapter's registered criteria, then its revisions; with ``as_of``, only those
    fixed at or before that time."""
    mod = chapters()[chapter]
    items: list[Criterion | Revision] = list(mod.CRITERIA) + list(getattr(mod, "REVISIONS", ()))
    if as_of is None:
        return items
    limit = _when(as_of)
    return [c for c in items
            if _when(c.registered if isinstance(c, Criterion) else c.date) <= limit]


def criteria_hash(chapter: str, as_of: str | None = None) -> str:
    """Fingerprint of the chapter's criteria and revisions (those fixed by ``as_of``)."""
    return _criteria.criteria_hash(entries(chapter, as_of))


def committed_entries(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(profile, chapter entry) of every committed result set's manifest."""
    out = []
    for manifest in sorted((Path(root) / "results").glob("*/manifest.json")):
        for entry in json.loads(manifest.read_text()).get("chapters", []):
            out.append((manifest.parent.name, entry))
    return out


def check_committed(root: Path) -> list[str]:
    """What is wrong with the committed result sets' criteria, in words ([] when
    nothing): a set of a registered chapter without a recorded fingerprint, or whose
    fingerprint differs from that of the criteria registered up to its window."""
    known = chapters()
    problems = []
    for profile, e in committed_entries(root):
        chapter = e.get("chapter")
        if chapter not in known or e.get("status") != "complete":
            continue
        if "criteria" not in e:
            problems.append(f"results/{profile}: {chapter} records no criteria fingerprint")
            continue
        now = criteria_hash(chapter, as_of=e["window"])
        if e["criteria"] != now:
            problems.append(
                f"results/{profile}: {chapter} was made under criteria {e['criteria']}; "
                f"those registered by {e['window']} now fingerprint to {now}: a criterion "
                "was edited (or a revision backdated) instead of revised after the runs")
    return problems


def made(chapter: str, profile: str, root: Path | None = None) -> dict[str, Any] | None:
    """The committed result set's entry for ``chapter`` at ``profile`` (None when the
    profile's runs are not a committed set)."""
    from ..runs.committed import committed_entry
    from ..runs.store import project_root

    root = root or project_root()
    return committed_entry(root, profile, chapter) if root is not None else None


def made_text(chapter: str, profile: str, root: Path | None = None) -> str:
    """When and where the runs of this page were made, in words."""
    e = made(chapter, profile, root)
    if e is None:
        return (f"at the `{profile}` profile, in the build of this page (or loaded from "
                "its run store)")
    return (f"for the committed `{profile}` result set on {e['window'].replace('T', ' ')} "
            f"({e['device']}), under the criteria fingerprinted {e.get('criteria', '(not recorded)')}")


def made_table(chapter: str, profile: str, root: Path | None = None) -> pd.DataFrame:
    """Each criterion with when it was fixed and whether that was before the runs of
    this page were made (committed result sets only; otherwise "this build")."""
    e = made(chapter, profile, root)
    window = e["window"] if e else None
    rows = []
    for c in entries(chapter):
        crit = c if isinstance(c, Criterion) else c.revised
        when = crit.registered if isinstance(c, Criterion) else c.date
        rows.append({"criterion": crit.claim, "fixed": when.replace("T", " "),
                     "runs made": (window.replace("T", " ") if window else "in this build"),
                     "fixed before the runs": ("yes" if _when(when) <= _when(window) else
                                               "no (a recorded revision)") if window else ""})
    return pd.DataFrame(rows).set_index("criterion")


__all__ = ["chapters", "entries", "criteria_hash", "committed_entries", "check_committed",
           "made", "made_text", "made_table"]
