"""The numbers behind a figure, as one tidy table read back from what was drawn.

Every chapter draws with matplotlib, seaborn or the helpers of
:mod:`implicitreg.analysis.plots`; reading the artists of the finished figure covers all
of them without asking each figure function to hand its data over. One row per drawn
point: the panel, the axis labels, the series (from the artist's label or, for seaborn's
unlabelled artists, the legend entry of its colour), what kind of mark it is, and its
coordinates; a band's row holds its lower and upper edge, a surface's row its value.

In a kernel, :func:`install` adds a ``text/csv`` representation to every displayed figure
(and to :class:`CsvTable`), so that the table travels inside the executed notebook; the
book driver writes it beside the page and links it under the figure.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Iterator

import numpy as np
import pandas as pd

COLUMNS = ["panel", "x axis", "y axis", "series", "kind", "x", "y", "low", "high", "value"]


# ----------------------------------------------------------------------- names
def _hex(color: Any) -> str | None:
    from matplotlib.colors import to_hex

    try:
        arr = np.asarray(color, dtype=float)
        if arr.ndim == 2:
            if not len(arr):
                return None
            arr = arr[0]
        return to_hex(arr, keep_alpha=False)
    except (TypeError, ValueError):
        try:
            return to_hex(color, keep_alpha=False)
        except (TypeError, ValueError):
            return None


def _handle_color(handle: Any) -> str | None:
    for getter in ("get_color", "get_facecolor", "get_edgecolor"):
        if hasattr(handle, getter):
            found = _hex(getattr(handle, getter)())
            if found:
                return found
    return None


def legend_names(fig: Any) -> dict[str, str]:
    """Colour → legend text over every legend of the figure: seaborn draws a panel's
    lines unlabelled and may put the legend on another panel or on the figure."""
    legends = [ax.get_legend() for ax in fig.axes] + list(getattr(fig, "legends", []))
    names: dict[str, str] = {}
    for leg in legends:
        if leg is None:
            continue
        handles = getattr(leg, "legend_handles", None) or getattr(leg, "legendHandles", [])
        for handle, text in zip(handles, leg.get_texts()):
            color = _handle_color(handle) if handle is not None else None
            if color and text.get_text():
                names.setdefault(color, text.get_text())
    return names


def _label(artist: Any, color: str | None, names: dict[str, str]) -> str:
    label = str(artist.get_label() or "")
    if label and not label.startswith("_"):
        return label
    return names.get(color or "", "")


def panel_name(ax: Any, index: int) -> str:
    title = ax.get_title() or ax.get_title("left") or ax.get_title("right")
    return title or f"panel {index + 1}"


def _categories(axis: Any) -> dict[float, str] | None:
    """Tick position → label where an axis is categorical (a strip plot's arms), so that
    a jittered point reads as its category."""
    labels = [t.get_text() for t in axis.get_ticklabels()]
    locs = list(axis.get_ticklocs())
    if not labels or len(labels) != len(locs):
        return None
    try:
        [float(t.replace("−", "-")) for t in labels if t]
        return None
    except ValueError:
        return {float(p): t for p, t in zip(locs, labels)}


def _as_category(v: Any, cats: dict[float, str] | None) -> Any:
    if not cats or not isinstance(v, float) or not math.isfinite(v):
        return v
    pos = min(cats, key=lambda p: abs(p - v))
    return cats[pos] if abs(pos - v) <= 0.5 else v


# ----------------------------------------------------------------------- marks
def _row(base: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {**base, **values}


def _line_rows(ax, base, names, skip) -> Iterator[dict[str, Any]]:
    for line in ax.get_lines():
        if id(line) in skip or not line.get_visible():
            continue
        color = _hex(line.get_color())
        series = _label(line, color, names)
        xs = np.asarray(line.get_xdata(), dtype=object)
        ys = np.asarray(line.get_ydata(), dtype=object)
        x_data, y_data = line.get_transform().contains_branch_seperately(ax.transData)
        if x_data and y_data:
            kind = "line" if line.get_linestyle() not in ("None", "", " ") else "point"
            for x, y in zip(xs, ys):
                yield _row(base, series=series, kind=kind, x=x, y=y)
        elif y_data and len(ys):
            yield _row(base, series=series, kind="horizontal line", y=ys[0])
        elif x_data and len(xs):
            yield _row(base, series=series, kind="vertical line", x=xs[0])


def _band_rows(coll, base, series) -> Iterator[dict[str, Any]]:
    for path in coll.get_paths():
        v = np.asarray(path.vertices, dtype=float)
        if len(v) % 2:  # the closing vertex
            v = v[:-1]
        n = (len(v) - 2) // 2
        if n < 1:
            continue
        along = "x" if coll.t_direction == "x" else "y"
        t_col, f_col = (0, 1) if along == "x" else (1, 0)
        first, second = v[1:n + 1], v[n + 2:2 * n + 2][::-1]
        for a, b in zip(first, second):
            lo, hi = sorted((a[f_col], b[f_col]))
            coord = {"x": a[t_col]} if along == "x" else {"y": a[t_col]}
            yield _row(base, series=series, kind="band", low=lo, high=hi, **coord)


def _collection_rows(ax, base, names, skip) -> Iterator[dict[str, Any]]:
    from matplotlib.collections import FillBetweenPolyCollection, PathCollection

    for coll in ax.collections:
        if id(coll) in skip or not coll.get_visible():
            continue
        if isinstance(coll, FillBetweenPolyCollection):
            color = _hex(coll.get_facecolor())
            yield from _band_rows(coll, base, _label(coll, color, names))
        elif isinstance(coll, PathCollection):
            offsets = np.asarray(coll.get_offsets(), dtype=float)
            faces = np.asarray(coll.get_facecolor())
            for i, (x, y) in enumerate(offsets.reshape(-1, 2)):
                color = _hex(faces[i % len(faces)]) if len(faces) else None
                yield _row(base, series=_label(coll, color, names), kind="point", x=x, y=y)


def _errorbar_rows(ax, base, names, skip) -> Iterator[dict[str, Any]]:
    from matplotlib.container import ErrorbarContainer

    for cont in ax.containers:
        if not isinstance(cont, ErrorbarContainer):
            continue
        data_line, caps, bars = cont.lines
        for artist in [data_line, *caps, *bars]:
            if artist is not None:
                skip.add(id(artist))
        if data_line is None or not bars:
            continue
        color = _hex(data_line.get_color())
        series = _label(cont, color, names) or _label(data_line, color, names)
        segments = bars[-1].get_segments() if cont.has_yerr else bars[0].get_segments()
        xs, ys = data_line.get_xdata(), data_line.get_ydata()
        for x, y, seg in zip(xs, ys, segments):
            seg = np.asarray(seg, dtype=float)
            col = 1 if cont.has_yerr else 0
            lo, hi = sorted(seg[:, col])
            yield _row(base, series=series, kind="mean and interval", x=x, y=y, low=lo,
                       high=hi)


def _bar_rows(ax, base, names, skip) -> Iterator[dict[str, Any]]:
    from matplotlib.container import BarContainer

    for cont in ax.containers:
        if not isinstance(cont, BarContainer):
            continue
        for patch in cont.patches:
            skip.add(id(patch))
            color = _hex(patch.get_facecolor())
            yield _row(base, series=_label(cont, color, names), kind="bar",
                       x=patch.get_x() + patch.get_width() / 2, y=patch.get_height())


def _grid_rows(ax, base) -> Iterator[dict[str, Any]]:
    """Images and filled contours: one row per grid point with its value."""
    for image in ax.get_images():
        z = np.asarray(image.get_array(), dtype=float)
        if z.ndim != 2:
            continue
        left, right, bottom, top = image.get_extent()
        xs = np.linspace(left, right, z.shape[1] + 1)
        ys = np.linspace(bottom, top, z.shape[0] + 1)
        xc, yc = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
        if image.origin == "upper":
            yc = yc[::-1]
        for i, y in enumerate(yc):
            for j, x in enumerate(xc):
                yield _row(base, kind="image", x=x, y=y, value=z[i, j])
    for coll in ax.collections:
        grid = getattr(coll, "_implicitreg_grid", None)
        if grid is None:
            continue
        x, y, z = grid
        z = np.asarray(z, dtype=float)
        xx, yy = (np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        if xx.ndim == 1:
            xx, yy = np.meshgrid(xx, yy)
        for xv, yv, zv in zip(xx.ravel(), yy.ravel(), z.ravel()):
            yield _row(base, kind="surface", x=xv, y=yv, value=zv)


def _panel_rows(ax, index, names) -> list[dict[str, Any]]:
    base = {"panel": panel_name(ax, index), "x axis": ax.get_xlabel(),
            "y axis": ax.get_ylabel()}
    skip: set[int] = {id(c) for c in ax.collections if hasattr(c, "_implicitreg_grid")}
    rows = list(_errorbar_rows(ax, base, names, skip)) + list(_bar_rows(ax, base, names, skip))
    rows += list(_line_rows(ax, base, names, skip))
    rows += list(_collection_rows(ax, base, names, skip)) + list(_grid_rows(ax, base))
    xcats, ycats = _categories(ax.xaxis), _categories(ax.yaxis)
    for r in rows:
        r["x"] = _as_category(_num(r.get("x")), xcats)
        r["y"] = _as_category(_num(r.get("y")), ycats)
    return rows


def _num(v: Any) -> Any:
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def figure_table(fig: Any) -> pd.DataFrame:
    """What a figure shows, one row per drawn point (colour bars left out)."""
    names = legend_names(fig)
    rows = []
    for i, ax in enumerate(fig.axes):
        if getattr(ax, "_colorbar", None) is not None:
            continue
        rows += _panel_rows(ax, i, names)
    table = pd.DataFrame(rows, columns=COLUMNS).dropna(axis=1, how="all")
    for col in ("x", "y", "low", "high", "value"):
        if col in table:
            numbers = pd.to_numeric(table[col], errors="coerce")
            if numbers.notna().sum() == table[col].notna().sum():
                table[col] = numbers  # numeric, so that the CSV gets its number format
    return table


def to_csv(table: pd.DataFrame) -> str:
    """CSV with missing values left empty: a reader's tools read an empty field as
    missing, where the text "nan" would need telling."""
    return table.to_csv(index=False, na_rep="", float_format="%.10g")


# ----------------------------------------------------------------------- kernel
class CsvTable:
    """A table a chapter hands to the book as CSV (``glue(name, CsvTable(frame))``):
    shown nowhere, written beside the page by the book driver."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def _repr_csv_(self) -> str:
        return to_csv(self.frame)

    def __repr__(self) -> str:
        return f"<table of {len(self.frame)} rows>"


def _figure_csv(fig: Any) -> str | None:
    try:
        table = figure_table(fig)
    except Exception as exc:  # the figure is shown all the same; only its table is missing
        import sys

        # The process's own stderr: the book build's log, not the page.
        print(f"the table behind a figure could not be read: {exc!r}", file=sys.__stderr__)
        return None
    return to_csv(table) if len(table) else None


def _keep_contour_grid() -> None:
    """A filled contour keeps no copy of the values it was drawn from, so
    ``Axes.contourf`` is wrapped to remember them on the returned set."""
    from matplotlib.axes import Axes

    if getattr(Axes.contourf, "_implicitreg", False):
        return
    original = Axes.contourf

    def contourf(self, *args, **kwargs):
        cs = original(self, *args, **kwargs)
        arrays = [a for a in args if not isinstance(a, (int, str))][:3]
        if len(arrays) == 3:
            cs._implicitreg_grid = tuple(np.asarray(a) for a in arrays)
        return cs

    contourf._implicitreg = True
    Axes.contourf = contourf


@functools.lru_cache(maxsize=None)
def _formatter_class() -> type:
    from IPython.core.formatters import BaseFormatter
    from matplotlib.figure import Figure
    from traitlets import ObjectName, Unicode

    class CSVFormatter(BaseFormatter):
        """Figures are recognised here, not registered by type: matplotlib's inline
        backend takes Figure out of every formatter's registry when it is activated,
        which happens at the first figure, after this ran."""
        format_type = Unicode("text/csv")
        print_method = ObjectName("_repr_csv_")

        def __call__(self, obj):
            if isinstance(obj, Figure):
                return _figure_csv(obj)
            return super().__call__(obj)

    return CSVFormatter


def install() -> bool:
    """Add the ``text/csv`` representation to figures shown in this IPython kernel;
    False outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    if ip is None:
        return False
    cls = _formatter_class()
    formatters = ip.display_formatter.formatters
    if not isinstance(formatters.get("text/csv"), cls):
        formatters["text/csv"] = cls(parent=ip.display_formatter)
    _keep_contour_grid()
    return True


__all__ = ["COLUMNS", "figure_table", "to_csv", "CsvTable", "install", "legend_names"]
