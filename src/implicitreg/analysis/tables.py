"""Tidy frames of many runs and per-arm estimates with intervals: what the chapters'
analyses and the notebooks' tables are made of."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import pandas as pd

from ..runs.store import Result


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
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame.attrs["metric"] = metric  # for the range a figure may draw it in
    return frame


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
    from .stats import mean_ci_runs

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
