"""What every chapter module shares: its parameters as a frozen dataclass whose named
instances are the profiles of ``notebooks/profiles/<chapter>.yaml``.

A chapter defines ``@dataclass(frozen=True) class Params(ChapterParams)`` with a
docstring per field and ``CHAPTER = "<name>"``; :meth:`ChapterParams.profile` then gives
exactly a named profile's values plus the overrides, and refuses a profile that misses a
field or names one the dataclass does not have.

Which parts of a chapter module are registered and which are free to edit:
``CONTRIBUTING.md`` at the top of the project (the whole module: :mod:`.protocol`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import fields
from typing import Any, ClassVar, Mapping, TypeVar

P = TypeVar("P", bound="ChapterParams")


def profiles(chapter: str) -> dict[str, dict[str, Any]]:
    """The raw profiles of ``notebooks/profiles/<chapter>.yaml``."""
    import yaml

    from ..runs.store import package_checkout
    from ..runs.store import project_root

    for root in (project_root(), package_checkout()):
        if root is not None:
            f = root / "notebooks" / "profiles" / f"{chapter}.yaml"
            if f.is_file():
                return yaml.safe_load(f.read_text()) or {}
    raise FileNotFoundError(f"notebooks/profiles/{chapter}.yaml not found")


class ChapterParams:
    """Mixin of a chapter's frozen parameter dataclass."""
    CHAPTER: ClassVar[str] = ""

    def _tuples(self, *names: str) -> None:
        """Store list values of ``names`` as tuples (YAML and papermill give lists), so
        that the instance stays hashable and compares equal across sources."""
        for name in names:
            v = getattr(self, name)
            if isinstance(v, list):
                object.__setattr__(self, name, tuple(v))

    def _positive_ints(self, *names: str) -> None:
        """Refuse, with the field's name, a value of ``names`` that is not an integer >= 1."""
        for name in names:
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ValueError(f"Params.{name} = {v!r}: an integer >= 1")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def required(cls) -> list[str]:
        """Fields without a default. A field added to a chapter's design later takes a
        default that reproduces the design before it, so that parameters recorded with
        an earlier result set still describe that set."""
        return [f.name for f in fields(cls) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]

    @classmethod
    def from_values(cls: type[P], values: Mapping[str, Any]) -> P:
        """From a mapping that holds every required field (extra keys, such as the
        notebook's ``profile``, are ignored)."""
        missing = [n for n in cls.required() if n not in values]
        if missing:
            raise ValueError(f"{cls.CHAPTER}: no value for {missing}")
        return cls(**{n: values[n] for n in cls.names() if n in values})

    @classmethod
    def profile(cls: type[P], name: str, **overrides: Any) -> P:
        """The named profile's values plus ``overrides``, checked: a profile must give
        every required field and nothing else."""
        raw = profiles(cls.CHAPTER)
        if name not in raw:
            raise KeyError(f"{cls.CHAPTER}: no profile {name!r}; it has {sorted(raw)}")
        values = dict(raw[name] or {})
        unknown = sorted(set(values) - set(cls.names()))
        missing = sorted(set(cls.required()) - set(values))
        if unknown or missing:
            raise ValueError(f"{cls.CHAPTER} profile {name!r}: unknown {unknown}, "
                             f"missing {missing}")
        bad = sorted(set(overrides) - set(cls.names()))
        if bad:
            raise ValueError(f"{cls.CHAPTER}: unknown parameter(s) {bad}")
        return cls(**{**values, **overrides})

    def replace(self: P, **changes: Any) -> P:
        return dataclasses.replace(self, **changes)


__all__ = ["ChapterParams", "profiles"]


# ------------------------------------------------------------------ a set still training
def committed_count(pairs: list, options: Mapping[str, Any]) -> int:
    """How many of ``pairs`` ((label, config) as a design gives them) the run store of
    ``options`` holds, each looked up alone with training off, so that a missing run
    neither hides the others nor starts training."""
    from ..runs.execution import resolve
    from ..runs.runner import MissingRunError
    from ..runs.sweeps import run_labeled

    off = {**options, "exec_config": resolve(options.get("exec_config")).replace(
        no_train=True, progress=False)}
    n = 0
    for pair in pairs:
        try:
            run_labeled([pair], **off)
            n += 1
        except MissingRunError:
            pass
    return n


def still_training(parts: list[str]) -> str:
    """The premise a stage's claims fail while its runs train (a re-plot without
    training of a committed set that a later stage is still being added to)."""
    return ("its runs are still training (committed so far: " + ", ".join(parts)
            + "); its verdicts follow once they are all in")
