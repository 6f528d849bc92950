"""Every result set of a chapter side by side: the runs of this build and each committed
set (``results/<profile>/``), re-read without training, each with its scale, the
premises at its headline cell and the verdicts of the chapter's current criteria.

Every chapter takes part through the chapter protocol (:mod:`.protocol`): its ``Params``,
``run``, ``analyze``, ``summary`` (the headline cell in words and the verdict of each
claim) and ``scale_description``. The published build shows one set in detail and this
table for all of them, so no set is dropped for another.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from .protocol import check


def committed_profiles(chapter: str, root: Path | None = None,
                       mod: ModuleType | None = None) -> list[dict[str, Any]]:
    """Manifest entries of the committed sets that hold ``chapter`` complete: each
    profile's latest, then any earlier entry of that profile made with other recorded
    parameters (a design the latest superseded), newest first."""
    import json

    from ..runs.committed import COMMITTED_PROFILES, committed_entry
    from ..runs.store import project_root

    root = root or project_root()
    if root is None:
        return []
    out = []
    for prof in COMMITTED_PROFILES:
        e = committed_entry(root, prof, chapter)
        if e is None or e.get("status") != "complete":
            continue
        store = root / "results" / prof / "runs"
        out.append({**e, "profile": prof, "store": store, "label": prof})

        def norm(params: dict[str, Any] | None) -> Any:
            # parameters compared as the chapter reads them (later fields at defaults)
            return recorded_values(mod, params) if mod is not None and params else params

        seen = [norm(e.get("params"))]
        manifest = json.loads((root / "results" / prof / "manifest.json").read_text())
        for w in reversed(manifest.get("windows", [])):
            for old in w.get("chapters", []):
                if (old.get("chapter") == chapter and old.get("status") == "complete"
                        and old.get("params") and norm(old["params"]) not in seen):
                    seen.append(norm(old["params"]))
                    out.append({**old, "window": w["created"], "device": w["device"],
                                "profile": prof, "store": store,
                                "label": f"{prof}, made {w['created'][:10]} (superseded)"})
    return out


def recorded_values(mod: ModuleType, recorded: dict[str, Any]) -> dict[str, Any]:
    """Every parameter of the chapter for a set that recorded ``recorded``: a field added
    to the design after the set was made takes its default, the design before it."""
    p = mod.Params.from_values(recorded)
    return {n: list(v) if isinstance(v, tuple) else v
            for n in mod.Params.names() for v in [getattr(p, n)]}


def reread(mod: ModuleType, profile: str, store: Path,
           recorded: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """(params, analysis) of a committed set, loaded from its store; nothing trains. The
    parameters are those the manifest recorded for the set, else the profile's."""
    from ..runs.execution import ExecConfig

    check(mod)
    p = mod.Params.from_values(recorded) if recorded else mod.Params.profile(profile)
    runs = mod.run(p, store=store, progress=False,
                   exec_config=ExecConfig(no_train=True, progress=False))
    return p, mod.analyze(runs, p)


def side_by_side(mod: ModuleType, here: tuple[str, Any, Any] | None = None,
                 root: Path | None = None) -> pd.DataFrame:
    """One column per result set: this build's (``here`` = (profile, params, analysis)), then
    every committed set of the chapter not already shown. A set that cannot be re-read
    says why instead of being left out."""
    check(mod)
    rows = []
    if here is not None:
        prof, p, a = here
        rows.append({"result set": f"{prof} (this page)", "made": "this build",
                     "scale": mod.scale_description(p), **mod.summary(a, p)})
    mine = None
    if here is not None:
        mine = {n: list(v) if isinstance(v, tuple) else v
                for n in mod.Params.names() for v in [getattr(here[1], n)]}
    for e in committed_profiles(mod.CHAPTER, root, mod):
        # this page's own set is its first column; a committed set made otherwise (an
        # earlier design, or a set the page is not re-plotting) keeps a column of its own
        if mine is not None and e["profile"] == here[0] and (
                not e.get("params") or recorded_values(mod, e["params"]) == mine):
            continue
        if here is not None and e["label"] == here[0]:  # the profile's set, another design
            e = {**e, "label": f"{e['profile']}, made {e['window'][:10]}"}
        made = f"{e['window'].replace('T', ' ')}, {e['device']}"
        try:
            p, a = reread(mod, e["profile"], e["store"], e.get("params"))
        except Exception as err:  # a set the engine can no longer read is reported
            rows.append({"result set": e["label"], "made": made,
                         "scale": f"could not be re-read: {err}"})
            continue
        rows.append({"result set": e["label"], "made": made,
                     "scale": mod.scale_description(p), **mod.summary(a, p)})
    # the sets as columns, so that each row (scale, verdict of a claim) reads across them
    return pd.DataFrame(rows).set_index("result set").T if rows else pd.DataFrame()


__all__ = ["committed_profiles", "recorded_values", "reread", "side_by_side"]
