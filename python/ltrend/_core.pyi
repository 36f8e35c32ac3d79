# Hand-written stub of the native module built from rust/python.rs; checked
# against the built module by `python -m mypy.stubtest ltrend._core`.
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_DEGREE_LIMIT",
    "MIN_SCORES",
    "ProjectionState",
    "RawFit",
    "ScanState",
    "SegmentMoments",
    "fit",
    "fit_projection",
    "project_bins",
    "project_sorted",
    "run_moments",
    "scan",
    "split_moments",
    "split_table",
]

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
    def center(self) -> float: ...
    @property
    def coefficients(self) -> npt.NDArray[np.float64]: ...

def fit(
    scores: npt.NDArray[np.float64] | npt.NDArray[np.float32],
    *,
    max_degree: int,
    nan_policy: str,
) -> RawFit: ...

# ---- Partial states for distributed fits (ltrend.dask) ----

_Scores = npt.NDArray[np.float64] | npt.NDArray[np.float32]

@final
class ScanState:
    def __new__(
        cls, n_scores: int, n_finite: int, first_non_finite: int | None
    ) -> ScanState: ...
    @property
    def n_scores(self) -> int: ...
    @property
    def n_finite(self) -> int: ...
    @property
    def first_non_finite(self) -> int | None: ...
    def merge(self, other: ScanState) -> ScanState: ...
    def finish(self, nan_policy: str) -> int: ...
    def __reduce__(self) -> tuple[type[ScanState], tuple[int, int, int | None]]: ...

@final
class ProjectionState:
    def __new__(
        cls, n: int, origin: float, count: int, sums: list[float]
    ) -> ProjectionState: ...
    @property
    def n(self) -> int: ...
    @property
    def origin(self) -> float: ...
    @property
    def count(self) -> int: ...
    @property
    def sums(self) -> npt.NDArray[np.float64]: ...
    def merge(self, other: ProjectionState) -> ProjectionState: ...
    def __reduce__(
        self,
    ) -> tuple[type[ProjectionState], tuple[int, float, int, list[float]]]: ...

@final
class SegmentMoments:
    def __new__(
        cls,
        origin: float,
        edges: list[float],
        counts: list[int],
        means: list[float],
        m2s: list[float],
    ) -> SegmentMoments: ...
    @property
    def origin(self) -> float: ...
    @property
    def edges(self) -> npt.NDArray[np.float64]: ...
    @property
    def counts(self) -> npt.NDArray[np.uint64]: ...
    @property
    def means(self) -> npt.NDArray[np.float64]: ...
    @property
    def m2s(self) -> npt.NDArray[np.float64]: ...
    def merge(self, other: SegmentMoments) -> SegmentMoments: ...
    def __reduce__(
        self,
    ) -> tuple[
        type[SegmentMoments],
        tuple[float, list[float], list[int], list[float], list[float]],
    ]: ...

def scan(values: _Scores, *, start: int) -> ScanState: ...
def project_sorted(
    values: _Scores,
    *,
    offset: int,
    n: int,
    origin: float,
    max_degree: int,
    probes: list[int],
) -> tuple[ProjectionState, npt.NDArray[np.float64]]: ...
def project_bins(bins: SegmentMoments, *, max_degree: int) -> ProjectionState: ...
def fit_projection(
    state: ProjectionState, *, center: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def run_moments(
    sorted: _Scores, bounds: npt.NDArray[np.uint64], *, origin: float
) -> SegmentMoments: ...
def split_moments(
    values: _Scores, *, thresholds: list[float], origin: float
) -> SegmentMoments: ...
def split_table(
    state: SegmentMoments, *, thresholds: list[float]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64], int | None]: ...
