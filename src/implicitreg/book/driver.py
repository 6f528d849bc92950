"""The book driver: execute each chapter notebook listed in the table of contents with
papermill at a named profile, then build the HTML with Jupyter Book 1 (execution off).

Layout: sources in ``notebooks/`` (chapter notebooks, stored without outputs) and
``book/`` (pages, ``_toc.yml``, ``references.bib``); profiles in
``notebooks/profiles/<chapter>.yaml``. Executed notebooks and the assembled site go to
``_build/site/``; the HTML to ``_build/html/``. Sources are never written.

The other concerns of a build live beside it: ``parameters.py`` (parameter cells,
profiles, overrides, the toc), ``pages.py`` (the site and its HTML build) and
``report.py`` (claims ledger, execution report).
"""
from __future__ import annotations

import datetime as _dt
import functools
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import budget
from .budget import load_budgets
from .pages import assemble_site, hide_parameter_cells, insert_rerun_box, rerun_box, run_jupyter_book
from .parameters import (PROFILES, PUBLISHED, BookError, ChapterSource, check_values,
                         named_profile, split_overrides, toc_chapters)
from .report import glued_values
from ..engine.device import resolve_device
from ..runs.committed import COMMITTED_PROFILES, committed_entry, write_manifest
from ..runs.execution import ExecConfig, as_parameter, build_setting, environment, resolve
from ..runs.store import project_root


DEFAULT_CELL_TIMEOUT = {"smoke": 600, "ci": 1800, "workstation": 6 * 3600,
                        "paper": 4 * 3600, "gpu": 4 * 3600}


# glibc's malloc hands the freed top of its heap back to the system and maps it again on
# the next step, page faults and all: a tenth of a chapter's time went to the system. Kept
# instead (the kernel and the worker processes it spawns read these at start), two
# one-thread processes side by side trained 5% faster (a CNN alone 20%). Other C
# libraries ignore them; a value the caller set is kept.
ALLOCATOR = {"MALLOC_TRIM_THRESHOLD_": str(512 << 20), "MALLOC_TOP_PAD_": str(64 << 20),
             "MALLOC_MMAP_THRESHOLD_": str(256 << 20)}


# ipykernel warns on every start that its local TCP sockets are unencrypted: the kernel
# and papermill talk over the loopback interface of one machine, so the warning says
# nothing to a reader of the build's log. It alone is dropped from the kernel's stderr.
KERNEL_NOISE = ("Kernel is running over TCP without encryption",)


def forward_stderr(fd: int, sink: Any = None) -> None:
    """Copy the lines read from ``fd`` to ``sink`` (stderr) until end of file, leaving
    out the lines of ``KERNEL_NOISE``."""
    with os.fdopen(fd, "rb") as pipe:
        for raw in pipe:
            line = raw.decode(errors="replace")
            if not any(n in line for n in KERNEL_NOISE):
                out = sink or sys.stderr
                out.write(line)
                out.flush()


def quiet_kernel_manager() -> type:
    """A kernel manager whose kernel's stderr passes through :func:`forward_stderr`."""
    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            read, write = os.pipe()
            kw.setdefault("stderr", write)
            try:
                await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                os.close(write)  # the kernel holds its own copy
            threading.Thread(target=forward_stderr, args=(read,), daemon=True).start()

    return QuietKernelManager


def _kernel_path() -> dict[str, str]:
    """``PYTHONPATH`` with its entries made absolute: the kernel runs in the notebook's
    folder, where a relative entry (``PYTHONPATH=src``) would name nothing and the
    kernel would import another copy of the package."""
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    return {"PYTHONPATH": os.pathsep.join(str(Path(e).resolve()) for e in entries)} \
        if entries else {}


def chapter_values(source: ChapterSource, given: dict[str, Any]) -> dict[str, Any]:
    """Every parameter the chapter executes with: the notebook's defaults, then
    ``given`` (a profile's values and overrides, or a committed set's recorded values).
    Validated here, once: unknown names and wrong types are refused with the message
    plain papermill gives, and the chapter's ``Params`` is built from the values (its own
    checks refuse the rest) before anything executes. Its fields are returned as lists
    where it keeps tuples, the form papermill injects."""
    import dataclasses

    from ..chapters.protocol import find

    check_values(source.label, source.declared, given)
    values = {**source.declared, **given}
    mod = find(source.name)
    if hasattr(mod, "Params"):
        try:
            params = mod.Params.from_values(values)
        except (TypeError, ValueError) as exc:
            raise BookError(f"{source.label}: {exc}") from None
        values.update({f.name: list(v) if isinstance(v, tuple) else v
                       for f in dataclasses.fields(params)
                       for v in [getattr(params, f.name)]})
    return values


def execute_chapter(src: Path, out: Path, params: dict[str, Any], cell_timeout: int,
                    exec_config: ExecConfig | None = None) -> None:
    """Execute one chapter with papermill at ``params``: a named ``profile`` fills in
    its values, as with plain papermill, and ``params`` override them; checked by
    :func:`chapter_values` before anything runs."""
    ex = resolve(exec_config)  # a library call's fallback; build_book passes its own
    source = ChapterSource(src)
    given = {**source.profile(params["profile"]), **params} if "profile" in params else params
    execute_values(source, out, chapter_values(source, given), cell_timeout, ex)


def execute_values(source: ChapterSource, out: Path, values: dict[str, Any],
                   cell_timeout: int, exec_config: ExecConfig) -> None:
    """Execute one chapter with papermill at the complete, validated ``values``
    (:func:`chapter_values`): each is injected as its own parameter (``-p name value``
    alike), with ``exec_config`` (progress bars off: they would flood the logs) as one
    value of every field, so that the kernel builds its ``Params`` and its
    :class:`ExecConfig` from what it is given and reads no profile, cell or variable."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    src = source.notebook
    values = dict(values)
    if "exec_config" in values:
        values["exec_config"] = as_parameter(exec_config.replace(progress=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    # Figures must be captured as outputs whatever backend the caller's shell sets.
    try:
        with environment({"MPLBACKEND": "module://matplotlib_inline.backend_inline",
                          **_kernel_path()}, defaults=ALLOCATOR):
            pm.execute_notebook(
                str(src), str(out), parameters=values, kernel_name="python3",
                cwd=str(src.parent), log_output=True, progress_bar=False,
                execution_timeout=cell_timeout, request_save_on_cell_execute=True,
                kernel_manager_class=quiet_kernel_manager(),
            )
    except PapermillExecutionError as exc:
        raise BookError(f"notebook {src.name} failed in cell {exc.cell_index} "
                        f"(execution count {exc.exec_count}): {exc.ename}: {exc.evalue}. "
                        f"The partly executed notebook is {out}") from None
    hide_parameter_cells(out)
    insert_rerun_box(out, rerun_box(src, source))


def record_committed_execution(root: Path, chapter: str, profile: str, stamp: str,
                               wall_time_s: float, params: dict[str, Any] | None = None,
                               trained: int | None = None, runs_made: str = "") -> None:
    """Enter a chapter executed at a committed profile into results/<profile>/manifest.json
    (where its runs were made, under which registered design, with which parameters), so
    that the published build picks it up and the set can be re-read after its profile
    changes. ``runs_made`` ("first start / last end", from the runs' provenance) is when
    the runs were made; ``stamp`` only when this execution started, and an execution
    that trained nothing is marked a re-plot."""
    import platform

    import torch


    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else
              f"CPU ({platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads)")
    from ..chapters import registry

    entry = {"chapter": chapter, "profile": profile, "status": "complete",
             "wall_time_s": round(wall_time_s, 1)}
    if trained is not None:
        entry["trained"] = trained
        entry["replot"] = trained == 0
    if runs_made:
        entry["runs_made"] = runs_made
    if chapter in registry.chapters() and params is not None:
        # The registered design the set was made under: a later edit of a criterion fails
        # a test unless it is a recorded (and registered) revision.
        entry["design"] = registry.design_fingerprint(chapter, params)
    if params:
        entry["params"] = {k: v for k, v in params.items()
                           if k not in ("profile", "executed_at", "exec_config")}
    (root / "results" / profile).mkdir(parents=True, exist_ok=True)
    write_manifest(root / "results" / profile / "manifest.json", {
        "created": stamp, "device": device, "torch": torch.__version__, "dry_run": False,
        "chapters": [entry]})


def published_profile(root: Path, chapter: str) -> str:
    """The largest committed result set that covers ``chapter`` (its manifest lists the
    chapter as complete), else ``ci``."""
    for p in COMMITTED_PROFILES:
        entry = committed_entry(root, p, chapter)
        if entry is not None and entry.get("status") == "complete":
            return p
    return "ci"


def build_book(profile: str = "ci", params_file: str | os.PathLike | None = None,
               only: Iterable[str] | None = None, build: bool = True,
               cell_timeout: int | None = None, root: Path | None = None,
               exec_config: ExecConfig | None = None, worker_hints: bool = False,
               mathjax_dir: str | None = None) -> Path:
    """Execute the chapters at ``profile`` (plus overrides from ``params_file``) and
    build the HTML book. Returns the path of ``_build/html``. The book's entry point:
    settings not given (``exec_config``, ``mathjax_dir``) are the shell's. With
    ``worker_hints`` (the command line gave no worker count), a chapter that the budgets
    file's ``workers`` section names trains its runs in that many local processes (at
    most one per CPU; none on a machine with a GPU)."""
    root = root or project_root()
    if root is None:
        raise BookError("run this from inside the project (no _config.yml with "
                        "src/implicitreg found above the working directory)")
    if profile not in PROFILES + (PUBLISHED,):
        raise BookError(f"profile {profile!r} is not allowed: one of "
                        f"{list(PROFILES + (PUBLISHED,))}")
    chapters = toc_chapters(root)
    selected = list(chapters) if only is None else list(only)
    bad = [c for c in selected if c not in chapters]
    if bad:
        raise BookError(f"unknown chapter(s) {bad}; the toc lists {sorted(chapters)}")
    overrides: dict[str, Any] = {}
    if params_file is not None:
        p = Path(params_file)
        if not p.is_file():
            raise BookError(f"params file {p} does not exist")
        overrides = yaml.safe_load(p.read_text()) or {}
        if not isinstance(overrides, dict):
            raise BookError(f"params file {p} must hold a mapping of names to values")
    # Each chapter's parameters cell and profile file, each read once (see ChapterSource).
    sources = {name: ChapterSource(path) for name, path in chapters.items()}
    per_chapter = split_overrides(overrides, chapters, sources)
    base_ex = exec_config or ExecConfig.from_env()
    mathjax_dir = mathjax_dir or build_setting("mathjax_dir")
    # The hints were measured on CPUs; where a GPU trains the runs, one process feeds it.
    hints = budget.load_workers(root, profile) if (
        worker_hints and base_ex.backend == "local"
        and resolve_device("auto").type == "cpu") else {}
    site = root / "_build" / "site"
    site.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    timed: list[dict[str, Any]] = []
    for name in selected:
        source = sources[name]
        chosen = published_profile(root, name) if profile == PUBLISHED else profile
        chosen, per_chapter[name] = named_profile(chosen, per_chapter[name])
        if chosen in COMMITTED_PROFILES and chosen not in source.profiles:
            # Committed profiles exist for some chapters only; the others run at ci.
            print(f"{name} has no {chosen} profile: executing it at ci", flush=True)
            chosen = "ci"
        ex = base_ex
        if name in hints:
            ex = ex.replace(workers=max(1, min(hints[name], os.cpu_count() or 1)))
        committed = root / "results" / chosen / "runs"
        if chosen in COMMITTED_PROFILES and ex.store_root is None and (
                committed.is_dir() or profile != PUBLISHED):
            # Committed result sets live here: rebuilding re-plots them, and executing
            # the profile adds its missing runs to them.
            committed.mkdir(parents=True, exist_ok=True)
            ex = ex.replace(store_root=str(committed),
                            no_train=ex.no_train or profile == PUBLISHED)
            print(f"using the committed {chosen} run store {committed}", flush=True)
        t0 = time.time()
        params = {**source.profile(chosen), **per_chapter[name]}
        made = committed_entry(root, chosen, name) if chosen in COMMITTED_PROFILES else None
        if made and made.get("params") and (profile == PUBLISHED or ex.no_train):
            # Re-plotting a committed set: its own parameters, whatever the profile says now.
            from ..chapters import protocol, result_sets

            params = {"profile": chosen, **result_sets.recorded_values(
                protocol.load(name), made["params"]), **per_chapter[name]}
        if "executed_at" in source.declared:
            params.setdefault("executed_at", stamp)
        # The chapter's parameters validated and its Params built, once: the kernel is
        # handed these values and reads no profile.
        values = chapter_values(source, params)
        if chosen in COMMITTED_PROFILES and not ex.no_train:
            from ..chapters import registry

            registry.require_registered(name, chosen, values, root)
        print(f"== executing {name} (profile {chosen}) with {params}"
              + (f", runs in {ex.workers} worker processes" if ex.workers > 1 else ""),
              flush=True)
        execute_values(source, site / "notebooks" / f"{name}.ipynb", values,
                       cell_timeout or DEFAULT_CELL_TIMEOUT[chosen], ex)
        seconds = time.time() - t0
        executed = site / "notebooks" / f"{name}.ipynb"
        timed.append({"chapter": name, "seconds": seconds, "profile": chosen,
                      "trained": _trained(executed)})
        if chosen in COMMITTED_PROFILES and profile != PUBLISHED and not ex.no_train:
            record_committed_execution(
                root, name, chosen, stamp, seconds, params, timed[-1]["trained"],
                glued_values(executed).get("exec_runs_made", "") if executed.is_file() else "")
        print(f"== {name}: " + budget.against_budget(
            seconds, load_budgets(root, chosen).get(name), timed[-1]["trained"], chosen),
            flush=True)
    missing = [n for n in chapters if not (site / "notebooks" / f"{n}.ipynb").is_file()]
    if build:
        if missing:
            raise BookError(f"chapters {missing} have not been executed; run without --only")
        t0 = time.time()
        assemble_site(root, site, mathjax_dir, base_ex.store_root)
        run_jupyter_book(site, root)
        timed.append({"chapter": "HTML build", "seconds": time.time() - t0})
    if timed:
        # A params file may name another profile than the command line's: each chapter
        # is held to the budgets of the profile it ran at.
        ran = {t["profile"] for t in timed if "profile" in t} or {profile}
        if len(ran) == 1:
            for t in timed:
                t.setdefault("profile", next(iter(ran)))
        budgets = functools.partial(load_budgets, root)
        print(budget.profiles_heading(ran, budgets), flush=True)
        print("\n".join(budget.summary(timed, budgets)), flush=True)
    return root / "_build" / "html"


def _trained(notebook: Path) -> int | None:
    """Runs a chapter trained during its execution, from what it glued."""
    glued = glued_values(notebook) if notebook.is_file() else {}
    try:
        return int(glued["exec_runs"]) - int(glued.get("exec_runs_loaded") or 0)
    except (KeyError, ValueError):
        return None
