"""``implicitreg gpu-edition``: the ``gpu`` profile of the chapters, trained in one short
GPU window, into the committed run store ``results/gpu/runs``.

A GPU is lent only now and then, for minutes. So the script is prepared and dry-run on a
CPU (``--dry-run`` trains the same cells at the ``smoke`` profile into a scratch store),
and on the GPU it: checks the device, measures the step costs (``implicitreg bench``),
then executes, chapter by chapter in priority order, the chapter's cells tagged ``train``
(the very code the chapter runs, so the run keys are the ones the book asks for) with the
chapter's ``gpu`` parameters. Past ``--deadline`` seconds every run checkpoints and stops;
the next window resumes from the checkpoints (carry ``results/gpu``). What it trained is
listed in ``results/gpu/manifest.json``. The book then re-plots the chapters on any CPU:
``IMPLICITREG_NO_TRAIN=1 make book PROFILE=gpu ONLY=sgd_vs_gd``.

No Jupyter is needed on the GPU machine: the cells run in a plain namespace.
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

# Headline chapter first: a window that closes early still leaves the central comparison.
PRIORITY = ("sgd_vs_gd",)
PRELUDE = ("import numpy as np\nimport implicitreg as ir\n"
           "from implicitreg.analysis import pilot as pilot_rule\n")


def train_cells(notebook: Path) -> list[str]:
    """Sources of the cells tagged ``train``: the cells that build the chapter's runs."""
    nb = json.loads(notebook.read_text())
    cells = ["".join(c["source"]) for c in nb["cells"]
             if c["cell_type"] == "code" and "train" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{notebook.name} has no cell tagged 'train'")
    return cells


def chapter_params(root: Path, chapter: str, profile: str) -> dict[str, Any]:
    from .driver import load_profile, notebook_parameters

    nb = root / "notebooks" / f"{chapter}.ipynb"
    return {**notebook_parameters(nb), **load_profile(root, chapter, profile)}


def train_chapter(root: Path, chapter: str, profile: str, exec_config) -> dict[str, Any]:
    """Execute the chapter's ``train`` cells with its ``profile`` parameters."""
    from ..engine.training import DeadlineReached
    from ..runs.execution import environment

    namespace: dict[str, Any] = dict(chapter_params(root, chapter, profile))
    t0 = time.time()
    status = "complete"
    try:
        with environment(exec_config.to_env()):  # the cells' ir.run_many reads these
            exec(PRELUDE, namespace)
            for src in train_cells(root / "notebooks" / f"{chapter}.ipynb"):
                exec(compile(src, f"<{chapter}: train cell>", "exec"), namespace)
    except DeadlineReached as exc:
        status = f"stopped at the deadline ({exc}); rerun to resume"
    runs = namespace.get("runs") or []
    return {"chapter": chapter, "profile": profile, "status": status,
            "wall_time_s": round(time.time() - t0, 1), "runs": len(runs),
            "trained": sum(not r.cached for _, r in runs) if status == "complete" else None}


def write_manifest(path: Path, window: dict[str, Any]) -> dict[str, Any]:
    """Append this window to the manifest; ``chapters`` keeps each chapter's latest
    entry (what the published build reads), ``windows`` every window's record."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    windows = old.get("windows", []) + [window]
    latest: dict[str, Any] = {}
    for w in windows:
        for entry in w["chapters"]:
            latest[entry["chapter"]] = {**entry, "window": w["created"],
                                        "device": w["device"], "torch": w["torch"]}
    manifest = {"chapters": list(latest.values()), "windows": windows}
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def gpu_edition(chapters: Iterable[str] = PRIORITY, deadline_s: float = 480.0,
                dry_run: bool = False, out: Path | None = None,
                root: Path | None = None, bench: bool = True) -> dict[str, Any]:
    """Bench, then train the chapters' ``gpu`` runs until ``deadline_s`` seconds from now.
    ``dry_run``: on any device, the ``smoke`` parameters into a scratch store under
    ``_build/gpu-dry-run`` (checks the plumbing, not the science). ``out``: also pack
    the run store, the manifest and the bench into ``out/gpu-edition.tar.gz``."""
    from ..runs.execution import ExecConfig
    from ..runs.store import project_root

    root = root or project_root()
    if root is None:
        raise RuntimeError("run this from inside the project")
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
    ex = ExecConfig.from_env().replace(store_root=str(dest / "runs"),
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
