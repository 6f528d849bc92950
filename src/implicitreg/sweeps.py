"""Grids of runs: planned into batches, executed here or on a Ray cluster, stored alike.

:func:`sweep` expands a grid (:func:`run_many` takes any list of configs), loads the cells already in the run store (so a grid that
died half-way resumes where it stopped), groups the rest into batches of models that can
train as one (:mod:`implicitreg.batched`), and executes the tasks:

* ``backend="local"``: in this process, or in ``workers`` processes;
* ``backend="ray"``: one Ray task per batch or single run, on ``ray.init(address=...)``
  (a running cluster, or a local instance when ``address`` is ``None``). Each task trains
  into a scratch store on its worker and ships the finished run directories back, so
  runs land in the caller's store with the same layout and keys wherever they ran, and
  workers need no shared file system. Ray is the optional ``[cluster]`` extra.

One progress bar counts runs for the whole grid.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .api import MissingRunError, grid_configs, run, run_batch
from .batched import group_key, worth_batching
from .config import ConfigError, RunConfig
from .data import resolve_source
from .store import Result, RunStore, run_key

BACKENDS = ("local", "ray")


def plan(configs: Sequence[RunConfig], batch: bool | None = None, max_batch: int = 32
         ) -> list[list[int]]:
    """Tasks as lists of indices into ``configs``: batchable configs with equal group keys
    share a task (at most ``max_batch`` per task); the others run alone. ``batch=None``
    batches where it is expected to pay (:func:`~implicitreg.batched.worth_batching`)."""
    tasks: list[list[int]] = []
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        wanted = worth_batching(cfg) if batch is None else batch
        key = group_key(cfg) if wanted else None
        if key is None:
            tasks.append([i])
        else:
            groups.setdefault(key, []).append(i)
    for members in groups.values():
        tasks += [members[s:s + max_batch] for s in range(0, len(members), max_batch)]
    return sorted(tasks, key=lambda t: t[0])


def execute(cfgs: Sequence[RunConfig], store: RunStore, force: bool = False,
            keep_model: bool = False) -> list[Result]:
    """Run one task: a batch when it has several configs, else a plain run."""
    if len(cfgs) == 1:
        return [run(cfgs[0], store, force=force, keep_model=keep_model)]
    return run_batch(cfgs, store, force=force, keep_model=keep_model, progress=False)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["IMPLICITREG_PROGRESS"] = "0"


def _process_task(cfg_dicts: list[dict[str, Any]], root: str, opts: dict[str, bool]
                  ) -> list[str]:
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    return [r.key for r in execute(cfgs, RunStore(root), **opts)]


def _ray_task(cfg_dicts: list[dict[str, Any]], opts: dict[str, bool]
              ) -> list[tuple[str, dict[str, bytes]]]:
    """On a Ray worker: train into a scratch store and return the run directories, in
    the order of the configs."""
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    os.environ["IMPLICITREG_PROGRESS"] = "0"
    with tempfile.TemporaryDirectory(prefix="implicitreg-") as tmp:
        st = RunStore(tmp)
        return [(r.key, st.export(r.key)) for r in execute(cfgs, st, **opts)]


def sweep(base: RunConfig, grid: Mapping[str, Iterable[Any]],
          store: RunStore | str | Path | None = None, force: bool = False,
          progress: bool = True, **executor: Any) -> list[Result]:
    """Run every cell of a grid (the cartesian product of ``grid`` over ``base``), in grid
    order; see :func:`run_many` for the executor options."""
    return run_many(grid_configs(base, grid), store, force, progress, **executor)


def run_labeled(pairs: Iterable[tuple[Any, RunConfig]], **options: Any
                ) -> list[tuple[Any, Result]]:
    """:func:`run_many` over (label, config) pairs, returning (label, result) pairs; so
    ``dict(run_labeled(...))`` maps labels to results when the labels are unique."""
    pairs = list(pairs)
    return list(zip([label for label, _ in pairs], run_many([c for _, c in pairs], **options)))


def _env_default(value: Any, name: str, cast: Any, default: Any) -> Any:
    if value is not None:
        return value
    raw = os.environ.get(name)
    return default if raw in (None, "") else cast(raw)


def run_many(configs: Sequence[RunConfig], store: RunStore | str | Path | None = None,
             force: bool = False, progress: bool = True, *, batch: bool | None = None,
             max_batch: int = 32, workers: int | None = None, backend: str | None = None,
             ray_address: str | None = None, ray_gpus: float | None = None,
             keep_model: bool = False) -> list[Result]:
    """Run a list of configs and return their results in order. Stored runs are reused
    (a grid that died half-way resumes); a diverging run is stored as diverged and the
    others go on.

    ``batch`` trains compatible configs together as one vmapped model (at most
    ``max_batch`` per batch); the default ``None`` does so on accelerators, and on a CPU
    for models small enough to gain from it. ``workers`` > 1 runs tasks in that many
    local processes, each with its share of the CPU threads. ``backend="ray"`` sends each
    task to the Ray cluster at ``ray_address`` (a local instance when unset), asking
    ``ray_gpus`` GPUs per task. Unset options come from the environment, so that a
    chapter can be pointed at a cluster without editing it: ``IMPLICITREG_SWEEP_BACKEND``,
    ``IMPLICITREG_SWEEP_WORKERS``, ``IMPLICITREG_SWEEP_BATCH`` (0 or 1),
    ``IMPLICITREG_RAY_ADDRESS``, ``IMPLICITREG_RAY_GPUS``.
    """
    from tqdm import tqdm

    backend = _env_default(backend, "IMPLICITREG_SWEEP_BACKEND", str, "local")
    if batch is None and os.environ.get("IMPLICITREG_SWEEP_BATCH", "") in ("0", "1"):
        batch = os.environ["IMPLICITREG_SWEEP_BATCH"] == "1"
    workers = _env_default(workers, "IMPLICITREG_SWEEP_WORKERS", int, 1)
    ray_address = _env_default(ray_address, "IMPLICITREG_RAY_ADDRESS", str, None)
    ray_gpus = _env_default(ray_gpus, "IMPLICITREG_RAY_GPUS", float, 0.0)
    if backend not in BACKENDS:
        raise ConfigError(f"sweep backend {backend!r} is not allowed: one of {BACKENDS}")
    if workers < 1 or max_batch < 1 or ray_gpus < 0:
        raise ConfigError("sweeps need workers >= 1, max_batch >= 1 and ray_gpus >= 0")
    configs = [c.replace(progress=False) for c in configs]
    st = store if isinstance(store, RunStore) else RunStore(store)
    sources: dict[tuple[str, str | None], str] = {}
    keys = []
    for c in configs:
        sk = (c.dataset, c.data_root)
        if sk not in sources:
            sources[sk] = resolve_source(c.dataset, c.data_root)
        keys.append(run_key(c, sources[sk]))
    results: dict[int, Result] = {}
    if not force:
        for i, k in enumerate(keys):
            hit = st.load(k)
            if hit is not None and (not keep_model or (hit.path / "model.pt").is_file()):
                results[i] = hit
    todo = [i for i in range(len(configs)) if i not in results]
    if todo and os.environ.get("IMPLICITREG_NO_TRAIN", "") in ("1", "true", "yes"):
        raise MissingRunError(f"{len(todo)} of {len(configs)} runs are not in the run "
                              f"store {st.root} and IMPLICITREG_NO_TRAIN=1 forbids "
                              "training them")
    # Equal configs (a list may repeat one) train once.
    first: dict[str, int] = {}
    for i in todo:
        first.setdefault(keys[i], i)
    unique = sorted(first.values())
    tasks = [[unique[j] for j in t] for t in plan([configs[i] for i in unique], batch,
                                                    max_batch)]
    hide = not progress or os.environ.get("IMPLICITREG_PROGRESS", "1") == "0"
    bar = tqdm(total=len(configs), initial=len(results), desc="runs", file=sys.stderr,
               disable=True if hide else None)
    opts = {"force": force, "keep_model": keep_model}
    try:
        if backend == "ray":
            _run_ray(configs, tasks, st, opts, results, bar, ray_address, ray_gpus)
        elif workers > 1 and len(tasks) > 1:
            _run_processes(configs, tasks, st, opts, results, bar, workers)
        else:
            for t in tasks:
                for i, r in zip(t, execute([configs[i] for i in t], st, **opts)):
                    results[i] = r
                bar.update(len(t))
        for i in todo:
            if i not in results:  # a repeat of a config that just trained
                results[i] = results[first[keys[i]]]
                bar.update(1)
    finally:
        bar.close()
    return [results[i] for i in range(len(configs))]


def _run_processes(configs, tasks, st, opts, results, bar, workers) -> None:
    import torch

    threads = max(1, torch.get_num_threads() // workers)
    ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                initargs=(threads,)) as pool:
        futures = {pool.submit(_process_task, [configs[i].to_dict() for i in t],
                               str(st.root), opts): t for t in tasks}
        for fut in cf.as_completed(futures):
            t = futures[fut]
            for i, key in zip(t, fut.result()):
                results[i] = st.load(key)
            bar.update(len(t))


def _run_ray(configs, tasks, st, opts, results, bar, address, gpus) -> None:
    try:
        import ray
    except ImportError as err:
        raise ImportError("the ray backend needs Ray: pip install 'implicitreg[cluster]'"
                          ) from err
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    try:
        _ray_loop(ray, configs, tasks, st, opts, results, bar, gpus)
    finally:
        if started:  # leave a connection the caller made alone
            ray.shutdown()


def _ray_loop(ray, configs, tasks, st, opts, results, bar, gpus) -> None:
    remote = ray.remote(_ray_task).options(num_gpus=gpus, max_retries=2)
    pending = {remote.remote([configs[i].to_dict() for i in t], opts): t for t in tasks}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            t = pending.pop(ref)
            # Keys come from the worker: a worker that read the data from another
            # source (say, a download instead of the offline archive) stores its runs
            # under that source's keys, as a local run there would.
            for i, (key, files) in zip(t, ray.get(ref)):
                results[i] = st.ingest(key, files)
            bar.update(len(t))
