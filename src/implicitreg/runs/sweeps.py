"""Grids of runs: planned into batches, executed here or on a Ray cluster, stored alike.

:func:`sweep` expands a grid (:func:`run_many` takes any list of configs), loads the cells already in the run store (so a grid that
died half-way resumes where it stopped), groups the rest into batches of models that can
train as one (:mod:`implicitreg.engine.batched`), and executes the tasks:

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
import dataclasses
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .execution import ExecConfig, resolve
from .runner import grid_configs, plan, train
from ..engine.batched import group_key, worth_batching
from ..engine.config import ConfigError, RunConfig
from ..engine.data import resolve_source
from .store import Result, RunStore, project_store_root, run_key

def tasks_for(configs: Sequence[RunConfig], batch: bool | None = None, max_batch: int = 32
              ) -> list[list[int]]:
    """Tasks as lists of indices into ``configs``: batchable configs with equal group keys
    share a task (at most ``max_batch`` per task); the others run alone. ``batch=None``
    batches where it is expected to pay (:func:`~implicitreg.engine.batched.worth_batching`)."""
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
            keep_model: bool = False, exec_config: ExecConfig | None = None,
            keys: Sequence[str] | None = None) -> list[Result]:
    """Train one task (a batch when it has several configs) with progress bars off, under
    the caller's ``exec_config`` (a value, pickled to worker processes and Ray tasks
    alike; ``None``: see :func:`~implicitreg.runs.execution.resolve`). ``keys`` come from
    the caller's plan; a Ray worker passes none and keys the runs by the data source it
    reads itself."""
    ex = resolve(exec_config)
    ex.apply()  # a worker process or Ray task starts with the engine's defaults
    source = resolve_source(cfgs[0].dataset, cfgs[0].data_root)
    keys = list(keys) if keys is not None else [run_key(c, source) for c in cfgs]
    return train(cfgs, keys, source, store, ex.replace(progress=False), keep_model, force)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _process_task(cfg_dicts: list[dict[str, Any]], keys: list[str], root: str,
                  opts: dict[str, Any]) -> list[tuple[str, bool]]:
    """In a worker process: (key, whether it was loaded rather than trained) per run."""
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    return [(r.key, r.cached) for r in execute(cfgs, RunStore(root), keys=keys, **opts)]


def _ray_task(cfg_dicts: list[dict[str, Any]], opts: dict[str, Any]
              ) -> list[tuple[str, dict[str, bytes]]]:
    """On a Ray worker: train into a scratch store and return the run directories, in
    the order of the configs."""
    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
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


def run_many(configs: Sequence[RunConfig], store: RunStore | str | Path | None = None,
             force: bool = False, progress: bool = True, *,
             exec_config: ExecConfig | None = None, max_batch: int = 32,
             keep_model: bool = False, **settings: Any) -> list[Result]:
    """Run a list of configs and return their results in order. Stored runs are reused
    (a grid that died half-way resumes); a diverging run is stored as diverged and the
    others go on.

    Where the runs execute is an :class:`~implicitreg.runs.execution.ExecConfig`, the
    caller's (a chapter gets it from its entry point; a script that passes none gets the
    shell's, see :func:`~implicitreg.runs.execution.resolve`), so that a chapter can be
    pointed at worker processes or a Ray cluster without editing it; keyword
    ``settings`` (``backend``, ``workers``, ``batch``, ``ray_address``, ``ray_gpus``)
    override single fields.
    Compatible configs train together as one vmapped model (at most ``max_batch`` per
    batch) where that pays.
    """
    from tqdm import tqdm

    ex = resolve(exec_config).replace(**{k: v for k, v in settings.items() if v is not None})
    if max_batch < 1:
        raise ConfigError(f"max_batch = {max_batch} is not allowed: an integer >= 1")
    configs = [c.replace(progress=False) for c in configs]
    st = store if isinstance(store, RunStore) else RunStore(
        store if store is not None else ex.store_path() or project_store_root())
    p = plan(configs, st, ex, keep_model, force)
    tasks = [[p.todo[j] for j in t] for t in tasks_for([configs[i] for i in p.todo],
                                                       ex.batch, max_batch)]
    bar = tqdm(total=len(configs), initial=len(p.results), desc="runs", file=sys.stderr,
               disable=True if not (progress and ex.progress) else None)
    # The settings travel with each task: a deadline or kernel choice given in code
    # holds in worker processes and on Ray as it does here.
    opts = {"force": force, "keep_model": keep_model, "exec_config": ex}
    try:
        if ex.backend == "ray":
            _run_ray(configs, tasks, st, opts, p.results, bar, ex.ray_address, ex.ray_gpus)
        elif ex.workers > 1 and len(tasks) > 1:
            _run_processes(p, tasks, st, opts, bar, ex.workers)
        else:
            for t in tasks:
                p.fill(t, execute([configs[i] for i in t], st, keys=[p.keys[i] for i in t],
                                  **opts))
                bar.update(len(t))
        bar.update(len(p.repeats))
    finally:
        bar.close()
    return p.ordered()


def _run_processes(p, tasks, st, opts, bar, workers) -> None:
    import torch

    threads = max(1, torch.get_num_threads() // workers)
    ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                initargs=(threads,)) as pool:
        futures = {pool.submit(_process_task, [p.configs[i].to_dict() for i in t],
                               [p.keys[i] for i in t], str(st.root), opts): t for t in tasks}
        for fut in cf.as_completed(futures):
            t = futures[fut]
            # Loading the worker's run back would mark it as cached: keep what the
            # worker did, so that a chapter counts the runs it trained.
            p.fill(t, [dataclasses.replace(st.load(key), cached=cached)
                       for key, cached in fut.result()])
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
                # Trained on the worker (its scratch store starts empty), not loaded.
                results[i] = dataclasses.replace(st.ingest(key, files), cached=False)
            bar.update(len(t))
