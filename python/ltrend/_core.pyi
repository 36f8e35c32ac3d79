# Hand-written stub of the native module built from rust/python.rs; checked
# against the built module by `python -m mypy.stubtest ltrend._core`.
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_DEGREE_LIMIT",
    "METHODS",
    "MIN_SCORES",
    "MONITOR_HISTORY_LIMIT",
    "MONITOR_MAX_WINDOW",
    "LineMoments",
    "Monitor",
    "MonitorStatus",
    "ProjectionState",
    "RawFit",
    "RescanState",
    "ScanState",
    "SegmentMoments",
    "SplitFrame",
    "absolute_deviation",
    "exponential_depth",
    "fit",
    "fit_projection",
    "fit_sorted",
    "log_scale",
    "project_bins",
    "project_sorted",
    "quantile_ranks",
    "rank_counts",
    "raw_count",
    "rescan",
    "run_moments",
    "scan",
    "split_cuts",
    "split_moments",
    "split_summary",
    "split_table",
    "untrusted_ranges",
]

MAX_DEGREE_LIMIT: int
MIN_SCORES: int
METHODS: list[str]

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
    @property
    def breakpoint(self) -> int | None: ...

def fit(
    scores: npt.NDArray[np.float64] | npt.NDArray[np.float32],
    *,
    max_degree: int,
    nan_policy: str,
    method: str = "paper",
) -> RawFit: ...

MONITOR_MAX_WINDOW: int
MONITOR_HISTORY_LIMIT: int

@final
class MonitorStatus:
    @property
    def threshold(self) -> float | None: ...
    @property
    def degree(self) -> int | None: ...
    @property
    def last_refit(self) -> int | None: ...
    @property
    def refit_size(self) -> int | None: ...
    @property
    def refit_anomalies(self) -> int | None: ...
    @property
    def n_refits(self) -> int: ...
    @property
    def n_seen(self) -> int: ...
    @property
    def n_flagged(self) -> int: ...
    @property
    def n_omitted(self) -> int: ...
    @property
    def n_window(self) -> int: ...
    @property
    def since_refit(self) -> int: ...
    @property
    def table(self) -> list[tuple[int, float, float, int]]: ...
    @property
    def window(self) -> int: ...
    @property
    def refit_every(self) -> int: ...
    @property
    def min_scores(self) -> int: ...
    @property
    def max_degree(self) -> int: ...
    @property
    def nan_policy(self) -> str: ...
    @property
    def method(self) -> str: ...

@final
class Monitor:
    def __new__(
        cls,
        *,
        window: int,
        refit_every: int,
        min_scores: int,
        max_degree: int,
        nan_policy: str,
        method: str,
    ) -> Monitor: ...
    def update(self, score: float) -> bool: ...
    def update_many(
        self, scores: npt.NDArray[np.float64] | npt.NDArray[np.float32]
    ) -> npt.NDArray[np.bool_]: ...
    def refit(self) -> None: ...
    def status(self) -> MonitorStatus: ...
    def history(
        self,
    ) -> tuple[
        MonitorStatus,
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        list[int | None],
    ]: ...
    def window_scores(self) -> npt.NDArray[np.float64]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> Monitor: ...

# ---- Partial states for distributed fits (ltrend.dask) ----

_Scores = npt.NDArray[np.float64] | npt.NDArray[np.float32]

@final
class ScanState:
    def __new__(
        cls,
        n_scores: int,
        n_finite: int,
        first_non_finite: int | None,
        min: float,
        max: float,
    ) -> ScanState: ...
    @property
    def n_scores(self) -> int: ...
    @property
    def n_finite(self) -> int: ...
    @property
    def first_non_finite(self) -> int | None: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    @property
    def scale_exponent(self) -> int | None: ...
    def merge(self, other: ScanState) -> ScanState: ...
    def finish(self, nan_policy: str) -> int: ...
    def __reduce__(
        self,
    ) -> tuple[type[ScanState], tuple[int, int, int | None, float, float]]: ...

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
        exponent: int,
        edges: list[float],
        counts: list[int],
        means: list[float],
        m2s: list[float],
        mins: list[float],
        maxs: list[float],
    ) -> SegmentMoments: ...
    @property
    def origin(self) -> float: ...
    @property
    def exponent(self) -> int: ...
    @property
    def edges(self) -> npt.NDArray[np.float64]: ...
    @property
    def counts(self) -> npt.NDArray[np.uint64]: ...
    @property
    def means(self) -> npt.NDArray[np.float64]: ...
    @property
    def m2s(self) -> npt.NDArray[np.float64]: ...
    @property
    def mins(self) -> npt.NDArray[np.float64]: ...
    @property
    def maxs(self) -> npt.NDArray[np.float64]: ...
    def merge(self, other: SegmentMoments) -> SegmentMoments: ...
    def __reduce__(
        self,
    ) -> tuple[
        type[SegmentMoments],
        tuple[
            float,
            int,
            list[float],
            list[int],
            list[float],
            list[float],
            list[float],
            list[float],
        ],
    ]: ...

@final
class RescanState:
    def __new__(
        cls,
        mins: list[float],
        maxs: list[float],
        counts: list[int],
        means: list[float],
        m2s: list[float],
    ) -> RescanState: ...
    @property
    def mins(self) -> npt.NDArray[np.float64]: ...
    @property
    def maxs(self) -> npt.NDArray[np.float64]: ...
    @property
    def counts(self) -> npt.NDArray[np.uint64]: ...
    @property
    def means(self) -> npt.NDArray[np.float64]: ...
    @property
    def m2s(self) -> npt.NDArray[np.float64]: ...
    def merge(self, other: RescanState) -> RescanState: ...
    def __reduce__(
        self,
    ) -> tuple[
        type[RescanState],
        tuple[list[float], list[float], list[int], list[float], list[float]],
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
    exponent: int = 0,
) -> tuple[ProjectionState, npt.NDArray[np.float64]]: ...
def project_bins(bins: SegmentMoments, *, max_degree: int) -> ProjectionState: ...
def fit_projection(
    state: ProjectionState, *, center: float, exponent: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]: ...
def fit_sorted(
    scores: npt.NDArray[np.float64] | npt.NDArray[np.float32],
    sorted: npt.NDArray[np.float64] | npt.NDArray[np.float32],
    *,
    max_degree: int,
    nan_policy: str,
) -> RawFit: ...
def run_moments(
    sorted: _Scores,
    bounds: npt.NDArray[np.uint64],
    *,
    origin: float,
    exponent: int = 0,
) -> SegmentMoments: ...
def split_moments(
    values: _Scores, *, thresholds: list[float], origin: float, exponent: int = 0
) -> SegmentMoments: ...
def untrusted_ranges(
    state: SegmentMoments, *, thresholds: list[float]
) -> list[tuple[float, float]]: ...
def rescan(values: _Scores, *, ranges: list[tuple[float, float]]) -> RescanState: ...
def split_table(
    state: SegmentMoments,
    *,
    thresholds: list[float],
    rescan: RescanState | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64], int | None]: ...

# ---- Partial states of the breakpoint methods (rust/partial_split.rs) -------------

@final
class LineMoments:
    def __new__(
        cls,
        count: int = 0,
        mean_x: float = 0.0,
        mean_y: float = 0.0,
        cxx: float = 0.0,
        cxy: float = 0.0,
        cyy: float = 0.0,
    ) -> LineMoments: ...
    @property
    def count(self) -> int: ...
    @property
    def mean_x(self) -> float: ...
    @property
    def mean_y(self) -> float: ...
    @property
    def cxx(self) -> float: ...
    @property
    def cxy(self) -> float: ...
    @property
    def cyy(self) -> float: ...
    def sse(self) -> float: ...
    def merge(self, other: LineMoments) -> LineMoments: ...
    def __reduce__(
        self,
    ) -> tuple[type[LineMoments], tuple[int, float, float, float, float, float]]: ...

@final
class SplitFrame:
    def __new__(
        cls, n: int, min: float, max: float, exponent: int, origin: float
    ) -> SplitFrame: ...
    @property
    def n(self) -> int: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    @property
    def exponent(self) -> int: ...
    @property
    def origin(self) -> float: ...
    def scaled(self, z: float) -> float: ...
    def __reduce__(
        self,
    ) -> tuple[type[SplitFrame], tuple[int, float, float, int, float]]: ...

#: (global rank, depth, the point's value on its reading).
_KneeTuple = tuple[int, float, float]

def split_summary(
    values: _Scores, *, offset: int, frame: SplitFrame, probes: list[int]
) -> tuple[
    int, float | None, list[tuple[int, float]], _KneeTuple | None, LineMoments
]: ...
def split_cuts(
    values: _Scores,
    *,
    offset: int,
    frame: SplitFrame,
    log_scale: tuple[float, float] | None = None,
    before: LineMoments | None = None,
    after: LineMoments | None = None,
    previous: float | None = None,
) -> tuple[_KneeTuple | None, tuple[int, float, float] | None]: ...
def quantile_ranks(n: int) -> list[int]: ...
def log_scale(
    n: int,
    *,
    picked: list[tuple[int, float]],
    exponent: int = 0,
    deviation: float | None = None,
) -> tuple[float, float] | None: ...
def absolute_deviation(
    values: _Scores, *, center: float, exponent: int = 0
) -> float: ...
def rank_counts(
    values: _Scores,
    *,
    keys: list[float],
    log_scale: tuple[float, float] | None = None,
    exponent: int = 0,
) -> tuple[
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]: ...
def exponential_depth(n: int) -> float: ...
def raw_count(by_knee: int | None, by_lines: int | None) -> int | None: ...
