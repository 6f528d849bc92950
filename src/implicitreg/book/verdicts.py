"""What a reader sees first on a chapter page: the verdict of each claim the chapter
tests, in one line each, under the claim.

The box is written into the executed notebook when the site is assembled, from the same
data as the claims ledger (``book/claims.yaml`` and the chapter's glue keys, checked by
:mod:`.ledger`): the registered criterion's verdict, the latest revision's beside it, the
statistic it rests on (glue roles, so the numbers are the chapter's own), the scale the
chapter ran at, and a link to the section where the verdict is worked out.

The verdict texts a chapter glues say why a premise failed; where one verdict rests on
another ("no established gap to close (gap: not assessable: ...)") the reason repeats.
:func:`verdict_word` and :func:`failed_premises` give the prose a verdict's phrase and
each failed premise once.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from . import ledger
from ..chapters.criteria import NOT_ASSESSABLE, NOT_REPRODUCED, PARTLY, REPRODUCED

INCONCLUSIVE = "inconclusive"
PHRASES = (PARTLY, NOT_REPRODUCED, NOT_ASSESSABLE, REPRODUCED, INCONCLUSIVE)
BADGES = {REPRODUCED: "success", PARTLY: "warning", NOT_REPRODUCED: "danger",
          NOT_ASSESSABLE: "muted", INCONCLUSIVE: "info"}
BOX_BEGIN, BOX_END = "% verdicts: begin", "% verdicts: end"
WORD_SUFFIX = "_word"
"""A verdict's phrase alone is glued under its key with this suffix (see
``chapter.glue_verdict_digest``)."""


def verdict_word(text: str) -> str:
    """The verdict phrase of a glued verdict, with a short parenthesis kept ("not
    reproduced (the other arm is ahead)"); the whole text where it does not start with
    one (a verdict listed per case)."""
    text = str(text).strip()
    if not text.lower().startswith(PHRASES):
        return text
    return text.split(":", 1)[0].strip()


def _phrase(text: str) -> str:
    low = str(text).strip().lower()
    return next((p for p in PHRASES if low.startswith(p)), "")


_NESTED = re.compile(r"\s*\([\w\s-]+: " + NOT_ASSESSABLE + r"\b.*\)\s*$")


def brief(text: str) -> str:
    """``text`` without the verdict it rests on, quoted at its end ("... (gap: not
    assessable: <that verdict's premise>)"): the prose gives that premise once."""
    return _NESTED.sub("", str(text))


def failed_premises(verdicts: Iterable[str]) -> list[str]:
    """Each reason a verdict is not assessable, once, in the order given: a reason that
    quotes an earlier one (the same premise at one case, or a verdict resting on another)
    is cut to what it adds."""
    reasons: list[str] = []
    for text in verdicts:
        text = str(text).strip()
        if not text.lower().startswith(NOT_ASSESSABLE):
            continue
        reason = brief(text[len(NOT_ASSESSABLE):].lstrip(": ").strip())
        if reason and not any(r in reason or reason in r for r in reasons):
            reasons.append(reason)
    return reasons


# ------------------------------------------------------------------ the box
def _glue(key: str) -> str:
    return "{glue:text}`" + key + "`"


def _badge(word: str) -> str:
    """A coloured badge for a verdict phrase; a verdict given per case stays text."""
    if not _phrase(word):
        return f"*{word}*" if word else "*no verdict glued*"
    kind = BADGES[_phrase(word)]
    # Role content cannot hold a backtick; a verdict phrase has none.
    return "{bdg-" + kind + "}`" + word.replace("`", "'") + "`"


def _effect(row: Mapping[str, Any]) -> str:
    return row["effect_text"].format(*(_glue(k) for k in row["effect"]))


def claim_line(entry: Mapping[str, Any], glued: Mapping[str, str], link: str) -> str:
    """One claim, by its criterion's id (the claim box above states it): the registered
    verdict, the statistic it rests on, the latest revision's verdict beside it (its
    numbers, and every earlier revision's verdict, are in the details and the claims
    ledger: a box that listed them all would push the chapter's first figure down by a
    screen), and the link."""
    word = verdict_word(glued.get(entry["verdict"], ""))
    parts = [f"**{entry['criterion']}** {_badge(word)} {_effect(entry)}"]
    revisions = entry.get("revisions") or []
    if revisions:
        row = revisions[-1]
        earlier = len(revisions) - 1
        revised = verdict_word(glued.get(row["verdict"], ""))
        # Where the registered criterion could not judge and the revision did, the
        # revision's numbers are the ones that decide the claim: the box gives them.
        numbers = f" {_effect(row)}" if _phrase(word) == NOT_ASSESSABLE and \
            _phrase(revised) not in ("", NOT_ASSESSABLE) else ""
        parts.append(f"revision `{row['criterion']}` {_badge(revised)}{numbers}"
                     + (f" ({earlier} earlier revision{'s' if earlier > 1 else ''} in the "
                        "details)" if earlier else ""))
    return "- " + "; ".join(parts) + f" ({link})"


def _listing(values: Any) -> str:
    if isinstance(values, (list, tuple)):
        return ", ".join(str(v) for v in values)
    return "all" if values is None else str(values)


def _qualifier(name: str, suffix: str) -> str:
    """"pilot " for ``pilot_seeds``: what a parameter's prefix says about it."""
    return name[: -len(suffix)].replace("_", " ").strip() + " " if name != suffix.strip("_") else ""


def scale_line(params: Mapping[str, Any]) -> str:
    """The scale the chapter ran at, from its parameters: profile, data set, training
    set sizes and seeds (the box's title: plain text)."""
    parts = [str(params["dataset"])] if params.get("dataset") else []
    for k, v in params.items():
        if k in ("n_train", "n_grid") or k.endswith("_n_train"):
            what = _qualifier(k, "_n_train") if k.endswith("_n_train") else ""
            parts.append(f"{what}n = {_listing(v)}")
        elif k == "seeds" or k.endswith("_seeds"):
            count = len(v) if isinstance(v, (list, tuple)) else 1
            if not count:  # a stage this profile leaves out (no pilot, GD on `seed` alone)
                continue
            parts.append(f"{count} {_qualifier(k, '_seeds')}seed{'s' if count != 1 else ''}")
        elif k == "seed" and "seeds" not in params:
            parts.append("1 seed")
    return f"profile {params.get('profile', '(default)')}: " + ", ".join(parts)


def verdict_box(entries: Iterable[Mapping[str, Any]], glued: Mapping[str, str],
                params: Mapping[str, Any], links: Mapping[str, str]) -> str:
    """The box under the claim (MyST), or "" for a chapter that judges no claim;
    ``links`` maps a criterion to its link text (a ``{ref}`` role)."""
    entries = list(entries)
    if not entries:
        return ""
    lines = [BOX_BEGIN, ":::{admonition} Verdicts at " + scale_line(params),
             ":class: verdicts", ""]
    lines += [claim_line(e, glued, links.get(e["criterion"], "")) for e in entries]
    return "\n".join(lines + [":::", BOX_END, ""])


def strip_box(text: str) -> str:
    """``text`` without a box inserted before (assembling the site twice adds one)."""
    pattern = r"\n\n" + re.escape(BOX_BEGIN) + r".*?" + re.escape(BOX_END)
    return re.sub(pattern, "", text, flags=re.S)


def insert_box(text: str, box: str) -> str:
    """Put ``box`` under the chapter's claim: after the first admonition that is not
    the rerun box, else under the title."""
    text = strip_box(text)
    if not box:
        return text
    lines = text.split("\n")
    start = next((i for i, l in enumerate(lines) if l.startswith(":::{admonition}")
                  and "Rerun this chapter" not in l), None)
    end = None if start is None else next(
        (i for i in range(start + 1, len(lines)) if lines[i].strip() == ":::"), None)
    at = end + 1 if end is not None else (1 if lines and lines[0].startswith("# ") else 0)
    return "\n".join(lines[:at] + ["", *box.rstrip("\n").split("\n")] + lines[at:])


def entries_of(claims: Iterable[Mapping[str, Any]], chapter: str) -> list[Mapping[str, Any]]:
    return [c for c in claims if c.get("chapter") == chapter]


def verdict_keys(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Criterion → the glue keys that paste its verdicts in the prose (registered, then
    revisions; each in full or as its phrase alone)."""
    return {e["criterion"]: [k for r in ledger.rows_of(e)
                             for k in (r["verdict"], r["verdict"] + WORD_SUFFIX)]
            for e in entries}


__all__ = ["verdict_word", "brief", "failed_premises", "claim_line", "scale_line", "verdict_box",
           "insert_box", "strip_box", "entries_of", "verdict_keys", "BOX_BEGIN", "BOX_END",
           "WORD_SUFFIX"]
