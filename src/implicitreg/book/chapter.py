"""Helpers the chapter notebooks share: the parameter table shown at the top of each
chapter, a plotting style, tidy frames of many runs, and glue that never types a number."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from ..runs.runner import device_name
from .driver import notebook_parameters
from ..engine.data import resolve_source
from ..runs.store import Result
from ..engine.device import resolve_device

ARM_ORDER = ["SGD", "GD", "GD + penalty"]


def chapter_parameters(namespace: Mapping[str, Any], notebook: str) -> dict[str, Any]:
    """The values the chapter runs with: each name of the notebook's parameters cell,
    read from the namespace after papermill's injected cell has run."""
    names = notebook_parameters(Path(notebook))
    return {k: namespace[k] for k in names if k in namespace}


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


def ci_errorbars(ax, estimates: dict, color: str = "C3") -> None:
    """Mean and 95% interval of each category, drawn over a strip plot whose categories
    are the keys of ``estimates`` in order."""
    for i, e in enumerate(estimates.values()):
        if e.n > 1:
            ax.errorbar(i, e.value, yerr=[[e.value - e.low], [e.high - e.value]], fmt="o",
                        color=color, capsize=6, ms=8)
