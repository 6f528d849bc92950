"""Every chapter's registered criteria in one place; the registry file that says when each
was fixed; the guard that keeps a committed result set from being trained under a design
nobody registered; and the check that committed sets were judged by the criteria they
were made under.

A chapter module of :mod:`implicitreg.chapters` that defines ``CRITERIA`` (and, where a
criterion was changed after results existed, ``REVISIONS``) is found here by itself.

**Registration.** ``implicitreg register CHAPTER --profile PROFILE`` appends to
``results/registry.json`` the chapter's design: the fingerprint of each criterion and
revision (:func:`item_fingerprint`: its text, not its typed dates), the values of the
profile, their joint fingerprint (:func:`design_fingerprint`), the UTC time and the commit
of the chapter module, which must be committed and unmodified. When a criterion was fixed
is the time of the first registration that holds it as it reads now; no time typed into
code counts. Training for a committed profile (``workstation``, ``paper``, ``gpu``) calls
:func:`require_registered` first and refuses while the current design is not registered.

**Sets made before the registry.** Their manifests record the fingerprint of the criteria
as typed then, dates included (field ``criteria``). The registry's entries marked
``"source": "git"`` hold those criteria with the times git gives for their text, and list
the manifest fingerprints they stand for under ``legacy``; the manifests stay as written.

:func:`check_committed` reads every window of every manifest, so a later re-plot cannot
hide an edit: each entry must map to a registration whose criteria still read as they did.

How to register and revise, in short and beside the rules on run keys:
``CONTRIBUTING.md`` at the top of the project.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib
import json
import pkgutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Mapping

import pandas as pd

from . import criteria as _criteria
from .criteria import Criterion, Revision

_NOT_CHAPTERS = {"base", "criteria", "protocol", "registry", "result_sets"}
REGISTRY = Path("results") / "registry.json"
"""The registry file, relative to the project root; under version control."""


class RegistrationError(RuntimeError):
    """A committed result set would be trained under a design that is not registered,
    or a registration was refused."""


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


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ fingerprints
def entries(chapter: str, as_of: str | None = None) -> list[Criterion | Revision]:
    """The chapter's registered criteria, then its revisions; with ``as_of``, only those
    whose typed (legacy) date is at or before that time."""
    mod = chapters()[chapter]
    items: list[Criterion | Revision] = list(mod.CRITERIA) + list(getattr(mod, "REVISIONS", ()))
    if as_of is None:
        return items
    limit = _when(as_of)
    return [c for c in items if _legacy_date(c) and _when(_legacy_date(c)) <= limit]


def _legacy_date(c: Criterion | Revision) -> str:
    return c.registered if isinstance(c, Criterion) else c.date


def criteria_hash(chapter: str, as_of: str | None = None) -> str:
    """Legacy fingerprint of the chapter's criteria and revisions with their typed dates
    (those typed by ``as_of``): what the manifests made before the registry record."""
    return _criteria.criteria_hash(entries(chapter, as_of))


def item_id(c: Criterion | Revision) -> str:
    """A criterion's claim, or the claim of a revision's revised criterion."""
    return c.claim if isinstance(c, Criterion) else c.revised.claim


def item_fingerprint(c: Criterion | Revision) -> str:
    """Fingerprint of what a criterion (or revision) says, without its typed dates: the
    registry, not the code, says when it was fixed."""
    d = dataclasses.asdict(c)
    for x in (d, d.get("revised")):
        if isinstance(x, dict):
            for name in ("registered", "date", "results_before"):
                x.pop(name, None)
    blob = json.dumps(d, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def items(chapter: str) -> dict[str, str]:
    """Claim → fingerprint of each of the chapter's criteria and revisions, as they read
    now."""
    return {item_id(c): item_fingerprint(c) for c in entries(chapter)}


def params_values(chapter: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The chapter's parameter values as its ``Params`` reads them (fields added later at
    their defaults), in a form JSON keeps."""
    mod = chapters()[chapter]
    p = mod.Params.from_values(params) if hasattr(mod, "Params") else None
    if p is None:
        return dict(params)
    return {n: list(v) if isinstance(v, tuple) else v
            for n in mod.Params.names() for v in [getattr(p, n)]}


def design_fingerprint(chapter: str, params: Mapping[str, Any]) -> str:
    """Fingerprint of a chapter's design at a profile: its criteria and revisions as they
    read now, and the parameter values."""
    blob = json.dumps({"items": items(chapter), "params": params_values(chapter, params)},
                      sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ the registry file
def _root(root: Path | None) -> Path | None:
    from ..runs.store import package_checkout, project_root

    return root or project_root() or package_checkout()


def load(root: Path | None = None) -> list[dict[str, Any]]:
    """Every registration, oldest first ([] without a registry file)."""
    root = _root(root)
    f = root / REGISTRY if root is not None else None
    if f is None or not f.is_file():
        return []
    return json.loads(f.read_text()).get("registrations", [])


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                         timeout=30)
    if out.returncode:
        raise RegistrationError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def register(chapter: str, profile: str, root: Path | None = None) -> dict[str, Any]:
    """Append the chapter's current design at ``profile`` to the registry file and return
    the entry. Refused unless the chapter module is committed and unmodified: the
    registration names the commit that holds exactly what was registered."""
    import yaml

    root = _root(root)
    if root is None:
        raise RegistrationError("run this from inside the project")
    known = chapters()
    if chapter not in known:
        raise RegistrationError(f"no chapter {chapter!r} with criteria; one of "
                                f"{sorted(known)}")
    path = Path("src") / "implicitreg" / "chapters" / f"{known[chapter].__name__.split('.')[-1]}.py"
    profiles_file = Path("notebooks") / "profiles" / f"{chapter}.yaml"
    for f in (path, profiles_file):
        if not _git(root, "ls-files", "--", str(f)):
            raise RegistrationError(f"{f} is not committed: commit it, then register")
        if _git(root, "status", "--porcelain", "--", str(f)):
            raise RegistrationError(f"{f} has uncommitted changes: commit them, then "
                                    "register (a registration names the commit that holds "
                                    "exactly what it registers)")
    profiles = yaml.safe_load((root / profiles_file).read_text()) or {}
    if profile not in profiles:
        raise RegistrationError(f"{profiles_file} has no profile {profile!r}")
    params = params_values(chapter, profiles[profile] or {})
    entry = {"chapter": chapter, "profile": profile,
             "fingerprint": design_fingerprint(chapter, params), "items": items(chapter),
             "params": params, "time": _now(), "commit": _git(root, "rev-parse", "HEAD"),
             "source": "register"}
    regs = load(root)
    if any(r.get("fingerprint") == entry["fingerprint"] and r.get("profile") == profile
           for r in regs):
        raise RegistrationError(f"{chapter} at {profile} is registered already with this "
                                f"design ({entry['fingerprint']})")
    f = root / REGISTRY
    f.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(f.read_text()) if f.is_file() else {}
    doc["registrations"] = regs + [entry]
    f.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return entry


def register_command(chapter: str, profile: str) -> str:
    return f"implicitreg register {chapter} --profile {profile}"


def require_registered(chapter: str, profile: str, params: Mapping[str, Any],
                       root: Path | None = None) -> None:
    """The guard every path that trains a committed result set calls first (book driver
    and command line, the GPU edition, a notebook run by hand): raises
    :class:`RegistrationError`, naming the command to run, unless the chapter's design at
    these parameters is registered. Other profiles, and chapters without criteria, pass."""
    from ..runs.committed import COMMITTED_PROFILES

    if profile not in COMMITTED_PROFILES or chapter not in chapters():
        return
    fp = design_fingerprint(chapter, params)
    if any(r.get("fingerprint") == fp for r in load(root)):
        return
    raise RegistrationError(
        f"{chapter} at the committed profile {profile!r}: its design (criteria, revisions "
        f"and parameters, fingerprint {fp}) is not registered, so its runs may not start. "
        f"Commit the chapter module and its profile, then run `{register_command(chapter, profile)}` "
        "and commit results/registry.json (or re-plot without training: "
        "IMPLICITREG_NO_TRAIN=1)")


def item_times(chapter: str, root: Path | None = None) -> dict[str, str]:
    """Claim → the time of the first registration that holds it as it reads now (absent:
    not registered in its present form)."""
    now = items(chapter)
    out: dict[str, str] = {}
    for r in sorted((r for r in load(root) if r.get("chapter") == chapter),
                    key=lambda r: _when(r["time"])):
        for claim, fp in r.get("items", {}).items():
            if now.get(claim) == fp and claim not in out:
                out[claim] = r["time"]
    return out


def _registration_of(chapter: str, entry: Mapping[str, Any],
                     regs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The registration a manifest entry was made under: by its design fingerprint, or,
    for a set made before the registry, by the legacy fingerprint it recorded."""
    for r in regs:
        if r.get("chapter") != chapter:
            continue
        if entry.get("design") and r.get("fingerprint") == entry["design"]:
            return r
        if entry.get("criteria") and entry["criteria"] in r.get("legacy", ()):
            return r
    return None


# ------------------------------------------------------------------ committed sets
def committed_entries(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(profile, chapter entry) of every window of every committed result set's manifest
    (a chapter's earlier windows too: a re-plot adds a window, it does not replace one)."""
    out = []
    for manifest in sorted((Path(root) / "results").glob("*/manifest.json")):
        doc = json.loads(manifest.read_text())
        windows = doc.get("windows") or [{"chapters": doc.get("chapters", [])}]
        for w in windows:
            for entry in w.get("chapters", []):
                out.append((manifest.parent.name,
                            {**entry, "window": entry.get("window", w.get("created"))}))
    return out


def check_committed(root: Path) -> list[str]:
    """What is wrong with the committed result sets' record, in words ([] when nothing):
    a window of a registered chapter that maps to no registration, a criterion registered
    for a set that no longer reads as registered (edited instead of revised), or a
    criterion of a chapter with a committed set that no registration holds."""
    known = chapters()
    regs = load(root)
    f = Path(root) / REGISTRY
    # Windows made before sets recorded any fingerprint, each listed with why.
    exempt = {(x["profile"], x["chapter"], x["window"]) for x in (
        json.loads(f.read_text()).get("unfingerprinted", []) if f.is_file() else [])}
    problems = []
    with_sets = set()
    for profile, e in committed_entries(root):
        chapter = e.get("chapter")
        if chapter not in known or e.get("status") != "complete":
            continue
        with_sets.add(chapter)
        where = f"results/{profile} ({chapter}, window {e.get('window')})"
        if "design" not in e and "criteria" not in e and (profile, chapter, e.get("window")) not in exempt:
            problems.append(f"{where}: records no criteria fingerprint")
            continue
        if "design" not in e and "criteria" not in e:
            continue
        r = _registration_of(chapter, e, regs)
        if r is None:
            problems.append(f"{where}: made under {e.get('design') or e.get('criteria')}, "
                            "which no registration of results/registry.json holds")
            continue
        now = items(chapter)
        for claim, fp in r.get("items", {}).items():
            if now.get(claim) != fp:
                problems.append(
                    f"{where}: criterion {claim!r} was registered as {fp} and now reads "
                    f"as {now.get(claim, 'missing')}: a criterion was edited instead of "
                    "revised after the runs")
    for chapter in sorted(with_sets):
        missing = sorted(set(items(chapter)) - set(item_times(chapter, root)))
        if missing:
            problems.append(f"{chapter}: {missing} read as no registration holds them: "
                            f"edited or added without `{register_command(chapter, 'workstation')}`")
    return problems


# ------------------------------------------------------------------ when runs were made
def made(chapter: str, profile: str, root: Path | None = None) -> dict[str, Any] | None:
    """The committed result set's entry for ``chapter`` at ``profile`` (None when the
    profile's runs are not a committed set)."""
    from ..runs.committed import committed_entry
    from ..runs.store import project_root

    root = root or project_root()
    return committed_entry(root, profile, chapter) if root is not None else None


def _results(obj: Any) -> Iterable[Any]:
    """Every run in a collection of runs, (label, run) pairs, lists and dicts of them."""
    if hasattr(obj, "provenance"):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _results(v)
    elif isinstance(obj, (list, tuple)) or hasattr(obj, "__iter__") and not isinstance(obj, str):
        for v in obj:
            yield from _results(v)


def run_interval(results: Iterable[Any]) -> tuple[str, str] | None:
    """(first start, last end) of the runs, from their provenance: a run's ``created`` is
    when it finished, so it started ``wall_time_s`` before."""
    starts, ends = [], []
    for r in _results(results):
        prov = getattr(r, "provenance", None) or {}
        if "created" not in prov:
            continue
        end = _when(prov["created"])
        starts.append(end - _dt.timedelta(seconds=float(prov.get("wall_time_s") or 0)))
        ends.append(end)
    if not ends:
        return None
    fmt = lambda t: t.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")  # noqa: E731
    return fmt(min(starts)), fmt(max(ends))


def _span(interval: tuple[str, str]) -> str:
    a, b = (x.replace("T", " ").replace("+00:00", "") for x in interval)
    return f"{a}–{b[11:] if a[:10] == b[:10] else b} UTC"


def made_text(chapter: str, profile: str, results: Iterable[Any] = (),
              root: Path | None = None) -> str:
    """When and where the runs of this page were made, in words: the interval from the
    runs' own provenance, and for a committed set where it was recorded."""
    interval = run_interval(results)
    e = made(chapter, profile, root)
    when = _span(interval) if interval else "in the build of this page"
    if e is None:
        return (f"{when}, at the `{profile}` profile (trained in this build or loaded from "
                "its run store)")
    return f"{when} for the committed `{profile}` result set ({e.get('device', 'device not recorded')})"


def made_table(chapter: str, profile: str, judged: Mapping[str, Iterable[Any]] | None = None,
               root: Path | None = None) -> pd.DataFrame:
    """Each criterion and revision: when the registry says it was fixed, the first run it
    judges (``judged``: claim → its runs; a claim not named judges every run given under
    the key ``"*"``) and whether it was fixed before that run started."""
    times = item_times(chapter, root)
    judged = dict(judged or {})
    rows = []
    for c in entries(chapter):
        claim = item_id(c)
        fixed = times.get(claim)
        runs = judged.get(claim, judged.get("*", ()))
        interval = run_interval(runs)
        first = interval[0] if interval else None
        if fixed is None:
            verdict = "not registered in its present form"
        elif first is None:
            verdict = "no run judged yet"
        elif _when(fixed) <= _when(first):
            verdict = "yes"
        else:
            verdict = ("no: a recorded revision" if isinstance(c, Revision) else
                       "no: registered after its first run")
        rows.append({"criterion": claim, "kind": "revision" if isinstance(c, Revision)
                     else "registered",
                     "fixed (registry)": (fixed or "–").replace("T", " "),
                     "first run it judges": (first or "–").replace("T", " "),
                     "fixed before its runs": verdict})
    return pd.DataFrame(rows).set_index("criterion")


__all__ = ["chapters", "entries", "criteria_hash", "item_id", "item_fingerprint", "items",
           "design_fingerprint", "params_values", "load", "register", "require_registered",
           "RegistrationError", "item_times", "committed_entries", "check_committed",
           "made", "run_interval", "made_text", "made_table", "REGISTRY"]
