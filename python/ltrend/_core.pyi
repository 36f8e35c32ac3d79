# Hand-written stub of the native module built from rust/python.rs; checked
# against the built module by `python -m mypy.stubtest ltrend._core`.
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_DEGREE_LIMIT", "MIN_SCORES", "RawFit", "fit", "fit_sorted"]

MAX_DEGREE_LIMIT: int
MIN_SCORES: int

@final
class RawFit:
    @property
    def threshold(self) -> float: ...
    @property
    def degree(self) -> int | None: ...
    @property
    def n_anomalies(self) -> int: ...
    @property
    def n_omitted(self) -> int: ...
    @property
    def mask(self) -> npt.NDArray[np.bool_]: ...
    @property
    def sorted_scores(self) -> npt.NDArray[np.float64] | npt.NDArray[np.float32]: ...
    @property
    def degrees(self) -> npt.NDArray[np.uint64]: ...
    @property
    def thresholds(self) -> npt.NDArray[np.float64]: ...
    @property
    def compactness(self) -> npt.NDArray[np.float64]: ...
    @property
    def counts(self) -> npt.NDArray[np.uint64]: ...
    @property
    def rows(self) -> list[tuple[int, float, float, int]]: ...
    @property
    def center(self) -> float: ...
    @property
    def coefficients(self) -> npt.NDArray[np.float64]: ...

def fit(
    scores: npt.NDArray[np.float64] | npt.NDArray[np.float32],
    *,
    max_degree: int,
    nan_policy: str,
) -> RawFit: ...
def fit_sorted(
    scores: npt.NDArray[np.float64] | npt.NDArray[np.float32],
    sorted: npt.NDArray[np.float64] | npt.NDArray[np.float32],
    *,
    max_degree: int,
    nan_policy: str,
) -> RawFit: ...
