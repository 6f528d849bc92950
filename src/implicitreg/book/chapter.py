"""Helpers the chapter notebooks share: the parameter table shown at the top of each
chapter, a plotting style, tidy frames of many runs, and glue that never types a number."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
import sys
from typing import Any, Iterable, Mapping, MutableMapping

import pandas as pd

from ..runs.runner import device_name
from .parameters import (BookError, check_values, notebook_parameters,
                     parse_parameter_source)
from ..engine.data import resolve_source
from ..runs.store import Result, project_root
from ..engine.device import resolve_device

ARM_ORDER = ["SGD", "GD", "GD + penalty"]


def _package_checkout() -> Path | None:
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
    for root in (project_root(cwd), _package_checkout()):
        if root is not None:
            candidates.append(root / "notebooks" / name)
    for c in candidates:
        if c.is_file():
            return c.resolve()
    return None


def _history() -> list[str]:
    """Sources of the cells this kernel has run, oldest first ([] outside IPython)."""
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
    """Names papermill injected (its cell starts with "# Parameters"), or None when the
    notebook was not run by papermill."""
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
    for root in (project_root(), _package_checkout()):
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


def chapter_parameters(namespace: MutableMapping[str, Any], notebook: str) -> dict[str, Any]:
    """The values the chapter runs with: each name of the notebook's parameters cell,
    read from the namespace after papermill's injected cell (if any) has run.

    Works from any working directory, under the book driver, plain papermill, Jupyter or
    Colab: the declaration is read from the source notebook (see :func:`locate_notebook`)
    or, when only the running notebook exists, from the kernel's history. Values given
    from outside are checked as the book driver checks them (same message), before any
    training. When a profile other than the declared default is named
    (``-p profile smoke``), its values are put into ``namespace`` for every parameter
    that was not given explicitly."""
    label = Path(notebook).name
    chapter_name = Path(label).stem
    path = locate_notebook(notebook)
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
    _glue_execution(params, given)
    return params


def _glue_execution(params: Mapping[str, Any], given: Mapping[str, Any]) -> None:
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
    rows += [(k, v) for k, v in params.items() if k not in ("profile", "executed_at")]
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


def tidy(results: Iterable[tuple[str, Result]], metric: str, split: str) -> pd.DataFrame:
    """One row per (arm, seed, step) for ``metric`` on ``split``; diverged runs carry
    ``diverged=True`` so that figures can mark them instead of dropping them."""
    frames = []
    for arm, r in results:
        c = r.curve(metric, split).copy()
        c["arm"] = arm
        c["seed"] = r.config.seed
        c["diverged"] = r.summary["diverged"]
        frames.append(c)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def glue(name: str, value: Any, fmt: str | None = None) -> None:
    """myst-nb's glue with display off; a format makes the glued value a string so the
    text shows exactly the digits the notebook chose."""
    from myst_nb import glue as _glue

    _glue(name, format(value, fmt) if fmt is not None else value, display=False)


def band_plot(df: pd.DataFrame, x: str, y: str, hue: str, ax=None, order=None,
              level: float = 0.95, log: bool = False):
    """Mean over seeds with a Student-t confidence band, one line per ``hue`` value.
    With ``log`` the mean and band are computed on log10 values (a geometric mean), which
    keeps the band positive for quantities spanning decades. Diverged runs are drawn as
    crosses at their last finite point, not averaged in."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    from ..analysis.stats import mean_ci

    ax = ax or plt.gca()
    present = list(dict.fromkeys(df[hue]))
    hues = order or ([h for h in ARM_ORDER if h in present]
                     + [h for h in present if h not in ARM_ORDER])
    palette = dict(zip(hues, sns.color_palette("colorblind", len(hues))))
    for h in hues:
        d = df[df[hue] == h]
        ok = d[~d.get("diverged", False)] if "diverged" in d else d
        if len(ok):
            def fwd(v):
                return np.log10(np.clip(v, 1e-300, None)) if log else v

            def inv(v):
                return 10.0 ** v if log else v

            stats = ok.groupby(x)[y].apply(lambda v: mean_ci(fwd(v.to_numpy()), level))
            xs = stats.index.to_numpy()
            m = inv(np.array([e.value for e in stats]))
            lo = inv(np.array([e.low for e in stats]))
            hi = inv(np.array([e.high for e in stats]))
            n = max(e.n for e in stats)
            ax.plot(xs, m, label=f"{h} (n={n})", color=palette[h])
            if n > 1:
                ax.fill_between(xs, lo, hi, alpha=0.25, color=palette[h], linewidth=0)
        bad = d[d["diverged"]] if "diverged" in d else d.iloc[:0]
        for _, g in bad.groupby("seed") if len(bad) else []:
            g = g[np.isfinite(g[y])]
            if len(g):
                ax.plot(g[x].iloc[-1], g[y].iloc[-1], "x", color=palette[h], ms=9,
                        label=f"{h}: diverged")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax


def final_values(results: Iterable[tuple[str, Result]], metric: str = "accuracy",
                 split: str = "test") -> pd.DataFrame:
    """One row per run: arm, seed, the final value and whether the run diverged."""
    return pd.DataFrame([{"arm": arm, "seed": r.config.seed, "value": r.final(metric, split),
                          "diverged": r.summary["diverged"]} for arm, r in results])


def arm_estimates(final: pd.DataFrame, arms: Iterable[Any], column: str = "value",
                  by: str = "arm") -> dict:
    """Mean and 95% interval of ``column`` per arm over the runs that did not diverge;
    each :class:`~implicitreg.analysis.stats.Estimate` counts the diverged ones, so that
    its ``fmt`` says "diverged in 2 of 2 seeds" instead of printing NaN."""
    from ..analysis.stats import mean_ci_runs

    out = {}
    for arm in arms:
        d = final[final[by] == arm]
        div = d["diverged"] if "diverged" in d else None
        out[arm] = mean_ci_runs(d[column].to_numpy(), None if div is None else div.to_numpy())
    return out


def estimate_table(estimates: Mapping[Any, Any], scale: float = 1.0, digits: int = 1,
                   unit: str = "", index: str = "arm") -> pd.DataFrame:
    """One row per estimate as text: mean, 95% interval, seeds used, and diverged runs
    in words (an arm whose every run diverged says so in the mean column)."""
    rows = []
    for name, e in estimates.items():
        total = e.n + e.diverged
        if e.missing is not None:
            mean, ci = e.missing, ""
        else:
            mean = f"{e.value * scale:.{digits}f}{unit}"
            ci = (f"[{e.low * scale:.{digits}f}, {e.high * scale:.{digits}f}]"
                  if e.n > 1 and pd.notna(e.low) else "(n=1, no interval)")
        rows.append({index: name, "mean": mean, "95% CI": ci, "seeds used": f"{e.n} of {total}",
                     "diverged": f"{e.diverged} of {total}" if e.diverged else "none"})
    return pd.DataFrame(rows).set_index(index)


def not_assessable(estimates: Mapping[Any, Any]) -> str | None:
    """Why a verdict that needs every one of ``estimates`` cannot be computed, in words
    ("GD + penalty diverged in 2 of 2 seeds"), or None when each has a value."""
    reasons = [f"{name} {e.missing}" for name, e in estimates.items() if e.missing is not None]
    return "; ".join(reasons) if reasons else None


def describe_scale(params: Mapping[str, Any], what: str) -> str:
    """A sentence on the scale the chapter ran at, from the parameters it ran with:
    "This build ran the `smoke` profile: ..." followed by ``what``."""
    profile = params.get("profile") or "(default)"
    return f"This build ran the `{profile}` profile: {what}"


def ci_errorbars(ax, estimates: dict, color: str = "C3") -> None:
    """Mean and 95% interval of each category, drawn over a strip plot whose categories
    are the keys of ``estimates`` in order."""
    for i, e in enumerate(estimates.values()):
        if e.n > 1:
            ax.errorbar(i, e.value, yerr=[[e.value - e.low], [e.high - e.value]], fmt="o",
                        color=color, capsize=6, ms=8)
