"""Figures: the sorted curve with its fits (paper figure 2b) and a threshold history.

Shared by :meth:`ltrend.Result.plot` and the command line. matplotlib is an
optional extra (``pip install "ltrend[plot]"``): it is imported inside the
functions here, never when ``ltrend`` is imported.

Large score sets are thinned before drawing. The sorted curve is monotone, so
evenly spaced ranks (plus the whole anomalous tail, up to a cap) draw the same
picture at any figure resolution as every point would, in a fraction of the time
and file size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ltrend._result import Result

#: The install hint of every ImportError raised for a missing matplotlib.
PLOT_EXTRA_HINT = 'plotting needs matplotlib: pip install "ltrend[plot]"'

#: Evenly spaced ranks drawn from the sorted curve: more than a figure has pixels
#: across, so thinning is invisible.
MAX_DRAWN_POINTS = 4000

#: Most anomalous (top) ranks always drawn one by one, so each anomaly shows.
MAX_DRAWN_TAIL = 2000

#: Colours of the fits not chosen (the chosen one is blue, anomalies are red).
OTHER_FIT_COLOURS = (
    "tab:orange",
    "tab:green",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:gray",
)

#: Default figure size in inches (width, height).
FIGURE_SIZE = (7.0, 4.5)

#: Resolution of figures written to a file.
SAVE_DPI = 120


def _require_matplotlib() -> None:
    """Raise an ImportError that says how to install matplotlib, if it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise ImportError(PLOT_EXTRA_HINT) from err


def new_axes() -> Axes:
    """Axes on a new pyplot figure (shown by ``plt.show()`` in a session)."""
    _require_matplotlib()
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=FIGURE_SIZE, layout="constrained")
    return ax


def new_figure() -> tuple[Figure, Axes]:
    """A figure outside pyplot (no GUI backend, nothing to close), for files."""
    _require_matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    return figure, figure.add_subplot()


def drawn_ranks(n: int, n_top: int) -> npt.NDArray[np.intp]:
    """The ranks drawn of a sorted curve of ``n`` points whose top ``n_top`` matter.

    All ranks when ``n`` is small; otherwise :data:`MAX_DRAWN_POINTS` evenly
    spaced ranks (the first and last included) and the top
    ``min(n_top, MAX_DRAWN_TAIL)`` ranks.
    """
    if n <= MAX_DRAWN_POINTS + MAX_DRAWN_TAIL:
        return np.arange(n, dtype=np.intp)
    spread = np.linspace(0, n - 1, MAX_DRAWN_POINTS).round().astype(np.intp)
    tail = np.arange(n - min(n_top, MAX_DRAWN_TAIL), n, dtype=np.intp)
    return np.union1d(spread, tail)


def draw_result(result: Result, ax: Axes) -> None:
    """Draw the sorted scores, every degree's fit and the chosen threshold on ``ax``."""
    curve = result.sorted_scores()
    n = curve.shape[0]
    ranks = drawn_ranks(n, result.n_anomalies)
    values = np.asarray(curve[ranks], dtype=np.float64)
    threshold = result.threshold
    anomalous = values >= threshold

    ax.plot(ranks, values, color="0.35", linewidth=1.0, label="sorted scores")
    if anomalous.any():
        ax.scatter(
            ranks[anomalous],
            values[anomalous],
            s=12,
            color="tab:red",
            zorder=3,
            label=f"anomalies ({result.n_anomalies})",
        )
    others = iter(OTHER_FIT_COLOURS * len(result.table))
    for row in result.table:
        chosen = row.degree == result.degree
        fitted = result.fitted_curve(row.degree, ranks=ranks)
        ax.plot(
            ranks,
            fitted,
            color="tab:blue" if chosen else next(others),
            linewidth=2.0 if chosen else 0.9,
            linestyle="-" if chosen else "--",
            alpha=1.0 if chosen else 0.7,
            label=f"degree {row.degree}" + (" (chosen)" if chosen else ""),
            zorder=2 if chosen else 1,
        )
    if math.isfinite(threshold):
        ax.axhline(
            threshold,
            color="tab:red",
            linewidth=1.2,
            linestyle=":",
            label=f"threshold {threshold:.6g}",
        )
        title = f"L-trend threshold {threshold:.6g}: {result.n_anomalies} of {n}"
    else:
        title = f"L-trend: no split, nothing anomalous ({n} scores)"

    # The fits of high degree can swing past the data near the ends; keep the
    # view on the scores themselves.
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low) if high > low else max(abs(high), 1.0) * 0.05
    ax.set_ylim(low - margin, high + margin)
    ax.set_xlim(-0.01 * max(n - 1, 1), (n - 1) * 1.01 + 0.01)
    ax.set_xlabel("rank (scores sorted ascending)")
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")


def plot_result(result: Result, ax: Axes | None = None) -> Axes:
    """Draw ``result`` on ``ax`` (a new figure if None) and return the axes."""
    axes = new_axes() if ax is None else ax
    draw_result(result, axes)
    return axes


def draw_history(
    steps: npt.ArrayLike,
    thresholds: npt.ArrayLike,
    ax: Axes,
    *,
    until: float | None = None,
) -> None:
    """Draw a threshold over time: ``thresholds[i]`` holds from ``steps[i]`` on.

    A dot marks each refit. With ``until`` (the scores seen by now), the last
    threshold is drawn on to it. Infinite thresholds (refits with no split, so
    nothing anomalous) leave a gap.
    """
    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(thresholds, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"history: steps and thresholds must be 1-D of one length, got shapes "
            f"{x.shape} and {y.shape}"
        )
    n_refits = x.shape[0]
    if until is not None and n_refits and until > x[-1]:
        x = np.append(x, until)
        y = np.append(y, y[-1])
    shown = np.where(np.isfinite(y), y, np.nan)
    ax.plot(
        x,
        shown,
        drawstyle="steps-post",
        color="tab:red",
        marker=".",
        markevery=slice(0, n_refits),
    )
    ax.set_xlabel("scores seen")
    ax.set_ylabel("threshold")
    if n_refits:
        ax.set_title(f"L-trend threshold over time ({n_refits} refits)")
    else:
        ax.set_title("L-trend threshold over time: no refit yet")


def save_result_plot(result: Result, path: str) -> None:
    """Write the figure of ``result`` to ``path`` (format from the extension)."""
    figure, ax = new_figure()
    draw_result(result, ax)
    figure.savefig(path, dpi=SAVE_DPI)


def save_history_plot(
    steps: npt.ArrayLike,
    thresholds: npt.ArrayLike,
    path: str,
    *,
    until: float | None = None,
) -> None:
    """Write a threshold history (see :func:`draw_history`) to ``path``."""
    figure, ax = new_figure()
    draw_history(steps, thresholds, ax, until=until)
    figure.savefig(path, dpi=SAVE_DPI)
