"""The claims ledger's one policy, for every chapter.

A claim's verdict is that of its criterion as registered. A revision of that criterion
stands in its own row below the claim, marked with its id and with when it was fixed
relative to the results on the page. The numbers of a row are the glued statistic of that
row's criterion, and its verdict is that criterion's glued verdict: a chapter module says
which glue keys these are in ``STATISTIC_GLUE`` and ``VERDICT_GLUE`` (criterion id → keys),
and :func:`problems` holds ``book/claims.yaml`` to them, so that no row quotes a number
other than the one its verdict was computed from.

An entry of ``book/claims.yaml``::

    - claim: "..."              # the claim, as the paper makes it
      paper: smith2021origin    # its bibliography key
      chapter: lr_batch_law     # the chapter that tests it
      criterion: slope          # the registered criterion that judges it
      effect: [lb_slope, ...]   # exactly STATISTIC_GLUE["slope"]
      effect_text: "... {0} ..."  # one placeholder per effect key
      verdict: lb_v1_registered   # VERDICT_GLUE["slope"]
      revisions:                # revisions of that criterion shown beside it, each with
        - criterion: slope-r2   # the same fields; the latest of the chain must be shown
          effect: [...]
          effect_text: "..."
          verdict: ...
"""
from __future__ import annotations

import datetime as _dt
import string
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterable, Mapping

from .parameters import BookError


@dataclass(frozen=True)
class Made:
    """When the results a chapter's page shows were made: the first of its runs started
    (their provenance), else the start of this build's execution of the chapter;
    ``committed`` for a committed result set."""
    when: str | None
    committed: bool


def _chapters() -> dict[str, ModuleType]:
    from ..chapters import registry

    return registry.chapters()


def _time(stamp: str) -> _dt.datetime:
    t = _dt.datetime.fromisoformat(stamp)
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def registered_ids(mod: ModuleType) -> set[str]:
    return {c.claim for c in mod.CRITERIA}


def revisions(mod: ModuleType) -> dict[str, Any]:
    """Revision id → its :class:`~implicitreg.chapters.criteria.Revision`."""
    return {r.revised.claim: r for r in getattr(mod, "REVISIONS", ())}


def chain(mod: ModuleType, criterion: str) -> list[str]:
    """The revisions of ``criterion``, each revising the one before (ids, in order)."""
    revs, out, current = revisions(mod), [], {criterion}
    while True:
        nxt = [rid for rid, r in revs.items() if r.original in current and rid not in out]
        if not nxt:
            return out
        out += nxt
        current = set(nxt)


def latest(mod: ModuleType, criterion: str) -> set[str]:
    """The revisions of ``criterion`` that no later revision revises: those that judge
    the claim now, which the ledger may not leave out."""
    ids = chain(mod, criterion)
    revised = {revisions(mod)[rid].original for rid in ids}
    return {rid for rid in ids if rid not in revised}


def rows_of(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The registered row, then each revision's."""
    return [entry, *(entry.get("revisions") or [])]


def _placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def _row_problems(mod: ModuleType, row: Mapping[str, Any], where: str) -> list[str]:
    cid = row.get("criterion")
    stat = getattr(mod, "STATISTIC_GLUE", {})
    verdict = getattr(mod, "VERDICT_GLUE", {})
    if cid not in stat or cid not in verdict:
        return [f"{where}: the chapter names no glue keys for criterion {cid!r} "
                "(STATISTIC_GLUE and VERDICT_GLUE)"]
    out = []
    effect = list(row.get("effect") or [])
    if sorted(effect) != sorted(stat[cid]):
        out.append(f"{where}: effect {effect} is not the statistic of {cid} "
                   f"{list(stat[cid])}")
    if row.get("verdict") != verdict[cid]:
        out.append(f"{where}: verdict {row.get('verdict')!r} is not that of {cid} "
                   f"({verdict[cid]!r})")
    wanted = {str(i) for i in range(len(effect))}
    if _placeholders(row.get("effect_text", "")) != wanted:
        out.append(f"{where}: effect_text must place every effect key ({{0}} to "
                   f"{{{{{len(effect) - 1}}}}}) and nothing else")
    return out


def entry_problems(entry: Mapping[str, Any], chapters: Mapping[str, ModuleType]) -> list[str]:
    """What keeps one ledger entry from the policy, in words ([] when nothing)."""
    where = f"claim {entry.get('claim')!r}"
    mod = chapters.get(entry.get("chapter"))
    if mod is None:
        return [f"{where}: chapter {entry.get('chapter')!r} registers no criteria"]
    cid = entry.get("criterion")
    if cid not in registered_ids(mod):
        return [f"{where}: {cid!r} is not a registered criterion of {entry['chapter']} "
                f"({sorted(registered_ids(mod))})"]
    out = _row_problems(mod, entry, where)
    shown = [r.get("criterion") for r in entry.get("revisions") or []]
    out += [f"{where}: {rid!r} is not a revision of {cid}" for rid in shown
            if rid not in chain(mod, cid)]
    out += [f"{where}: revision {rid} judges the claim now and must be shown"
            for rid in sorted(latest(mod, cid) - set(shown))]
    for row in entry.get("revisions") or []:
        if row.get("criterion") in chain(mod, cid):
            out += _row_problems(mod, row, f"{where}, revision {row.get('criterion')}")
    return out


def problems(claims: Iterable[Mapping[str, Any]]) -> list[str]:
    chapters = _chapters()
    return [p for c in claims for p in entry_problems(c, chapters)]


def check(claims: Iterable[Mapping[str, Any]]) -> None:
    found = problems(claims)
    if found:
        raise BookError("the claims ledger does not follow its policy:\n  "
                        + "\n  ".join(found))


def glue_keys(row: Mapping[str, Any]) -> list[str]:
    return [*row["effect"], row["verdict"]]


# ------------------------------------------------------------------ rendering
def fixed_when(mod: ModuleType, cid: str) -> str | None:
    """When a criterion or revision was fixed: the registry's time (None: not
    registered as it reads now)."""
    from ..chapters import registry

    return registry.item_times(getattr(mod, "CHAPTER", mod.__name__.split(".")[-1])).get(cid)


def relative(fixed: str | None, made: Made | None) -> str | None:
    """"before" or "after" the results, or None where their time is not recorded."""
    if made is None or not made.when or fixed is None:
        return None
    return "after" if _time(fixed) > _time(made.when) else "before"


def _results(made: Made) -> str:
    return "these results were made" if made.committed else "this build"


def revision_label(mod: ModuleType, cid: str, made: Made | None) -> str:
    when = relative(fixed_when(mod, cid), made)
    return (f"↳ revision `{cid}`" + (f" (revised {when} {_results(made)})" if when else
                                      " (when these results were made is not recorded)"))


def registered_note(mod: ModuleType, cid: str, made: Made | None) -> str:
    """Said of a registered criterion only where it was fixed after its results: the
    rule is the other way round."""
    return (f" (criterion `{cid}` registered after {_results(made)})"
            if relative(fixed_when(mod, cid), made) == "after" else "")


def _glue(nb: str, key: str) -> str:
    # The trailing ":s" is the format spec; without one the role would split the key.
    return "{glue:text}`" + f"{nb}::{key}:s" + "`"


def _cells(row: Mapping[str, Any], nb: str) -> tuple[str, str]:
    effect = row["effect_text"].format(*(_glue(nb, k) for k in row["effect"]))
    return effect, _glue(nb, row["verdict"])


def table_rows(entry: Mapping[str, Any], made: Made | None = None,
               mod: ModuleType | None = None) -> list[str]:
    """The entry's rows of the ledger table: the claim with its registered verdict in
    bold, then one row per revision shown, marked as such."""
    mod = mod or _chapters()[entry["chapter"]]
    nb = f"notebooks/{entry['chapter']}.ipynb"
    effect, verdict = _cells(entry, nb)
    note = registered_note(mod, entry["criterion"], made)
    lines = [f"| {entry['claim']}{note} | {{cite:t}}`{entry['paper']}` | "
             f"{{doc}}`notebooks/{entry['chapter']}` | {effect} | **{verdict}** |"]
    for row in entry.get("revisions") or []:
        effect, verdict = _cells(row, nb)
        lines.append(f"| {revision_label(mod, row['criterion'], made)} | | | {effect} | "
                     f"{verdict} |")
    return lines


__all__ = ["Made", "chain", "latest", "revisions", "registered_ids", "rows_of",
           "entry_problems", "problems", "check", "glue_keys", "relative",
           "revision_label", "registered_note", "table_rows"]
