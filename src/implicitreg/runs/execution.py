"""Where and how runs execute: one dataclass, read from the environment in one place.

Every ``IMPLICITREG_*`` variable is named in this module (:data:`ENV`,
:data:`BUILD_ENV`) and read by it. The entry points build an :class:`ExecConfig` from
their options over those variables (:meth:`ExecConfig.from_env`): the command line
(``cli.py``) and the book driver's :func:`~implicitreg.book.driver.build_book`. From
there it travels as a value: to a chapter's kernel as its ``exec_config`` parameter
(every field, :func:`as_parameter`; the kernel reads it back with :func:`from_parameter`
and nothing else), to a chapter module's ``run``, to
:func:`~implicitreg.runs.sweeps.run_many` and :func:`~implicitreg.runs.runner.run` as an
argument, to worker processes and Ray tasks pickled. A store left ``None`` is the
project's (:func:`~implicitreg.runs.store.project_store_root`), not a variable read
again. A call that is its own entry point gets the shell's settings for what it was not
given: a script calling ``implicitreg.run(cfg)`` (:func:`resolve`), a notebook run by
hand with plain papermill or Jupyter (:func:`from_parameter` with some or no fields). The engine keeps per-process settings of its own
(where the data is, the native kernel): :meth:`ExecConfig.apply` hands them over, so the
engine reads no variable. None of these settings changes what a run computes, so none is
part of a run key (the data folders decide which files are read, and the key holds that
data source itself). ``tests/test_settings.py`` keeps every other module from reading the
environment.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..engine.config import ConfigError
from ..engine.config import parse_bool as _parse_bool

BACKENDS = ("local", "ray")

# Field -> environment variable. The names are part of the user interface (README).
ENV = {
    "backend": "IMPLICITREG_SWEEP_BACKEND",
    "workers": "IMPLICITREG_SWEEP_WORKERS",
    "batch": "IMPLICITREG_SWEEP_BATCH",
    "ray_address": "IMPLICITREG_RAY_ADDRESS",
    "ray_gpus": "IMPLICITREG_RAY_GPUS",
    "store_root": "IMPLICITREG_RESULTS",
    "no_train": "IMPLICITREG_NO_TRAIN",
    "progress": "IMPLICITREG_PROGRESS",
    "native_kernel": "IMPLICITREG_NATIVE",
    "kernel_march": "IMPLICITREG_KERNEL_MARCH",
    "deadline": "IMPLICITREG_DEADLINE",
    "data_root": "IMPLICITREG_DATA",
    "offline_data": "IMPLICITREG_OFFLINE_DATA",
    "no_download": "IMPLICITREG_NO_DOWNLOAD",
}
# Settings of the book's HTML build, not of runs (read by :func:`build_setting`).
BUILD_ENV = {
    "mathjax_dir": "IMPLICITREG_MATHJAX_DIR",
}
_BOOLS = ("batch", "no_train", "progress", "native_kernel", "no_download")


class ExecError(ConfigError):
    """An execution setting has a value that is not allowed."""


def parse_bool(text: str, name: str) -> bool:
    """:func:`~implicitreg.engine.config.parse_bool`, refusing with an ExecError."""
    return _parse_bool(text, name, ExecError)


@dataclass(frozen=True)
class ExecConfig:
    """Where and how runs execute and where their inputs and outputs live; no field
    changes a number (see the module docstring for how it travels)."""
    backend: str = "local"
    """``local`` (this process, or ``workers`` local processes) or ``ray`` (one Ray task
    per batch or single run)."""
    workers: int = 1
    """Local worker processes for lists of runs; each gets its share of the CPU threads."""
    batch: bool | None = None
    """Train compatible runs as one vmapped model: ``None`` where it pays (always on an
    accelerator, on a CPU for small models), or forced on/off."""
    ray_address: str | None = None
    """Address of a Ray cluster (``ray://head:10001``); ``None`` starts a local instance."""
    ray_gpus: float = 0.0
    """GPUs each Ray task asks for."""
    store_root: str | None = None
    """Run-store folder; ``None``: ``results/runs`` of the project (or of the working
    directory outside one)."""
    no_train: bool = False
    """Refuse to train: a run missing from the store is an error (re-plotting committed
    result sets)."""
    progress: bool = True
    """Progress bars (tqdm) on long runs and lists of runs."""
    native_kernel: bool = True
    """Use the compiled winsorization kernel where it applies (same numbers, faster)."""
    kernel_march: str = "native"
    """``-march`` the kernel is built for: ``native``, or e.g. ``haswell`` to time the
    AVX2 build on an AVX-512 machine (every width gives the same numbers)."""
    deadline: float | None = None
    """Unix time after which a training run writes its checkpoint and stops with
    :class:`~implicitreg.engine.training.DeadlineReached` (short GPU windows: the next
    window resumes from the checkpoint)."""
    data_root: str | None = None
    """Folder of the datasets and their decode cache (a run's own ``RunConfig.data_root``
    wins); ``None``: the folder the process already uses, at first
    ``~/.cache/implicitreg``."""
    offline_data: str | None = None
    """Folder of the offline data archives; ``None``: the folder the process already
    uses, at first a ``shared/data`` folder found next to the project."""
    no_download: bool | None = None
    """Forbid torchvision's download of missing data; ``None``: as the process already
    does, at first downloads are allowed."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ExecError(f"backend {self.backend!r} is not allowed: one of {BACKENDS}")
        if self.workers < 1:
            raise ExecError(f"workers = {self.workers} is not allowed: an integer >= 1")
        if self.ray_gpus < 0:
            raise ExecError(f"ray_gpus = {self.ray_gpus} is not allowed: a number >= 0")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any
                 ) -> "ExecConfig":
        """Settings from the ``IMPLICITREG_*`` variables, then ``overrides`` that are not
        ``None`` (explicit arguments win over the environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV[f.name], "")
            if raw == "":
                continue
            if f.name in _BOOLS:
                values[f.name] = parse_bool(raw, ENV[f.name])
            elif f.name == "workers":
                values[f.name] = int(raw)
            elif f.name in ("ray_gpus", "deadline"):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def store_path(self) -> Path | None:
        return None if self.store_root is None else Path(self.store_root).expanduser()

    def replace(self, **changes: Any) -> "ExecConfig":
        return dataclasses.replace(self, **changes)

    def apply(self) -> None:
        """Hand the engine the settings it keeps per process: where the data is, whether
        it may be downloaded, and the native kernel. Data settings left ``None`` keep
        what the process uses, so a config built in code (``ExecConfig(no_train=True)``)
        does not undo those of the entry point."""
        from ..engine import data, native

        data.configure(root=self.data_root, offline=self.offline_data,
                       download=None if self.no_download is None else not self.no_download)
        native.set_enabled(self.native_kernel)
        native.set_target(self.kernel_march)


def resolve(exec_config: ExecConfig | None) -> ExecConfig:
    """The settings a caller passed; for a library call that passed none (a script
    calling ``implicitreg.run(cfg)``), those of the shell's ``IMPLICITREG_*`` variables,
    so that they hold there as they do under the command line."""
    return exec_config if exec_config is not None else ExecConfig.from_env()


FIELDS = tuple(f.name for f in dataclasses.fields(ExecConfig))
"""The fields of :class:`ExecConfig`, in order."""


def as_parameter(ex: ExecConfig) -> dict[str, Any]:
    """``ex`` as a chapter's ``exec_config`` parameter: every field, ``None`` included,
    so that the kernel receives the whole value (:func:`from_parameter`)."""
    return {f: getattr(ex, f) for f in FIELDS}


def from_parameter(given: Mapping[str, Any]) -> ExecConfig:
    """A chapter's ``exec_config`` parameter as an :class:`ExecConfig`. One that names
    every field (the book driver's, :func:`as_parameter`) is the value itself: nothing
    is read. One that names some fields or none comes from a notebook run by hand (plain
    papermill, Jupyter), its own entry point: the fields it leaves out are the shell's
    ``IMPLICITREG_*`` variables, as for any run started by hand."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise ExecError(f"exec_config: unknown field(s) {unknown}; the fields are "
                        f"{list(FIELDS)}")
    if is_complete(given):
        return ExecConfig(**given)
    return ExecConfig.from_env(**given)


def is_complete(given: Mapping[str, Any] | None) -> bool:
    """Whether an ``exec_config`` parameter is a whole :class:`ExecConfig` (every field:
    what the book driver passes), rather than a few settings given by hand."""
    return isinstance(given, Mapping) and set(given) == set(FIELDS)


def build_setting(name: str, environ: dict[str, str] | None = None) -> str | None:
    """A setting of the book's HTML build (a key of :data:`BUILD_ENV`) from the shell;
    ``None`` when it is not set."""
    value = (os.environ if environ is None else environ).get(BUILD_ENV[name], "")
    return value or None


def in_environment(field: str, environ: dict[str, str] | None = None) -> bool:
    """Whether the shell sets the variable of ExecConfig field ``field``."""
    return (os.environ if environ is None else environ).get(ENV[field], "") != ""


@contextlib.contextmanager
def environment(values: dict[str, str], defaults: dict[str, str] | None = None
                ) -> Iterator[None]:
    """Set environment variables for the duration of a block (a papermill kernel and
    the processes it starts inherit them), then restore them; ``defaults`` are set only
    where the shell leaves them unset."""
    values = {**{k: v for k, v in (defaults or {}).items() if k not in os.environ},
              **values}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
