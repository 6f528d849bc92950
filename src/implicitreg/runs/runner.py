"""``run(config) -> Result`` and ``run_batch(configs)``: load a stored run or train it,
store it, return it. Lists and grids of runs go through :mod:`implicitreg.runs.sweeps`."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import datetime as _dt
import itertools
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..engine import NUMERICS_VERSION, source_hash
from ..engine.batched import BatchedTrainer
from ..engine.config import RunConfig
from ..engine.data import load_for, resolve_source
from ..engine.device import param_dtype
from ..engine.models import model_for
from ..engine.training import Trainer
from .execution import ExecConfig, resolve
from .store import (METRIC_COLUMNS, Result, RunStore, project_root, project_store_root,
                    run_key)


def _package_version() -> str:
    """The installed package's version (pyproject.toml), read without importing the
    package's top, which sits above this layer."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("implicitreg")
    except PackageNotFoundError:
        return "unknown"


class MissingRunError(RuntimeError):
    """A run was needed, is not stored, and training is switched off."""


def _git_commit() -> str | None:
    root = project_root(Path(__file__).resolve().parent) or project_root()
    if root is None:
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU ({torch.get_num_threads()} threads)"


def provenance(cfg: RunConfig, out: Any, wall: float) -> dict[str, Any]:
    import pyarrow

    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 3),
        "device": out.device,
        "device_name": device_name(out.device),
        "data_source": out.data_source,
        "data_source_detail": out.data_source_detail,
        "numerics_version": NUMERICS_VERSION,
        "engine_source_hash": source_hash(),
        "git_commit": _git_commit(),
        "deterministic": cfg.deterministic,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__,
                     "pyarrow": pyarrow.__version__, "implicitreg": _package_version()},
        "notes": out.notes,
    }


def summarize(metrics: pd.DataFrame, out: Any, wall: float) -> dict[str, Any]:
    def last(split: str, metric: str) -> float | None:
        c = metrics[(metrics.split == split) & (metrics.metric == metric)]
        return float(c.value.iloc[-1]) if len(c) else None

    test_acc = metrics[(metrics.split == "test") & (metrics.metric == "accuracy")]
    return {
        "diverged": out.diverged,
        "steps": out.steps_done,
        "train_loss": last("train", "loss"),
        "train_accuracy": last("train", "accuracy"),
        "test_loss": last("test", "loss"),
        "test_accuracy": last("test", "accuracy"),
        "best_test_accuracy": float(test_acc.value.max()) if len(test_acc) else None,
        "n_params": out.n_params,
        "wall_time_s": round(wall, 3),
        "data_source": out.data_source,
    }


def _as_config(c: RunConfig | Mapping[str, Any]) -> RunConfig:
    return c if isinstance(c, RunConfig) else RunConfig.from_dict(dict(c))


def _as_store(store: RunStore | str | Path | None, ex: ExecConfig) -> RunStore:
    if isinstance(store, RunStore):
        return store
    return RunStore(store if store is not None else ex.store_path() or project_store_root())


def load_stored(st: RunStore, keys: Sequence[str], keep_model: bool = False,
                force: bool = False) -> dict[int, Result]:
    """The runs of ``keys`` that the store holds in usable form, by position. A run
    stored without weights is not usable when weights are asked for."""
    found: dict[int, Result] = {}
    if force:
        return found
    for i, k in enumerate(keys):
        hit = st.load(k)
        if hit is not None and (not keep_model or (hit.path / "model.pt").is_file()):
            found[i] = hit
    return found


def check_may_train(st: RunStore, cfgs: Sequence[RunConfig], sources: Sequence[str],
                    ex: ExecConfig) -> None:
    """Raise :class:`MissingRunError` when runs must train and training is switched off;
    name the numerics version of any older copy the store holds."""
    if not cfgs or not ex.no_train:
        return
    c, src = cfgs[0], sources[0]
    older = st.older_version(c, src)
    why = (f"; the store holds it under NUMERICS_VERSION {older}, but the engine is at "
           f"{NUMERICS_VERSION} and its numbers may differ" if older is not None else "")
    raise MissingRunError(
        f"{len(cfgs)} run(s) are not in the run store {st.root} and training is switched "
        f"off (ExecConfig.no_train, IMPLICITREG_NO_TRAIN=1); the first is {c.dataset}, {c.model}, {c.method}, "
        f"reg={c.reg}, lr={c.lr}, seed={c.seed}{why}")


@dataclass
class Plan:
    """What a list of runs needs, worked out once: each config's data source and key,
    the runs the store already holds, and which to train (one of each group of equal
    configs: a list may repeat one)."""
    configs: list[RunConfig]
    sources: list[str]
    keys: list[str]
    results: dict[int, Result]
    """Position → stored result; :meth:`fill` adds what is trained."""
    todo: list[int]
    """Positions to train, the first of each key."""
    repeats: dict[int, int] = field(default_factory=dict)
    """Position → position of the equal config that trains for it."""

    def fill(self, positions: Sequence[int], results: Sequence[Result]) -> None:
        for i, r in zip(positions, results):
            self.results[i] = r

    def ordered(self) -> list[Result]:
        """The results in the order of the configs (repeats share their twin's)."""
        for i, j in self.repeats.items():
            self.results.setdefault(i, self.results[j])
        return [self.results[i] for i in range(len(self.configs))]


def plan(configs: Sequence[RunConfig | Mapping[str, Any]], st: RunStore, ex: ExecConfig,
         keep_model: bool = False, force: bool = False, dataset=None) -> Plan:
    """The one preamble of :func:`run`, :func:`run_batch` and
    :func:`~implicitreg.runs.sweeps.run_many`: resolve each data source, compute the
    keys, load what is stored, and refuse (:class:`MissingRunError`) when something must
    train and ``ex.no_train`` forbids it."""
    cfgs = [_as_config(c) for c in configs]
    ex.apply()  # the data settings decide which source (and so which key) a run has
    sources: dict[tuple[str, str | None], str] = {}
    for c in cfgs:
        sk = (c.dataset, c.data_root)
        if sk not in sources:
            sources[sk] = (dataset.source if dataset is not None
                           else resolve_source(c.dataset, c.data_root))
    srcs = [sources[(c.dataset, c.data_root)] for c in cfgs]
    keys = [run_key(c, src) for c, src in zip(cfgs, srcs)]
    results = load_stored(st, keys, keep_model, force)
    first: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for i in range(len(cfgs)):
        if i in results:
            continue
        if keys[i] in first:
            repeats[i] = first[keys[i]]
        else:
            first[keys[i]] = i
    todo = sorted(first.values())
    check_may_train(st, [cfgs[i] for i in todo], [srcs[i] for i in todo], ex)
    return Plan(cfgs, srcs, keys, results, todo, repeats)


def run(config: RunConfig | Mapping[str, Any], store: RunStore | str | Path | None = None,
        force: bool = False, dataset=None, keep_model: bool = False,
        exec_config: ExecConfig | None = None) -> Result:
    """Train ``config`` (or load it from the run store when it already ran) and return
    its :class:`Result`. ``force`` retrains and overwrites. A run whose loss becomes
    non-finite is stored with ``summary['diverged'] = True`` and its metrics so far."""
    return run_batch([config], store, force=force, dataset=dataset, keep_model=keep_model,
                     exec_config=exec_config)[0]


def run_batch(configs: Sequence[RunConfig | Mapping[str, Any]],
              store: RunStore | str | Path | None = None, force: bool = False,
              dataset=None, keep_model: bool = False,
              exec_config: ExecConfig | None = None) -> list[Result]:
    """Like ``[run(c) for c in configs]``; when several must train, they train as one
    vmapped model (they must share a :func:`~implicitreg.engine.batched.group_key`) and
    are stored under the same keys as separate runs."""
    ex = resolve(exec_config)
    st = _as_store(store, ex)
    p = plan(configs, st, ex, keep_model, force, dataset)
    if p.todo:
        p.fill(p.todo, train([p.configs[i] for i in p.todo], [p.keys[i] for i in p.todo],
                             p.sources[p.todo[0]], st, ex, keep_model, force, dataset))
    return p.ordered()


def train(cfgs: Sequence[RunConfig], keys: Sequence[str], source: str, st: RunStore,
          ex: ExecConfig, keep_model: bool = False, force: bool = False, dataset=None
          ) -> list[Result]:
    """Train planned runs (together, as one vmapped model, when there are several) and
    store each under its key. Holds each key's lock meanwhile; a run another process
    finished while this one waited for the lock is loaded instead."""
    results: dict[int, Result] = {}
    with contextlib.ExitStack() as locks:
        for k in sorted(set(keys)):  # one order everywhere: no deadlock
            locks.enter_context(st.lock(k))
        results.update(load_stored(st, keys, keep_model, force))
        todo = [i for i in range(len(cfgs)) if i not in results]
        if todo:
            ex.apply()
            paths = [st.checkpoint_path(keys[i]) for i in todo]
            progress = ex.progress and all(cfgs[i].progress for i in todo)
            if len(todo) == 1:
                trainer = Trainer(cfgs[todo[0]], dataset, checkpoint_path=paths[0])
                trainers, outs = [trainer], [trainer.train(progress, deadline=ex.deadline)]
            else:
                bt = BatchedTrainer([cfgs[i] for i in todo], dataset, paths)
                trainers, outs = bt.trainers, bt.train(progress, deadline=ex.deadline)
            if trainers[0].data.source != source:
                raise RuntimeError(f"data source changed from {source} to "
                                   f"{trainers[0].data.source} while loading; run again")
            for i, t, out in zip(todo, trainers, outs):
                results[i] = _store(st, cfgs[i], keys[i], t, out, keep_model)
    return [results[i] for i in range(len(cfgs))]


def _store(st: RunStore, cfg: RunConfig, key: str, trainer: Trainer, out: Any,
           keep_model: bool) -> Result:
    """Turn a finished trainer into a stored :class:`Result` (and drop its checkpoint)."""
    wall = time.time() - trainer.t0  # includes the time before a resume
    metrics = pd.DataFrame(out.rows)
    if metrics.empty:
        metrics = pd.DataFrame(columns=METRIC_COLUMNS[1:])
    metrics.insert(0, "run", key)
    examples = pd.DataFrame(out.examples) if out.examples is not None else None
    result = Result(cfg, key, metrics, summarize(metrics, out, wall),
                    provenance(cfg, out, wall), examples)
    state = ({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
             if keep_model else None)
    st.save(result, state)
    ck = st.checkpoint_path(key)
    if ck.is_file():
        ck.unlink()
    return result


def restore(result: Result, device: str = "cpu"):
    """The trained model of a stored run (saved with ``keep_model=True``) and its dataset,
    on ``device``: (model in train mode, Dataset)."""
    cfg = result.config
    state = result.load_model_state()
    if state is None:
        raise FileNotFoundError(f"run {result.key} was stored without its weights; "
                                "rerun it with keep_model=True")
    data = load_for(cfg, device)
    model = model_for(cfg, data.input_shape, data.num_classes).to(
        device, param_dtype(cfg.precision))
    model.load_state_dict(state)
    return model, data


def grid_configs(base: RunConfig, grid: Mapping[str, Iterable[Any]]) -> list[RunConfig]:
    """The cartesian product of ``grid`` applied to ``base`` (validated up front, so a bad
    value fails before the first run)."""
    names = list(grid)
    return [base.replace(**dict(zip(names, values)))
            for values in itertools.product(*(list(grid[n]) for n in names))]
