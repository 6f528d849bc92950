"""The run store: ``results/runs/<key>/`` holds one finished run.

The key is a hash of the result-determining config fields, the data source and the
engine's ``NUMERICS_VERSION`` (bumped by hand when numbers change, guarded by the golden
tests), so a refactor of the engine leaves stored and committed runs valid. A run directory is written under a temporary name and
renamed into place, so a half-written run is never seen as finished. Each file's
sha256 is kept in ``provenance.json``; a file that fails it is reported and the run is
recomputed, not loaded. A lock file keeps two processes from computing one run at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..engine import NUMERICS_VERSION
from ..engine.config import RunConfig

METRIC_COLUMNS = ["run", "step", "epoch", "split", "metric", "value"]


def run_key(cfg: RunConfig, data_source: str, numerics: int | None = None) -> str:
    """The store key: same key, same numbers (see :mod:`implicitreg.engine`)."""
    version = NUMERICS_VERSION if numerics is None else numerics
    payload = json.dumps({"config": cfg.key_dict(), "numerics_version": version,
                          "data_source": data_source}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def project_root(start: Path | None = None) -> Path | None:
    """The nearest ancestor holding both ``_config.yml`` and ``src/implicitreg``."""
    here = (start or Path.cwd()).resolve()
    for anc in [here, *here.parents]:
        if (anc / "_config.yml").is_file() and (anc / "src" / "implicitreg").is_dir():
            return anc
    return None


def package_checkout() -> Path | None:
    """The repository the installed package lives in (an editable install from a
    clone), or None for a plain installation."""
    here = Path(__file__).resolve()
    for anc in here.parents:
        if (anc / "notebooks").is_dir() and (anc / "src" / "implicitreg").is_dir():
            return anc
    return None


def locate_notebook(notebook: str) -> Path | None:
    """The chapter's source notebook, whatever the working directory: tried in the
    working directory (and its ``notebooks/``), in the project found above it, then in
    the repository the installed package comes from. None when none holds it (Colab,
    or a notebook downloaded on its own)."""
    name = Path(notebook).name
    cwd = Path.cwd()
    candidates = [Path(notebook), cwd / name, cwd / "notebooks" / name]
    for root in (project_root(cwd), package_checkout()):
        if root is not None:
            candidates.append(root / "notebooks" / name)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    return None


def default_store_root() -> Path:
    """The store of a :class:`RunStore` made without a folder (a script's library call):
    the shell's ``IMPLICITREG_RESULTS``, else :func:`project_store_root`."""
    from .execution import resolve

    configured = resolve(None).store_path()
    return configured if configured is not None else project_store_root()


def project_store_root() -> Path:
    """``results/runs`` of the project (or of the working directory outside one): the
    store of an :class:`~implicitreg.runs.execution.ExecConfig` whose ``store_root`` is
    ``None``. Reads no setting: an ExecConfig handed down as a value is all there is."""
    root = project_root()
    return (root / "results" / "runs") if root else Path.cwd() / "results" / "runs"


@dataclass
class Result:
    """A finished run: tidy metrics, a summary, its config and provenance."""
    config: RunConfig
    key: str
    metrics: pd.DataFrame
    summary: dict[str, Any]
    provenance: dict[str, Any]
    examples: pd.DataFrame | None = None
    cached: bool = False
    path: Path | None = None

    def curve(self, metric: str, split: str) -> pd.DataFrame:
        m = self.metrics
        return m[(m.metric == metric) & (m.split == split)][["step", "epoch", "value"]]

    def final(self, metric: str, split: str) -> float:
        c = self.curve(metric, split)
        return float(c.value.iloc[-1]) if len(c) else float("nan")

    def load_model_state(self) -> dict | None:
        import torch

        if self.path is None or not (self.path / "model.pt").is_file():
            return None
        return torch.load(self.path / "model.pt", map_location="cpu", weights_only=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RunStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_store_root()

    def path(self, key: str) -> Path:
        return self.root / key

    def checkpoint_path(self, key: str) -> Path:
        return self.root / ".checkpoints" / f"{key}.pt"

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """An exclusive lock on one key across processes (fcntl; released on exit, also
        when the process dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(exist_ok=True)
        with open(lock_dir / f"{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self, key: str) -> Result | None:
        """The finished run, or None when absent or when a file fails its checksum."""
        d = self.path(key)
        prov_p = d / "provenance.json"
        if not prov_p.is_file():
            return None
        try:
            prov = json.loads(prov_p.read_text())
            for name, digest in prov["files"].items():
                if _sha(d / name) != digest:
                    raise ValueError(f"{name} fails its sha256 checksum")
            cfg = RunConfig.from_dict(json.loads((d / "config.json").read_text()))
            metrics = pd.read_parquet(d / "metrics.parquet")
            summary = json.loads((d / "summary.json").read_text())
            examples = (pd.read_parquet(d / "examples.parquet")
                        if (d / "examples.parquet").is_file() else None)
        except Exception as exc:
            warnings.warn(f"run {key} in {self.root} is damaged ({exc}); it will be "
                          "recomputed", RuntimeWarning, stacklevel=2)
            return None
        return Result(cfg, key, metrics, summary, prov, examples, cached=True, path=d)

    def save(self, result: Result, model_state: dict | None = None) -> Result:
        """Write atomically: a temporary directory renamed into place."""
        import torch

        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(result.key)
        tmp = self.root / f".tmp-{result.key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / "config.json").write_text(json.dumps(result.config.to_dict(), indent=1,
                                                    sort_keys=True))
        result.metrics.to_parquet(tmp / "metrics.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=1, sort_keys=True))
        if result.examples is not None:
            result.examples.to_parquet(tmp / "examples.parquet", index=False)
        if model_state is not None:
            torch.save(model_state, tmp / "model.pt")
        files = {p.name: _sha(p) for p in sorted(tmp.iterdir())}
        prov = dict(result.provenance, files=files, key=result.key)
        (tmp / "provenance.json").write_text(json.dumps(prov, indent=1, sort_keys=True))
        if final.exists():  # a damaged earlier copy: replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        result.provenance = prov
        result.path = final
        return result

    def export(self, key: str) -> dict[str, bytes]:
        """The files of a stored run, to move it to another store (e.g. from a worker)."""
        d = self.path(key)
        return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}

    def ingest(self, key: str, files: dict[str, bytes]) -> Result:
        """Store a run exported by :meth:`export` elsewhere, checksums verified, atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, blob in files.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"bad file name {name!r} in run {key}")
            (tmp / name).write_bytes(blob)
        final = self.path(key)
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        result = self.load(key)
        if result is None:
            raise ValueError(f"run {key} arrived damaged")
        return result

    def older_version(self, cfg: RunConfig, data_source: str) -> int | None:
        """The newest earlier ``NUMERICS_VERSION`` under which this config is stored, if
        any (such a run is never loaded as current: its numbers may differ)."""
        for v in range(NUMERICS_VERSION - 1, 0, -1):
            if (self.path(run_key(cfg, data_source, v)) / "provenance.json").is_file():
                return v
        return None

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".")
                      and (p / "provenance.json").is_file())
