"""The one protocol every chapter module speaks, so that its notebook, the result sets of
:mod:`.result_sets`, the GPU edition and the book driver drive any chapter alike.

A chapter module provides:

- ``CHAPTER``: its name (that of its notebook and of its profile file);
- ``Params``: a frozen :class:`~.base.ChapterParams` dataclass whose named instances are
  the profiles of ``notebooks/profiles/<chapter>.yaml``;
- ``design(params)``: the runs fixed before any result exists. A chapter whose later runs
  depend on earlier results (a pilot chooses the confirmation's cells) says how in
  ``STAGED``; its ``design``, where it has one, is the first stage;
- ``run(params, **options)``: every run of the chapter, each loaded from the run store or
  trained, as :class:`ChapterRuns`. ``options`` are those of
  :func:`~implicitreg.runs.sweeps.run_labeled`: ``exec_config``, ``store``,
  ``progress``;
- ``analyze(runs, params)``: tables, ``verdicts`` (claim → verdict) and ``glue`` values;
- ``summary(analysis, params) -> dict[str, str]``: the set's headline in words and the
  verdict of each claim (one column of :func:`.result_sets.side_by_side`); a chapter
  whose summary is the verdicts alone binds :func:`verdict_summary`;
- ``scale_description(params) -> str``: what the runs were, for the sentence on the scale
  a build ran at;
- ``figures(analysis, runs, params) -> dict[str, callable]``: name → a callable without
  arguments that draws one of the chapter's figures and returns it (drawn on demand, as
  some re-measure the trained networks).

:func:`problems` says where a module falls short; ``tests/test_protocol.py`` runs it over
every chapter of :func:`.registry.chapters`. Which parts of a chapter module are
registered and which are free to edit: ``CONTRIBUTING.md``.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, Protocol, runtime_checkable

from .base import ChapterParams


@runtime_checkable
class ChapterRuns(Protocol):
    """What a chapter's ``run`` returns: whatever its ``analyze`` reads, and every run as
    (label, result) pairs."""

    def all(self) -> list[tuple[Any, Any]]:
        ...


@runtime_checkable
class Chapter(Protocol):
    """A chapter module (see the module docstring; ``design`` or ``STAGED`` is checked
    apart, as a module may have either)."""

    CHAPTER: str
    Params: type

    def run(self, params: Any, **options: Any) -> ChapterRuns:
        ...

    def analyze(self, runs: Any, params: Any) -> Any:
        ...

    def summary(self, analysis: Any, params: Any) -> dict[str, str]:
        ...

    def scale_description(self, params: Any) -> str:
        ...

    def figures(self, analysis: Any, runs: Any, params: Any) -> dict[str, Callable[[], Any]]:
        ...


class RunSet(dict):
    """Label → result, for a chapter whose runs form one list: the mapping its analysis
    reads, which also lists its (label, result) pairs as a staged chapter's runs do."""

    def all(self) -> list[tuple[Any, Any]]:
        return list(self.items())


class ProtocolError(TypeError):
    """A chapter module does not provide what :mod:`.protocol` asks of it."""


# name → how many positional arguments the protocol passes
_CALLS = {"run": 1, "analyze": 2, "summary": 2, "scale_description": 1, "figures": 3}


def _accepts(fn: Callable, positional: int, options: bool) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind(*range(positional))
    except TypeError:
        return False
    kinds = {p.kind for p in sig.parameters.values()}
    return not options or inspect.Parameter.VAR_KEYWORD in kinds


def problems(mod: ModuleType) -> list[str]:
    """What keeps ``mod`` from speaking the protocol, in words ([] when nothing)."""
    name = getattr(mod, "__name__", repr(mod))
    out = []
    if not isinstance(getattr(mod, "CHAPTER", None), str):
        out.append(f"{name}: no CHAPTER name")
    params = getattr(mod, "Params", None)
    if not (isinstance(params, type) and issubclass(params, ChapterParams)
            and dataclasses.is_dataclass(params)):
        out.append(f"{name}: Params is not a ChapterParams dataclass")
    elif params.CHAPTER != getattr(mod, "CHAPTER", None):
        out.append(f"{name}: Params.CHAPTER {params.CHAPTER!r} is not CHAPTER")
    if not callable(getattr(mod, "design", None)) and not getattr(mod, "STAGED", ""):
        out.append(f"{name}: neither design(params) nor STAGED (why the design is staged)")
    for fn, positional in _CALLS.items():
        f = getattr(mod, fn, None)
        if not callable(f):
            out.append(f"{name}: no {fn}()")
        elif not _accepts(f, positional, options=fn == "run"):
            out.append(f"{name}: {fn}() does not take {positional} positional argument(s)"
                       + (" and **options" if fn == "run" else ""))
    return out


def check(mod: ModuleType) -> ModuleType:
    """``mod`` itself, once it speaks the protocol; :class:`ProtocolError` otherwise."""
    bad = problems(mod)
    if bad:
        raise ProtocolError("; ".join(bad))
    return mod


def load(chapter: str) -> ModuleType:
    """The module of ``chapter`` (``implicitreg.chapters.<chapter>``), checked."""
    from .. import chapters as pkg

    return check(importlib.import_module(f"{pkg.__name__}.{chapter}"))


def find(chapter: str) -> ModuleType | None:
    """The module of ``chapter`` (``implicitreg.chapters.<chapter>``), unchecked, or None
    when there is none (a notebook of the book without a chapter module); an import that
    fails inside an existing module is raised."""
    from .. import chapters as pkg

    name = f"{pkg.__name__}.{chapter}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists and lacks something: say so
            raise
        return None


def verdict_summary(analysis: Any, params: Any = None) -> dict[str, str]:
    """Claim → its verdict with the numbers behind it, for every criterion and revision
    an analysis judged (the claims part of a chapter's ``summary``).

    It takes the arguments of ``summary(analysis, params)`` (``params`` unused), so a
    chapter whose summary is its verdicts and nothing more binds it as its own:
    ``summary = verdict_summary``."""
    return {claim: v.text for claim, v in analysis.verdicts.items()}


def verdict_glue(verdicts: Mapping[str, Any], verdict_keys: Mapping[str, str],
                 detail_keys: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The glue of a chapter's verdicts (criterion id → :class:`~.criteria.Verdict`), in the
    order of ``verdict_keys``: each verdict word under its key there (the module's
    ``VERDICT_GLUE``), then its numbers (``detail``) under each of its keys in
    ``detail_keys`` (its ``STATISTIC_GLUE``, where each statistic key glues the detail)."""
    g: dict[str, str] = {}
    for claim, key in verdict_keys.items():
        g[key] = verdicts[claim].verdict
        g.update({k: verdicts[claim].detail for k in detail_keys.get(claim, ())})
    return g


__all__ = ["Chapter", "ChapterRuns", "RunSet", "ProtocolError", "problems", "check",
           "load", "find", "verdict_summary", "verdict_glue"]
