"""The result of a fit: the threshold, the mask, and what explains the choice."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class DegreeRow(NamedTuple):
    """One degree's candidate split (a row of :attr:`Result.table`)."""

    degree: int
    #: ``tau_d``: the maximum of the degree-``d`` fit over the sample points.
    threshold: float
    #: ``Comp_d``; NaN when one side of the split is empty, +inf when the normal
    #: side has zero variance.
    compactness: float
    #: ``|A_d|``: how many scores are at or above ``tau_d``.
    n_anomalies: int


def _json_float(value: float) -> float | str:
    """A float for JSON: non-finite values become the strings float() reads back."""
    return value if math.isfinite(value) else str(value)


def rank_abscissa(
    n: int, ranks: npt.NDArray[np.integer[Any]] | None = None
) -> npt.NDArray[np.float64]:
    """Ranks ``0..n-1`` (or only ``ranks``) mapped to ``t`` in [-1, 1] for the fits."""
    span = max(n - 1, 1)
    at = np.arange(n, dtype=np.float64) if ranks is None else ranks.astype(np.float64)
    return (2.0 * at - (n - 1)) / span


class Result:
    """The threshold learned from one set of scores, and why it was chosen.

    Attributes
    ----------
    threshold : float
        Scores ``>= threshold`` are anomalous. ``+inf`` when no degree splits the
        scores (then nothing is anomalous).
    degree : int or None
        The polynomial degree whose split won (``method="paper"``); None when
        there was no candidate, and always None for the breakpoint methods
        (every method but ``"paper"``), which fit no polynomial degree.
    mask : ndarray of bool
        In input order, True for anomalous scores. Non-finite scores left out
        with ``nan_policy="omit"`` are False.
    table : tuple of DegreeRow
        Every degree tried, with its candidate threshold, compactness and count;
        empty for the breakpoint methods.
    breakpoint : int or None
        Breakpoint methods: the rank on the sorted curve where the anomalies
        start (``sorted_scores()[breakpoint:]`` are anomalous and
        ``threshold == sorted_scores()[breakpoint]``); None for ``"paper"`` and
        when the method found no split.
    n_omitted : int
        Non-finite scores left out of the fit (only with ``nan_policy="omit"``).
    method : str
        The method that produced the result (see ``ltrend.METHODS``).
    """

    __slots__ = (
        "_center",
        "_coefficients",
        "_sorted",
        "breakpoint",
        "degree",
        "mask",
        "method",
        "n_omitted",
        "table",
        "threshold",
    )

    def __init__(
        self,
        *,
        threshold: float,
        degree: int | None,
        mask: npt.NDArray[np.bool_],
        table: tuple[DegreeRow, ...],
        sorted_scores: npt.NDArray[np.floating[Any]],
        center: float,
        coefficients: npt.NDArray[np.float64],
        n_omitted: int,
        method: str,
        breakpoint: int | None = None,
    ) -> None:
        self.threshold = float(threshold)
        self.degree = degree
        self.mask = mask
        self.table = table
        self.n_omitted = n_omitted
        self.method = method
        self.breakpoint = breakpoint
        self._sorted = sorted_scores
        self._center = center
        self._coefficients = coefficients

    @property
    def n_anomalies(self) -> int:
        """How many scores are anomalous."""
        return int(np.count_nonzero(self.mask))

    @property
    def n_scores(self) -> int:
        """How many scores were given, non-finite ones included."""
        return int(self.mask.shape[0])

    @property
    def labels(self) -> npt.NDArray[np.int8]:
        """0/1 labels in input order (1 = anomalous), as PyOD and PyThresh use."""
        return self.mask.astype(np.int8)

    def sorted_scores(self) -> npt.NDArray[np.floating[Any]]:
        """The sorted curve: the finite scores in ascending order (a read-only view)."""
        view = self._sorted.view()
        view.flags.writeable = False
        return view

    def fitted_curve(
        self, degree: int | None = None, *, ranks: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.float64]:
        """The least-squares polynomial of ``degree`` at the ranks of the sorted curve.

        Defaults to the chosen degree and to every rank ``0..n-1``; ``ranks``
        picks some of them (integers in ``[0, n)``). Computed on demand from the
        stored coefficients, so a result never holds n x max_degree fitted values.
        Only ``method="paper"`` fits polynomials; for the breakpoint methods this
        raises ``ValueError``.
        """
        if not self.table:
            raise ValueError(
                f"fitted_curve: method {self.method!r} fits no polynomial; use "
                "sorted_scores() and breakpoint to draw its split"
            )
        if degree is None:
            degree = self.degree if self.degree is not None else 1
        available = [row.degree for row in self.table]
        if degree not in available:
            raise ValueError(f"degree: must be one of {available}, got {degree}")
        coefficients = self._coefficients[degree - 1, : degree + 1]
        n = len(self._sorted)
        at = None if ranks is None else np.asarray(ranks)
        if at is not None and (
            at.dtype.kind not in "iu" or (at.size and (at.min() < 0 or at.max() >= n))
        ):
            raise ValueError(f"ranks: must be integers in [0, {n}), got {at!r}")
        t = rank_abscissa(n, at)
        fitted = self._center + np.polynomial.polynomial.polyval(t, coefficients)
        return np.asarray(fitted, dtype=np.float64)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Draw the sorted scores, each degree's fit and the threshold (figure 2b).

        Needs matplotlib (``pip install "ltrend[plot]"``); it is imported here,
        never by ``import ltrend``.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; by default a new figure.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn on.

        Raises
        ------
        ImportError
            If matplotlib is not installed (the message says how to install it).

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> import ltrend
        >>> scores = np.concatenate([np.linspace(0.0, 1.0, 300), [3.0, 5.0]])
        >>> ax = ltrend.fit(scores).plot()
        >>> ax.get_xlabel()
        'rank (scores sorted ascending)'
        """
        from ltrend._plot import plot_result

        return plot_result(self, ax)

    def to_dict(self, *, include_mask: bool = False) -> dict[str, Any]:
        """A JSON-ready summary; non-finite floats are written as "inf" or "nan"."""
        summary: dict[str, Any] = {
            "method": self.method,
            "threshold": _json_float(self.threshold),
            "degree": self.degree,
            "breakpoint": self.breakpoint,
            "n_anomalies": self.n_anomalies,
            "n_scores": self.n_scores,
            "n_omitted": self.n_omitted,
            "table": [
                {
                    "degree": row.degree,
                    "threshold": _json_float(row.threshold),
                    "compactness": _json_float(row.compactness),
                    "n_anomalies": row.n_anomalies,
                }
                for row in self.table
            ],
        }
        if include_mask:
            summary["anomaly_indices"] = np.flatnonzero(self.mask).tolist()
        return summary

    def __repr__(self) -> str:
        return (
            f"Result(method={self.method!r}, threshold={self.threshold:.6g}, "
            f"degree={self.degree}, n_anomalies={self.n_anomalies}, "
            f"n_scores={self.n_scores})"
        )

    def __str__(self) -> str:
        lines = [f"threshold    {self.threshold:.6g}"]
        if self.table:
            chosen = "none (no split)" if self.degree is None else str(self.degree)
            lines.append(f"degree       {chosen}")
        else:
            at = "none (no split)" if self.breakpoint is None else self.breakpoint
            lines.append(f"method       {self.method}, breakpoint {at}")
        lines.append(f"anomalies    {self.n_anomalies} of {self.n_scores}")
        if self.n_omitted:
            lines.append(f"omitted      {self.n_omitted} non-finite")
        if not self.table:
            return "\n".join(lines)
        lines.append("")
        lines.append("degree     threshold   compactness   anomalies")
        for row in self.table:
            marker = "  <- chosen" if row.degree == self.degree else ""
            lines.append(
                f"{row.degree:>6}  {row.threshold:>12.6g}  {row.compactness:>12.6g}"
                f"  {row.n_anomalies:>10}{marker}"
            )
        return "\n".join(lines)
