"""Helpers the chapter notebooks share: the parameter table shown at the top of each
chapter, a plotting style, and glue that never types a number (tidy frames of runs and
per-arm estimates are in :mod:`implicitreg.analysis.tables`, figure helpers in
:mod:`implicitreg.analysis.plots`)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
import re
import sys
from typing import Any, Iterable, Mapping, MutableMapping

import pandas as pd

from ..runs.runner import device_name
from .parameters import (BookError, check_values, notebook_parameters,
                     parse_parameter_source)
from ..engine.data import resolve_source
from ..runs.store import Result, locate_notebook, package_checkout, project_root
from ..analysis.tables import estimate_table  # noqa: F401  (the notebooks' tables)
from ..engine.device import resolve_device
from ..runs.execution import is_complete


# ---------------------------------------------------------------- a chapter's parameters
# Under the book driver the kernel is handed every value, validated, with a whole
# ``exec_config``: it builds the chapter's Params and its ExecConfig from them and reads
# nothing else (no notebook, no profile file, no history, no environment). A notebook run
# by hand (plain papermill, Jupyter, Colab) is its own entry point: it reads its
# parameters cell once, the named profile once, and the shell's settings for what its
# ``exec_config`` leaves out.
META = ("profile", "executed_at", "exec_config")
"""Parameters of every chapter notebook that are not fields of its ``Params``."""


def _history() -> list[str]:
    """Sources of the cells this kernel has run, oldest first ([] outside IPython); read
    by a notebook run by hand only."""
    try:
        ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return []
    return [s for s in (ip.user_ns.get("In") or []) if s]


def _parse(src: str) -> dict[str, Any] | None:
    try:
        return parse_parameter_source(src)
    except Exception:  # not a cell of literal assignments
        return None


def _injected_names(history: list[str]) -> set[str] | None:
    """Names plain papermill injected (its cell starts with "# Parameters"), or None when
    the notebook was not run by papermill."""
    for src in reversed(history):
        if src.lstrip().startswith("# Parameters"):
            parsed = _parse(src)
            if parsed is not None:
                return set(parsed)
    return None


def _declared_from_history(history: list[str]) -> dict[str, Any] | None:
    """The parameters cell as this kernel ran it: the last cell that assigns
    ``profile`` and is not papermill's injected cell (when only the notebook exists)."""
    for src in reversed(history):
        if src.lstrip().startswith("# Parameters"):
            continue
        parsed = _parse(src)
        if parsed and "profile" in parsed:
            return parsed
    return None


def chapter_profile_values(chapter: str, profile: str,
                           notebook: Path | None = None) -> dict[str, Any] | None:
    """The values of ``profile`` in ``notebooks/profiles/<chapter>.yaml`` next to the
    notebook; {} when the chapter has no profile file, None when it cannot be found."""
    import yaml

    folders = [notebook.parent / "profiles"] if notebook is not None else []
    for root in (project_root(), package_checkout()):
        if root is not None:
            folders.append(root / "notebooks" / "profiles")
    for folder in folders:
        f = folder / f"{chapter}.yaml"
        if f.is_file():
            profiles = yaml.safe_load(f.read_text()) or {}
            if profile not in profiles:
                raise BookError(f"{f}: no profile {profile!r}; it has {sorted(profiles)}")
            return dict(profiles[profile] or {})
    return {} if notebook is not None else None


def _field_names(chapter_name: str) -> list[str] | None:
    """The fields of the chapter module's ``Params`` (None without one)."""
    from ..chapters.protocol import find

    params = getattr(find(chapter_name), "Params", None)
    return list(params.names()) if params is not None else None


def chapter_parameters(namespace: MutableMapping[str, Any], notebook: str) -> dict[str, Any]:
    """The values the chapter runs with, from the namespace after papermill's injected
    cell (if any) has run.

    Under the book driver (its ``exec_config`` names every field of ExecConfig) the
    namespace holds every value, validated by the driver, which built the chapter's
    ``Params`` from them: they are taken as they are, and nothing is read.

    A notebook run by hand (plain papermill from any folder, Jupyter or Colab) reads its
    declaration once, from the source notebook (see :func:`locate_notebook`) or, when
    only the running notebook exists, from the kernel's history; papermill's injected
    names come from that history too. Values given from outside are checked as the book
    driver checks them (same message), before any training. When a profile is named
    (``-p profile smoke``), its values are read once and put into ``namespace`` for
    every parameter that was not given explicitly."""
    label = Path(notebook).name
    chapter_name = Path(label).stem
    _install_display_hooks()  # every chapter calls this first; not every one draws
    names = _field_names(chapter_name)
    if is_complete(namespace.get("exec_config")) and names is not None:
        params = {k: namespace[k] for k in (*META, *names) if k in namespace}
        _glue_execution(params)
        return params
    return _parameters_by_hand(namespace, label, chapter_name)


def _parameters_by_hand(namespace: MutableMapping[str, Any], label: str,
                        chapter_name: str) -> dict[str, Any]:
    """:func:`chapter_parameters` for a notebook run without the book driver."""
    path = locate_notebook(label)
    history = _history()
    declared = notebook_parameters(path) if path is not None else _declared_from_history(history)
    if declared is None:
        raise BookError(f"{label}: cannot find the notebook's parameters cell (not in "
                        f"{Path.cwd()}, its notebooks/ folder or the project, and not in "
                        "this kernel's history); run the parameters cell first")
    injected = _injected_names(history)
    if injected is None:  # not papermill: what differs from the declaration was given
        given = {k: namespace[k] for k in declared
                 if k in namespace and namespace[k] != declared[k]}
    else:
        given = {k: namespace[k] for k in injected if k in namespace}
    check_values(label, declared, given)
    profile = namespace.get("profile", declared.get("profile"))
    if "profile" in given:
        values = chapter_profile_values(chapter_name, profile, path)
        if values is None:
            print(f"{label}: the profile files are not available here, so the values of "
                  f"profile {profile!r} could not be read; the notebook's own values are "
                  "used", file=sys.stderr)
            values = {}
        check_values(f"{label} (profile {profile})", declared, values)
        for k, v in values.items():
            if k not in given:
                namespace[k] = v
    params = {k: namespace[k] for k in declared if k in namespace}
    _glue_execution(params)
    return params


def execution(values: Mapping[str, Any], chapter_name: str | None = None):
    """How this chapter's runs execute (:class:`~implicitreg.runs.execution.ExecConfig`),
    from the notebook's ``exec_config`` parameter alone: the book driver passes every
    field, and nothing is read; a notebook run by hand passes some or none, and the
    others are the shell's ``IMPLICITREG_*`` variables
    (:func:`~implicitreg.runs.execution.from_parameter`). Its settings are handed to the
    engine (where the data is, the native kernel). At a committed profile with training
    allowed, ``chapter_name``'s design must be registered (a notebook run by hand meets
    the guard the book driver meets)."""
    from ..chapters import registry
    from ..runs.execution import ExecError, from_parameter

    try:
        ex = from_parameter(values.get("exec_config") or {})
    except ExecError as exc:
        raise BookError(str(exc)) from None
    ex.apply()
    if chapter_name is not None and not ex.no_train:
        registry.require_registered(chapter_name, str(values.get("profile")), values)
    return ex


def _glue_execution(params: Mapping[str, Any]) -> None:
    """Facts about this execution that the book's execution report and landing page
    read back from the executed notebook: profile, device, package versions."""
    import importlib.metadata as md
    import platform

    dev = resolve_device(str(params.get("device", "auto")))
    versions = []
    for pkg in ("implicitreg", "torch", "numpy"):
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    versions.append(f"python {platform.python_version()}")
    glue("exec_profile", str(params.get("profile", "(default)")))
    glue("exec_device", f"{dev.type}: {device_name(str(dev))}")
    glue("exec_versions", ", ".join(versions))


def _results(obj: Any) -> Iterable[Result]:
    if isinstance(obj, Result):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _results(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _results(v)


def glue_run_counts(*collections: Any) -> None:
    """Glue how many distinct runs the chapter used and how many of them were loaded
    from the run store rather than trained (``exec_runs``, ``exec_runs_loaded``); any
    mix of results, (label, result) pairs, lists and dicts of them."""
    seen: dict[str, bool] = {}
    for r in _results(collections):
        seen[r.key] = seen.get(r.key, True) and bool(r.cached)
    total, loaded = len(seen), sum(seen.values())
    glue("exec_runs", total)
    glue("exec_runs_loaded", loaded)
    from .figdata import CsvTable, install

    table = run_table(collections)
    if len(table) and install():
        glue(RUN_TABLE_GLUE, CsvTable(table))
    # When the runs themselves were made (their provenance), for the committed-set record.
    from ..chapters.registry import run_interval

    interval = run_interval({r.key: r for r in _results(collections)}.values())
    glue("exec_runs_made", " / ".join(interval) if interval else "")


def glue_case_counts(counts: Mapping[str, Any], table: pd.DataFrame) -> None:
    """What :func:`glue_run_counts` glues, for a chapter whose runs are cases it computes
    and caches itself rather than runs of the engine (``central_flow``): its own counts
    (``exec_runs``, ``exec_runs_loaded``, ``exec_runs_made``) and its table of cases,
    whose first column ``run`` is each case's cache key."""
    for key in ("exec_runs", "exec_runs_loaded", "exec_runs_made"):
        glue(key, counts[key])
    from .figdata import CsvTable, install

    if len(table) and install():
        glue(RUN_TABLE_GLUE, CsvTable(table))


def parameter_table(params: Mapping[str, Any], dataset: str | None = None,
                    device: str = "auto") -> pd.DataFrame:
    """A readable table of the chapter's parameters with the profile, the device, the
    dataset source and the time of execution."""
    dev = resolve_device(device)
    rows = [("profile", params.get("profile", "(default)"))]
    rows.append(("executed", params.get("executed_at") or
                 _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")))
    rows.append(("device", f"{dev.type}: {device_name(str(dev))}"))
    if dataset is not None:
        rows.append(("dataset source", resolve_source(dataset)))
    rows += [(k, v) for k, v in params.items() if k not in ("profile", "executed_at", "exec_config")]
    rows = [(k, str(v)) for k, v in rows]  # mixed types would be shown as floats
    return pd.DataFrame(rows, columns=["parameter", "value"]).set_index("parameter")


def set_style() -> None:
    """The book's figure style; also silences library deprecation notices that would
    otherwise be printed into the chapters."""
    import warnings

    import matplotlib as mpl
    import seaborn as sns

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "figure.figsize": (7, 4)})
    _install_display_hooks()




def glue(name: str, value: Any, fmt: str | None = None) -> None:
    """myst-nb's glue with display off; a format makes the glued value a string so the
    text shows exactly the digits the notebook chose. A missing number reads "–", never
    "nan"."""
    from myst_nb import glue as _glue

    value = format(value, fmt) if fmt is not None else value
    if isinstance(value, float) and value != value:
        value = MISSING
    elif isinstance(value, str):
        value = missing_as_dash(value)
    _glue(name, value, display=False)


MISSING = "–"
"""How a page shows a missing value."""

_NAN_WORD = re.compile(r"(?<![\w.])[+-]?(?:nan|NaN|NAN)%?(?![\w])")
_NAN_CELL = re.compile(r">\s*(?:NaN|nan|NaT|&lt;NA&gt;)\s*<")


def missing_as_dash(text: str) -> str:
    """``text`` with each "nan" that a number format produced (a word of its own)
    replaced by "–"."""
    return _NAN_WORD.sub(MISSING, text)


def _html_without_nan(html: str | None) -> str | None:
    return None if html is None else _NAN_CELL.sub(f">{MISSING}<", html)


def _install_display_hooks() -> None:
    """In a kernel: tables show missing values as "–" (pandas writes NaN), and every
    figure carries the table of what it draws, for the book's download links."""
    from .figdata import install

    if not install():
        return
    from IPython import get_ipython
    from pandas.io.formats.style import Styler

    html = get_ipython().display_formatter.formatters["text/html"]
    for kind in (pd.DataFrame, Styler):
        html.for_type(kind, lambda obj: _html_without_nan(obj._repr_html_()))












def describe_scale(params: Mapping[str, Any], what: str) -> str:
    """A sentence on the scale the chapter ran at, from the parameters it ran with:
    "This build ran the `smoke` profile: ..." followed by ``what``."""
    profile = params.get("profile") or "(default)"
    return f"This build ran the `{profile}` profile: {what}"




RUN_TABLE_GLUE = "exec_run_table"
"""The glue key of a chapter's table of runs (CSV), which the book writes beside the page
and links from the execution report."""


def _labelled(obj: Any, label: str = "") -> Iterable[tuple[str, Result]]:
    if isinstance(obj, Result):
        yield label, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _labelled(v, str(k))
    elif isinstance(obj, (list, tuple)):
        if len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], Result):
            yield obj[0], obj[1]
            return
        for v in obj:
            yield from _labelled(v, label)


def _flat(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def run_table(*collections: Any) -> pd.DataFrame:
    """One row per distinct run: its store key, the label the chapter gave it, whether it
    was loaded from the store, its configuration, and its final training and test
    accuracy and loss where recorded."""
    import dataclasses

    rows: dict[str, dict[str, Any]] = {}
    for label, r in _labelled(collections):
        if r.key in rows:
            continue
        row = {"run": r.key, "label": label, "loaded from the store": bool(r.cached)}
        row.update({k: _flat(v) for k, v in dataclasses.asdict(r.config).items()})
        for split in ("train", "test"):
            for metric in ("accuracy", "loss"):
                row[f"final {split} {metric}"] = r.final(metric, split)
        row["diverged"] = bool(r.summary.get("diverged", False))
        rows[r.key] = row
    return pd.DataFrame(list(rows.values()))


def registered_criteria(mod: Any):
    """A chapter's registered criteria and their revisions as Markdown definition blocks,
    for the collapsed cell under the parameters (see
    :func:`~implicitreg.chapters.criteria.criteria_markdown`)."""
    from IPython.display import Markdown

    from ..chapters import registry
    from ..chapters.criteria import criteria_markdown

    times = registry.item_times(getattr(mod, "CHAPTER", mod.__name__.rsplit(".", 1)[-1]))
    return Markdown(criteria_markdown(mod.CRITERIA, getattr(mod, "REVISIONS", ()), times))


def glue_verdict_digest(glued: Mapping[str, Any], keys: Iterable[str], name: str,
                        statistics: Iterable[str] = ()) -> None:
    """For the prose that sums a chapter up: each verdict of ``keys`` (glued values, in
    the order the prose gives them) as its verdict phrase alone, glued as
    ``<key>_word``; each premise that failed, once, glued as ``name`` ("none" when every
    premise held); each of ``statistics`` without the verdict it quotes, as
    ``<key>_brief``. A verdict that rests on another quotes that one's failed premise
    again; the prose then says it once."""
    from .verdicts import WORD_SUFFIX, brief, failed_premises, verdict_word

    keys = [k for k in keys if k in glued]
    for k in keys:
        glue(f"{k}{WORD_SUFFIX}", verdict_word(str(glued[k])))
    for k in statistics:
        if k in glued:
            glue(f"{k}_brief", brief(str(glued[k])))
    reasons = failed_premises(str(glued[k]) for k in keys)
    glue(name, "; ".join(reasons) if reasons else "none")


def show(fig: Any) -> None:
    """Show ``fig`` now: the inline backend otherwise shows a cell's figures at its end,
    after the tables the cell displays below them."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
