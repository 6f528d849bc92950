"""``implicitreg gpu-edition``: the ``gpu`` profile of the chapters, trained in one short
GPU window, into the committed run store ``results/gpu/runs``.

A GPU is lent only now and then, for minutes. So the script is prepared and dry-run on a
CPU (``--dry-run`` trains the same designs at the ``smoke`` profile into a scratch store),
and on the GPU it: checks the device, measures the step costs (``implicitreg bench``),
then runs, chapter by chapter in priority order, the chapter module's ``run(params)`` (the
chapter protocol, :mod:`implicitreg.chapters.protocol`: a staged design as a pilot and
the stages chosen from it) with the chapter's ``gpu`` parameters, so that the run keys
are the ones the book asks for. Past ``--deadline`` seconds every run checkpoints
and stops; the next window resumes from the checkpoints (carry ``results/gpu``). What it
trained, and the fingerprint of the criteria it was made under, is listed in
``results/gpu/manifest.json``. The book then re-plots the chapters on any CPU:
``IMPLICITREG_NO_TRAIN=1 make book PROFILE=gpu ONLY=sgd_vs_gd``.

No Jupyter is needed on the GPU machine: nothing of the notebooks is executed.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import tarfile
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from ..runs.committed import write_manifest

# Headline chapter first: a window that closes early still leaves the central comparison.
PRIORITY = ("sgd_vs_gd",)


def gpu_chapters(root: Path) -> list[str]:
    """The chapters whose profile file has a ``gpu`` profile, those of PRIORITY first."""
    import yaml

    found = sorted(f.stem for f in (root / "notebooks" / "profiles").glob("*.yaml")
                   if "gpu" in (yaml.safe_load(f.read_text()) or {}))
    return [c for c in PRIORITY if c in found] + [c for c in found if c not in PRIORITY]


def chapter_module(chapter: str):
    """The chapter's module, checked against the chapter protocol."""
    from ..chapters import protocol

    return protocol.load(chapter)


def chapter_params(root: Path, chapter: str, profile: str):
    """The chapter's parameter dataclass at ``profile``, read from ``root``'s profiles."""
    from .parameters import load_profile

    return chapter_module(chapter).Params.from_values(load_profile(root, chapter, profile))


def run_chapter(chapter: str, params, **options: Any) -> list[tuple[Any, Any]]:
    """(label, result) pairs of every run of the chapter at ``params``, from its module's
    ``run``."""
    return chapter_module(chapter).run(params, **options).all()


def train_chapter(root: Path, chapter: str, profile: str, exec_config) -> dict[str, Any]:
    """Run the chapter's design at its ``profile`` parameters (a committed profile's
    design must be registered); the entry records the design's fingerprint and when the
    runs were made."""
    import dataclasses

    from ..chapters import registry
    from ..engine.training import DeadlineReached
    from ..runs.execution import resolve

    exec_config = resolve(exec_config)
    params = chapter_params(root, chapter, profile)
    values = dataclasses.asdict(params)
    if not exec_config.no_train:
        registry.require_registered(chapter, profile, values, root)
    t0 = time.time()
    status, runs = "complete", []
    try:
        runs = run_chapter(chapter, params, exec_config=exec_config)
    except DeadlineReached as exc:
        status = f"stopped at the deadline ({exc}); rerun to resume"
    entry = {"chapter": chapter, "profile": profile, "status": status,
             "wall_time_s": round(time.time() - t0, 1), "runs": len(runs),
             "trained": sum(not r.cached for _, r in runs) if status == "complete" else None}
    if chapter in registry.chapters():
        entry["design"] = registry.design_fingerprint(chapter, values)
    interval = registry.run_interval(r for _, r in runs)
    if interval:
        entry["runs_made"] = " / ".join(interval)
    return entry


def gpu_edition(chapters: Iterable[str] | None = None, deadline_s: float = 480.0,
                dry_run: bool = False, out: Path | None = None,
                root: Path | None = None, bench: bool = True,
                exec_config=None) -> dict[str, Any]:
    """Bench, then train the chapters' ``gpu`` runs until ``deadline_s`` seconds from now.
    ``dry_run``: on any device, the ``smoke`` parameters into a scratch store under
    ``_build/gpu-dry-run`` (checks the plumbing, not the science). ``out``: also pack
    the run store, the manifest and the bench into ``out/gpu-edition.tar.gz``.
    ``chapters``: by default every chapter with a ``gpu`` profile. ``exec_config``: the
    command line's settings (its store and deadline are replaced)."""
    from ..runs.execution import resolve
    from ..runs.store import project_root

    root = root or project_root()
    if root is None:
        raise RuntimeError("run this from inside the project")
    chapters = list(chapters) if chapters is not None else gpu_chapters(root)
    t_start = time.time()
    if not dry_run and not torch.cuda.is_available():
        raise RuntimeError("no CUDA device: the gpu edition needs a GPU (--dry-run checks "
                           "the plumbing on a CPU)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dest = (root / "_build" / "gpu-dry-run") if dry_run else (root / "results" / "gpu")
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else
        f"{platform.processor() or platform.machine()} CPU",
        "torch": torch.__version__, "dry_run": dry_run, "chapters": []}
    print(f"gpu edition on {manifest['device']}, torch {torch.__version__}", flush=True)
    if bench and not dry_run:
        from ..bench import main as bench_main

        t0 = time.time()
        bench = bench_main("cuda", ("cnn",), repeats=10)
        (dest / f"bench-{device}.json").write_text(json.dumps(bench, indent=1) + "\n")
        manifest["bench_wall_time_s"] = round(time.time() - t0, 1)
    ex = resolve(exec_config).replace(store_root=str(dest / "runs"),
                                      deadline=t_start + deadline_s)
    for chapter in chapters:
        if time.time() > ex.deadline:
            manifest["chapters"].append({"chapter": chapter, "status": "not started"})
            continue
        print(f"== {chapter}", flush=True)
        entry = train_chapter(root, chapter, "smoke" if dry_run else "gpu", ex)
        print(f"   {entry}", flush=True)
        manifest["chapters"].append(entry)
    manifest["wall_time_s"] = round(time.time() - t_start, 1)
    write_manifest(dest / "manifest.json", manifest)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out / "gpu-edition.tar.gz", "w:gz") as tar:
            tar.add(dest, arcname=dest.name)  # runs, checkpoints, manifest and bench
    return manifest
