"""``run(config) -> Result`` and ``run_batch(configs)``: train once, store, reuse.
Lists and grids of runs go through :mod:`implicitreg.sweeps`."""
from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import __version__
from .config import RunConfig
from .data import resolve_source
from .store import METRIC_COLUMNS, Result, RunStore, engine_hash, project_root, run_key
from .training import Trainer


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
        "engine_hash": engine_hash(),
        "git_commit": _git_commit(),
        "deterministic": cfg.deterministic,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__,
                     "pyarrow": pyarrow.__version__, "implicitreg": __version__},
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


def run(config: RunConfig | Mapping[str, Any], store: RunStore | str | Path | None = None,
        force: bool = False, dataset=None, keep_model: bool = False) -> Result:
    """Train ``config`` (or load it from the run store when it already ran) and return
    its :class:`Result`. ``force`` retrains and overwrites. A run whose loss becomes
    non-finite is stored with ``summary['diverged'] = True`` and its metrics so far."""
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(dict(config))
    st = store if isinstance(store, RunStore) else RunStore(store)
    source = dataset.source if dataset is not None else resolve_source(cfg.dataset, cfg.data_root)
    key = run_key(cfg, source)
    def usable(hit: Result | None) -> bool:
        # A run stored without weights is retrained when weights are asked for.
        return hit is not None and (not keep_model or (hit.path / "model.pt").is_file())

    if not force:
        hit = st.load(key)
        if usable(hit):
            return hit
    if os.environ.get("IMPLICITREG_NO_TRAIN", "") in ("1", "true", "yes"):
        raise MissingRunError(
            f"run {key} ({cfg.dataset}, {cfg.model}, {cfg.method}, reg={cfg.reg}, "
            f"lr={cfg.lr}, seed={cfg.seed}) is not in the run store {st.root} and "
            "IMPLICITREG_NO_TRAIN=1 forbids training it")
    with st.lock(key):
        if not force:  # another process may have finished it while we waited
            hit = st.load(key)
            if usable(hit):
                return hit
        trainer = Trainer(cfg, dataset, checkpoint_path=st.checkpoint_path(key))
        if trainer.data.source != source:
            warnings.warn(f"data source changed from {source} to {trainer.data.source} "
                          "while loading; the run is stored under the loaded source")
            key = run_key(cfg, trainer.data.source)
        out = trainer.run()
        return _store(st, cfg, key, trainer, out, keep_model)


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
    result.extra["model"] = trainer.model
    return result


def run_batch(configs: Sequence[RunConfig | Mapping[str, Any]],
              store: RunStore | str | Path | None = None, force: bool = False,
              dataset=None, keep_model: bool = False, progress: bool = True) -> list[Result]:
    """Like ``[run(c) for c in configs]`` for configs that :mod:`implicitreg.batched` can
    train together (same :func:`~implicitreg.batched.group_key`): the missing ones train
    as one vmapped model and are stored under the same keys as separate runs."""
    from .batched import BatchedTrainer

    cfgs = [c if isinstance(c, RunConfig) else RunConfig.from_dict(dict(c)) for c in configs]
    st = store if isinstance(store, RunStore) else RunStore(store)
    if not cfgs:
        return []
    source = (dataset.source if dataset is not None
              else resolve_source(cfgs[0].dataset, cfgs[0].data_root))
    keys = [run_key(c, source) for c in cfgs]
    results: dict[int, Result] = {}

    def usable(hit: Result | None) -> bool:
        return hit is not None and (not keep_model or (hit.path / "model.pt").is_file())

    def collect() -> list[int]:
        todo = []
        for i, k in enumerate(keys):
            hit = None if force else st.load(k)
            if usable(hit):
                results[i] = hit  # type: ignore[assignment]
            else:
                todo.append(i)
        return todo

    todo = collect()
    if todo and os.environ.get("IMPLICITREG_NO_TRAIN", "") in ("1", "true", "yes"):
        raise MissingRunError(f"{len(todo)} run(s) of this batch are not in the run store "
                              f"{st.root} and IMPLICITREG_NO_TRAIN=1 forbids training them")
    if len(todo) == 1:
        i = todo[0]
        results[i] = run(cfgs[i], st, force=force, dataset=dataset, keep_model=keep_model)
    elif todo:
        with contextlib.ExitStack() as locks:
            for k in sorted({keys[i] for i in todo}):  # one order everywhere: no deadlock
                locks.enter_context(st.lock(k))
            if not force:
                todo = collect()
            if todo:
                bt = BatchedTrainer([cfgs[i] for i in todo], dataset,
                                    [st.checkpoint_path(keys[i]) for i in todo])
                if bt.data.source != source:
                    raise RuntimeError(f"data source changed from {source} to "
                                       f"{bt.data.source} while loading; run again")
                outs = bt.run(progress=progress)
                for i, t, out in zip(todo, bt.trainers, outs):
                    results[i] = _store(st, cfgs[i], keys[i], t, out, keep_model)
    return [results[i] for i in range(len(cfgs))]


def restore(result: Result, device: str = "cpu"):
    """The trained model of a stored run (saved with ``keep_model=True``) and its dataset,
    on ``device``: (model in eval-ready train mode, Dataset)."""
    from .data import load
    from .models import build_model

    cfg = result.config
    state = result.load_model_state()
    if state is None:
        raise FileNotFoundError(f"run {result.key} was stored without its weights; "
                                "rerun it with keep_model=True")
    dtype = torch.float64 if cfg.precision == "float64" else torch.float32
    data = load(cfg.dataset, n_train=cfg.n_train, n_test=cfg.n_test,
                label_noise=cfg.label_noise, data_seed=cfg.data_seed, device=device,
                dtype=dtype, root=cfg.data_root, mnist_holdout=cfg.mnist_holdout,
                synthetic_dim=cfg.synthetic_dim, synthetic_classes=cfg.synthetic_classes)
    model = build_model(cfg.model, data.input_shape, data.num_classes, widths=cfg.widths,
                        cnn_width=cfg.cnn_width, init=cfg.init).to(device, dtype)
    model.load_state_dict(state)
    return model, data


def grid_configs(base: RunConfig, grid: Mapping[str, Iterable[Any]]) -> list[RunConfig]:
    """The cartesian product of ``grid`` applied to ``base`` (validated up front, so a bad
    value fails before the first run)."""
    names = list(grid)
    return [base.replace(**dict(zip(names, values)))
            for values in itertools.product(*(list(grid[n]) for n in names))]


def results_frame(results: Iterable[Result], metric: str | None = None,
                  split: str | None = None) -> pd.DataFrame:
    """Tidy metrics of many runs with their config fields as columns."""
    frames = []
    for r in results:
        m = r.metrics
        if metric is not None:
            m = m[m.metric == metric]
        if split is not None:
            m = m[m.split == split]
        m = m.copy()
        for k, v in r.config.to_dict().items():
            m[k] = str(v) if isinstance(v, (list, tuple)) else v
        m["diverged"] = r.summary["diverged"]
        frames.append(m)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
