"""``implicitreg time-backends``: wall time of one chapter's runs under each executor.

Each mode executes the chapter from an empty run store, so every run trains, and the
wall times are written to ``results/timings/`` as JSON, which the reproducibility page
shows. Modes: ``sequential`` (one run at a time, no batching), ``local`` (the default:
batching where it pays), ``workers`` (two local processes) and ``ray`` (a local Ray
instance; on a cluster, pass its address).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Iterable

import torch

MODES = {
    "sequential": {"batch": False},
    "local": {},
    "workers": {"workers": 2},
    "ray": {"backend": "ray"},
}


def time_backends(chapter: str, profile: str = "ci", modes: Iterable[str] = tuple(MODES),
                  root: Path | None = None, ray_address: str | None = None,
                  exec_config=None) -> Path:
    """Time ``chapter`` at ``profile`` under each of ``modes``; of ``exec_config`` (the
    command line's settings) only the kernel choice carries over, the executor being
    what is timed."""
    from ..runs.execution import ExecConfig, resolve
    from ..runs.store import RunStore, project_root
    from .driver import chapter_values, execute_values
    from .parameters import BookError, ChapterSource, toc_chapters

    root = root or project_root()
    if root is None:
        raise BookError("run this from inside the project")
    chapters = toc_chapters(root)
    if chapter not in chapters:
        raise BookError(f"unknown chapter {chapter!r}; the toc lists {sorted(chapters)}")
    modes = list(modes)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise BookError(f"unknown mode(s) {bad}; one of {list(MODES)}")
    source = ChapterSource(chapters[chapter])
    values = chapter_values(source, source.profile(profile))  # validated once
    rows = []
    base = resolve(exec_config)
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix="implicitreg-timing-") as tmp:
            # The executor is what is timed; the kernel and the data come from the caller.
            ex = ExecConfig(store_root=str(Path(tmp) / "runs"),
                            ray_address=ray_address if mode == "ray" else None,
                            native_kernel=base.native_kernel, kernel_march=base.kernel_march,
                            data_root=base.data_root, offline_data=base.offline_data,
                            no_download=base.no_download, **MODES[mode])
            print(f"== {chapter} ({profile}), mode {mode}", flush=True)
            t0 = time.perf_counter()
            execute_values(source, Path(tmp) / f"{chapter}.ipynb", values,
                           cell_timeout=24 * 3600, exec_config=ex)
            wall = time.perf_counter() - t0
            store = RunStore(Path(tmp) / "runs")
            rows.append({"mode": mode, "wall_time_s": round(wall, 1),
                         "runs": len(store.keys())})
            print(f"   {wall:.1f} s, {rows[-1]['runs']} runs", flush=True)
    device = ("cuda" if torch.cuda.is_available() else "cpu")
    report = {
        "chapter": chapter, "profile": profile,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": (torch.cuda.get_device_name(0) if device == "cuda"
                   else f"{platform.processor() or platform.machine()} CPU"),
        "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "ray_address": ray_address, "modes": rows,
    }
    out = root / "results" / "timings" / f"{chapter}-{profile}-{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return out
