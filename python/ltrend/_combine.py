"""Several detectors' scores reduced to one score per sample, the way PyThresh does.

PyThresh thresholds an ``(n_samples, n_detectors)`` matrix of scores by min-max
normalising every column, projecting the rows on the first right singular vector
(scikit-learn's ``TruncatedSVD`` with one component) and min-max normalising the
projection. The estimators in :mod:`ltrend.sklearn` and :mod:`ltrend.pythresh` do
the same, so that their combined scores (``LTREND.dscores_``) equal PyThresh's;
the minima, maxima and the projection are learned in ``fit`` and reused to score
new rows. Two choices are ours where PyThresh has none: a column (or projection)
with zero range is divided by 1 rather than 0, and rows holding a non-finite score
get a NaN combined score (left out of the fit under ``nan_policy="omit"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: PyThresh's default seed for the randomized SVD, kept so that results match.
DEFAULT_RANDOM_STATE = 1234


def _span(
    low: npt.NDArray[np.float64], high: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``high - low`` with zero ranges replaced by 1 (so constants map to 0)."""
    span = high - low
    return np.where(span > 0, span, 1.0)


class Combiner:
    """The fitted reduction from a score matrix to one score per row.

    Parameters
    ----------
    random_state : int or None
        Seed of the randomized SVD, as PyThresh's ``random_state``.
    """

    def __init__(self, random_state: int | None) -> None:
        # Imported here: this module is loaded by ltrend.pythresh before
        # ltrend.sklearn, whose import gives the install hint when scikit-learn
        # is missing.
        from sklearn.decomposition import TruncatedSVD

        self.random_state = random_state
        self.n_columns = 0
        self._column_min = np.empty(0)
        self._column_span = np.empty(0)
        self._svd = TruncatedSVD(n_components=1, random_state=random_state)
        self._out_min = 0.0
        self._out_span = 1.0

    def fit_transform(
        self, matrix: npt.NDArray[np.floating[Any]]
    ) -> npt.NDArray[np.float64]:
        """Learn the reduction from ``matrix`` and return its combined scores."""
        values = np.asarray(matrix, dtype=np.float64)
        finite = np.isfinite(values).all(axis=1)
        rows = values[finite]
        if rows.shape[0] == 0:
            raise ValueError("scores: no row has a finite score in every column")
        self.n_columns = values.shape[1]
        self._column_min = rows.min(axis=0)
        self._column_span = _span(self._column_min, rows.max(axis=0))
        normalised = (rows - self._column_min) / self._column_span
        projected: npt.NDArray[np.float64] = self._svd.fit_transform(normalised)[:, 0]
        self._out_min = float(projected.min())
        out_range = float(projected.max()) - self._out_min
        self._out_span = out_range if out_range > 0 else 1.0
        combined = np.full(values.shape[0], np.nan)
        combined[finite] = (projected - self._out_min) / self._out_span
        return combined

    def transform(
        self, matrix: npt.NDArray[np.floating[Any]]
    ) -> npt.NDArray[np.float64]:
        """Combined scores of new rows, with the minima, maxima and SVD of ``fit``."""
        values = np.asarray(matrix, dtype=np.float64)
        if values.shape[1] != self.n_columns:
            raise ValueError(
                f"X has {values.shape[1]} features, but the thresholder was fitted "
                f"on {self.n_columns} columns of scores"
            )
        finite = np.isfinite(values).all(axis=1)
        combined = np.full(values.shape[0], np.nan)
        if finite.any():
            rows = (values[finite] - self._column_min) / self._column_span
            projected = self._svd.transform(rows)[:, 0]
            combined[finite] = (projected - self._out_min) / self._out_span
        return combined
