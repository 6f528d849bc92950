"""Figure helpers the chapters share: a mean-over-seeds line with its confidence band
(diverged runs drawn as crosses), and intervals over a strip plot."""
from __future__ import annotations

import numpy as np
import pandas as pd


ARM_ORDER = ["SGD", "GD", "GD + penalty"]

BOUNDS = {"accuracy": (0.0, 1.0)}
"""The range a metric can take: a t band over few seeds runs past it (an accuracy band
from -0.5 to 2.0 over two seeds), so a band is drawn cut to it."""


def bounds_of(df: pd.DataFrame) -> tuple[float, float] | None:
    """The range of the metric a tidy frame holds (``attrs["metric"]``, set by
    :func:`~implicitreg.analysis.tables.tidy`), or None."""
    return BOUNDS.get(str(df.attrs.get("metric", "")))


def band_plot(df: pd.DataFrame, x: str, y: str, hue: str, ax=None, order=None,
              level: float = 0.95, log: bool = False,
              bounds: tuple[float, float] | None = None):
    """Mean over seeds with a Student-t confidence band, one line per ``hue`` value.
    With ``log`` the mean and band are computed on log10 values (a geometric mean), which
    keeps the band positive for quantities spanning decades. The band is cut to
    ``bounds`` (by default the range of the frame's metric, see :func:`bounds_of`).
    Diverged runs are drawn as crosses at their last finite point, not averaged in."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    from .stats import mean_ci

    ax = ax or plt.gca()
    bounds = bounds if bounds is not None else bounds_of(df)
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
            if bounds is not None:
                lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
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


def ci_errorbars(ax, estimates: dict, color: str = "C3",
                 bounds: tuple[float, float] = (-np.inf, np.inf)) -> None:
    """Mean and 95% interval of each category, drawn over a strip plot whose categories
    are the keys of ``estimates`` in order; an interval is cut at ``bounds``, the range
    the quantity can take (a t interval of an accuracy near 0 or 1 can reach past it)."""
    for i, e in enumerate(estimates.values()):
        if e.n > 1:
            low, high = max(e.low, bounds[0]), min(e.high, bounds[1])
            ax.errorbar(i, e.value, yerr=[[e.value - low], [high - e.value]], fmt="o",
                        color=color, capsize=6, ms=8)
