"""``ltrend.dask``: the L-trend threshold of scores held in a chunked Dask array.

For scores that outgrow one machine's memory. Import it explicitly
(``import ltrend.dask``); ``import ltrend`` never imports Dask. Install the
extra with ``pip install "ltrend[dask]"``.

How the exact fit is spread (every step is a Dask computation on the current
scheduler, a ``dask.distributed`` cluster when a ``Client`` is active):

1. Scan: each chunk gives a :class:`ltrend._core.ScanState` (counts, the first
   non-finite index, the smallest and largest finite score) and a seeded random
   sample of its finite scores. Merged, the scan applies ``nan_policy`` and the
   minimum count with the in-memory messages, and gives the rescaling of the
   in-memory fit: scores whose largest magnitude is beyond about 2**400 or below
   about 2**-400 are projected and measured as ``z * 2**-e`` (exactly, as in memory),
   and the candidates mapped back by ``2**e``; splits are always on the scores
   as given.
2. Shuffle: the sample's quantiles split the scores into buckets of about
   ``bucket_size``; ties are broken by chunk index, so a value repeated in every
   chunk spreads over several buckets instead of swamping one. Each chunk is
   sorted and cut at the splitters; each bucket gathers its pieces from every
   chunk, is sorted by the Rust core, and reduces to
   a :class:`ltrend._core.ProjectionState` (its sums on the Gram polynomials, at
   its global ranks, which the counts of the buckets below it give). Buckets are
   shuffled in waves of at most ``shuffle_bytes`` of scores, each wave reading the
   input again, so no worker ever holds more than its share of one wave.
3. The merged projections give every degree's candidate threshold with no data
   pass. One more pass gives, per chunk, the (count, mean, M2) moments and the
   smallest and largest score between the candidate thresholds
   (:class:`ltrend._core.SegmentMoments`), without sorting; merged, they give
   each degree's compactness and the choice by the in-memory rule: a constant
   side is read from its smallest and largest score, and the merged moments of
   a side decide only when the rule trusts them. A side whose sum of squares
   may have underflowed (a spread near 1e-300) or that lies far from the
   median next to its own spread (a tight cluster far from the bulk) is
   measured again, as in memory, in units of its own spread: one more pass
   over the chunks (:class:`ltrend._core.RescanState`), only when a split has
   such a side, which is rare for real scores.

The breakpoint methods (``two_segment``, ``knee``, ``log_knee``,
``tail_aware``) run on the same buckets in the exact mode, each bucket scoring
its own global ranks with what the scan and a first shuffle tell it about the
whole curve (``ltrend._dask_split`` describes the passes); their split is the
in-memory one, except where docs/methods.md lets two near-tied candidates
trade places.

The approximate mode replaces the shuffle with a histogram: per chunk, the
moments of the scores in each of ``bins`` bins (edges from the sample), merged
and fitted on the driver as if each bin's sorted scores were a straight ramp
with the bin's mean and variance. The candidate thresholds are then approximate,
but step 3 is the same exact pass, so the counts and compactness reported are
exact for the thresholds found. ``docs/performance.md`` gives measured errors.
It runs ``"paper"`` only, by design: a breakpoint method's split is a rank of the
sorted curve (and ``log_knee`` reads order statistics), which a histogram cannot
give, so those methods ask for ``mode="exact"``.

NOTE: the partial sums are added in another order than the in-memory fit's, so
the threshold agrees with ``ltrend.fit`` to ~1e-15 relative, not bit for bit; the
method's contract asks for 1e-9.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, SupportsIndex, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt

try:
    import dask
    import dask.array as da
    from dask.delayed import Delayed, delayed
except ImportError as err:
    raise ImportError(
        'ltrend.dask needs Dask: pip install "ltrend[dask]" '
        '(or "dask[array,distributed]")'
    ) from err

from ltrend import _core
from ltrend._fit import DEFAULT_MAX_DEGREE
from ltrend._result import DegreeRow, Result
from ltrend._validation import (
    NanPolicy,
    check_max_degree,
    check_method,
    check_nan_policy,
)

__all__ = ["DEFAULT_BINS", "DEFAULT_BUCKET_SIZE", "MODES", "DaskResult", "Mode", "fit"]

Mode: TypeAlias = Literal["exact", "approximate"]
MODES: tuple[Mode, ...] = ("exact", "approximate")

#: Scores per bucket of the distributed sort: 2**21 float64 scores are 16 MiB, so a
#: bucket, its sorted copy and the pieces it is gathered from stay small on any
#: worker, while each sort (~0.1 s) still dwarfs the cost of a task.
DEFAULT_BUCKET_SIZE = 2**21

#: Histogram bins of the approximate mode: the threshold error falls about as
#: bins**-2; 4096 gives ~1e-8 relative on 1e6 scores (docs/performance.md).
DEFAULT_BINS = 4096

#: Sample keys per bucket: a bucket's size then strays from ``bucket_size`` by
#: about 1 / sqrt(64) = 12 % (binomial sampling of its quantile range).
SAMPLE_PER_BUCKET = 64

#: Sample keys per histogram bin in the approximate mode.
SAMPLE_PER_BIN = 16

#: The smallest sample drawn, so that small arrays are sampled whole.
MIN_SAMPLE = 4096

#: Share of the cluster's worker memory that one shuffle wave may fill with
#: scores; the rest is for the chunks being read, the bucket sorts and Dask.
SHUFFLE_MEMORY_FRACTION = 0.25

#: States merged per task in the tree reductions.
MERGE_FAN_IN = 16

#: Seed of the sample (with the chunk's index), so that a fit is repeatable.
SAMPLE_SEED = 0x17E4D

_Scores: TypeAlias = npt.NDArray[np.float64] | npt.NDArray[np.float32]
_Ints: TypeAlias = npt.NDArray[np.int64]


class _Mergeable(Protocol):
    def merge(self: _M, other: _M, /) -> _M: ...


_M = TypeVar("_M", bound=_Mergeable)
_T = TypeVar("_T")


def _merge_all(states: Sequence[_M]) -> _M:
    """Merge states left to right."""
    return functools.reduce(lambda a, b: a.merge(b), states)


def _tree_merge(parts: list[Delayed]) -> Delayed:
    """Merge delayed states on the workers, ``MERGE_FAN_IN`` at a time."""
    while len(parts) > 1:
        parts = [
            delayed(_merge_all)(parts[i : i + MERGE_FAN_IN])
            for i in range(0, len(parts), MERGE_FAN_IN)
        ]
    return parts[0]


# ---- Input ---------------------------------------------------------------------


def _as_dask_scores(scores: object) -> da.Array:
    """Check ``scores`` and return it as a 1-D float64 or float32 Dask array."""
    if not isinstance(scores, da.Array):
        raise TypeError(
            f"scores: expected a dask.array.Array, got {type(scores).__name__}; "
            "for an array in memory use ltrend.fit"
        )
    kind = scores.dtype.kind
    if kind == "c":
        raise TypeError(
            f"scores: complex values are not anomaly scores (dtype {scores.dtype}); "
            "pass a real array, for example abs(scores)"
        )
    if kind not in "biuf":
        raise TypeError(
            f"scores: expected real numbers, got an array of dtype {scores.dtype}; "
            "convert it with scores.astype(float)"
        )
    if scores.ndim != 1:
        raise ValueError(
            f"scores: expected a 1-D array of scores, got {scores.ndim}-D with shape "
            f"{scores.shape}; pass one detector's scores, e.g. scores.ravel()"
        )
    if any(math.isnan(size) for size in scores.chunks[0]):
        raise ValueError(
            "scores: the chunk sizes are unknown; call scores.compute_chunk_sizes() "
            "first"
        )
    if scores.dtype not in (np.float64, np.float32):
        scores = scores.astype(np.float64)
    return scores


def _check_positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, SupportsIndex):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    number = value.__index__()
    if number < 1:
        raise ValueError(f"{name}: must be at least 1, got {number}")
    return number


def _blocks(x: da.Array) -> list[tuple[Delayed, int]]:
    """Each chunk of ``x`` (delayed), and the global index of its first score."""
    starts = np.cumsum((0, *x.chunks[0]))[:-1]
    chunks = x.to_delayed().ravel().tolist()
    return [(chunk, int(start)) for chunk, start in zip(chunks, starts, strict=True)]


def _indexed_blocks(x: da.Array) -> list[tuple[Delayed, int]]:
    """Each chunk of ``x`` (delayed), and its index."""
    return [(chunk, i) for i, (chunk, _) in enumerate(_blocks(x))]


def _aligned(block: npt.ArrayLike) -> _Scores:
    """A chunk as a C-contiguous, aligned array (copied only if it is neither).

    NOTE: chunks that arrive over the network can be misaligned views of a
    message buffer, which the Rust core refuses; ``ascontiguousarray`` alone
    keeps them misaligned.
    """
    values: _Scores = np.require(block, requirements=["C_CONTIGUOUS", "ALIGNED"])
    return values


def _ascending(values: _Scores) -> _Scores:
    """A sorted copy (NumPy's SIMD sort; the dtype is kept)."""
    return cast(_Scores, np.sort(values))


def _finite_values(raw: _Scores) -> _Scores:
    """The finite scores of a chunk (the chunk itself when all are finite)."""
    ok = np.isfinite(raw)
    return raw if ok.all() else raw[ok]


# ---- Splitters: sort keys (value, chunk index) -----------------------------------


@dataclass(frozen=True)
class _Splitters:
    """Cut points of a range partition of the finite scores by (value, chunk index).

    Bucket ``j`` holds the scores whose key is at least splitter ``j - 1`` and below
    splitter ``j``. The chunk index breaks ties between equal values, so a run of
    equal scores that spans many chunks can be cut at their borders instead of
    swamping one bucket (a run inside one chunk stays whole: it is at most a chunk).
    """

    #: Ascending by (value, chunk).
    values: npt.NDArray[np.float64]
    chunks: _Ints

    @property
    def n_buckets(self) -> int:
        return int(self.values.size) + 1

    def subset(self, keep: _Ints) -> _Splitters:
        """The partition with only the splitters at indices ``keep`` (ascending)."""
        return _Splitters(self.values[keep], self.chunks[keep])

    def cuts(self, ascending: _Scores, chunk: int, first: int, stop: int) -> _Ints:
        """For splitters ``first..stop``: how many of a chunk's scores are below each.

        ``ascending`` holds the finite scores of chunk ``chunk``, sorted.
        """
        values = self.values[first:stop]
        below = np.searchsorted(ascending, values, side="left")
        # Scores equal to a splitter's value are below it if their chunk comes first.
        earlier = self.chunks[first:stop] > chunk
        if earlier.any():
            below[earlier] = np.searchsorted(ascending, values[earlier], side="right")
        cut: _Ints = below.astype(np.int64)
        return cut


def _quantile_splitters(
    values: npt.NDArray[np.float64], chunks: _Ints, n_buckets: int
) -> tuple[_Splitters, _Ints]:
    """Splitters at the sample's quantiles, and the sample keys in each bucket."""
    size = values.size
    n_buckets = max(1, min(n_buckets, size))
    cuts = (np.arange(1, n_buckets, dtype=np.int64) * size) // n_buckets
    splitters = _Splitters(values[cuts], chunks[cuts])
    per_bucket = np.diff(np.concatenate(([0], cuts, [size])))
    return splitters, per_bucket


def _histogram_splitters(
    values: npt.NDArray[np.float64], chunks: _Ints, n_bins: int
) -> _Splitters:
    """Edges of the approximate mode's histogram, from the sorted sample.

    Half the edges cut the sample into equal counts; the other half cut its value
    range into equal widths, which puts many bins on the steep branch of the L
    (few scores, far apart), where a straight ramp inside a bin fits worst and
    which decides the thresholds. Measured on 1e6 scores, this cuts the threshold
    error 35- to 260-fold against equal counts alone (docs/performance.md).
    """
    size = values.size
    by_value = n_bins // 2
    by_count = max(n_bins - by_value, 1)
    count_cuts = (np.arange(1, by_count, dtype=np.int64) * size) // by_count
    steps = np.arange(1, by_value, dtype=np.float64) / max(by_value, 1)
    width = float(values[-1]) - float(values[0])
    if math.isinf(width):
        # Scores from near -1.8e308 to near 1.8e308: two half-steps, no overflow.
        half = float(values[-1]) / 2 - float(values[0]) / 2
        grid = (values[0] + half * steps) + half * steps
    else:
        grid = values[0] + width * steps
    value_cuts = np.searchsorted(values, grid)
    cuts = np.unique(np.concatenate((count_cuts, value_cuts)))
    cuts = cuts[(cuts > 0) & (cuts < size)]
    return _Splitters(values[cuts], chunks[cuts])


# ---- Tasks (run on the workers) --------------------------------------------------


def _scan_block(
    block: npt.ArrayLike, start: int, index: int, rate: float
) -> tuple[_core.ScanState, npt.NDArray[np.float64], _Ints]:
    """Scan state, and a seeded sample of its finite scores (with the chunk index)."""
    values = _aligned(block)
    state = _core.scan(values, start=start)
    where = np.flatnonzero(np.isfinite(values))
    take = min(where.size, math.ceil(where.size * rate))
    if take < where.size:
        rng = np.random.default_rng([SAMPLE_SEED, index])
        where = np.sort(rng.choice(where, size=take, replace=False))
    chunks = np.full(where.size, index, dtype=np.int64)
    return state, values[where].astype(np.float64), chunks


def _split_block(
    block: npt.ArrayLike, index: int, splitters: _Splitters, first: int, stop: int
) -> tuple[Any, ...]:
    """The chunk's finite scores in buckets ``first..stop``: (counts, *pieces).

    The chunk is sorted (by NumPy's SIMD sort, ~7 ns a score; each bucket is
    sorted again by the core) and cut where the splitters fall, so no score is
    searched for alone and every piece comes out sorted.
    """
    ascending = _ascending(_finite_values(_aligned(block)))
    inner = splitters.cuts(ascending, index, 0, splitters.n_buckets - 1)
    bounds = np.concatenate(([0], inner, [ascending.size]))[first : stop + 1]
    whole = first == 0 and stop == splitters.n_buckets
    # A copy of this wave's scores only, so that the views below keep no more alive.
    wave = ascending if whole else ascending[bounds[0] : bounds[-1]].copy()
    local = bounds - bounds[0]
    pieces = [wave[a:b] for a, b in itertools.pairwise(local)]
    return (np.diff(bounds), *pieces)


def _wave_offsets(base: int, counts: list[_Ints]) -> _Ints:
    """Global rank of the first of each bucket of a wave, and one past the last."""
    total = np.sum(counts, axis=0, dtype=np.int64)
    return np.concatenate(([0], np.cumsum(total))) + base


def _project_bucket(
    pieces: list[_Scores],
    offsets: _Ints,
    j: int,
    n: int,
    origin: float,
    max_degree: int,
    center_rank: int,
    exponent: int,
) -> tuple[_core.ProjectionState, float | None]:
    """Sort bucket ``j`` of a wave and project it; also its score at ``center_rank``."""
    # The pieces share the input's dtype, float64 or float32.
    values = cast(_Scores, np.concatenate(pieces))
    offset = int(offsets[j])
    probes = [center_rank - offset] if 0 <= center_rank - offset < values.size else []
    state, picked = _core.project_sorted(
        values,
        offset=offset,
        n=n,
        origin=origin,
        max_degree=max_degree,
        probes=probes,
        exponent=exponent,
    )
    return state, (float(picked[0]) if probes else None)


def _bin_block(
    block: npt.ArrayLike,
    index: int,
    splitters: _Splitters,
    origin: float,
    exponent: int,
) -> _core.SegmentMoments:
    """Moments of the chunk's finite scores in each histogram bin."""
    raw = _aligned(block)
    ascending = _ascending(_finite_values(raw))
    inner = splitters.cuts(ascending, index, 0, splitters.n_buckets - 1)
    bounds = np.concatenate(([0], inner, [ascending.size])).astype(np.uint64)
    return _core.run_moments(ascending, bounds, origin=origin, exponent=exponent)


def _split_moments_block(
    block: npt.ArrayLike, thresholds: list[float], origin: float, exponent: int
) -> _core.SegmentMoments:
    """Moments of the chunk's finite scores between the candidate thresholds."""
    values = _aligned(block)
    return _core.split_moments(
        values, thresholds=thresholds, origin=origin, exponent=exponent
    )


def _rescan_block(
    block: npt.ArrayLike, ranges: list[tuple[float, float]]
) -> _core.RescanState:
    """Sums of squares of the chunk's scores in each untrusted side's range."""
    return _core.rescan(_aligned(block), ranges=ranges)


def _mask_block(block: npt.ArrayLike, threshold: float) -> npt.NDArray[np.bool_]:
    """Finite scores at or above the threshold, compared in float64 as in the core."""
    values = np.asarray(block).astype(np.float64, copy=False)
    mask: npt.NDArray[np.bool_] = np.isfinite(values) & (values >= threshold)
    return mask


def _sorted_bucket(pieces: list[_Scores]) -> _Scores:
    sorted_values: _Scores = np.sort(np.concatenate(pieces))
    return sorted_values


def _curve_block(
    ranks: npt.NDArray[np.float64],
    n: int,
    center: float,
    coefficients: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The fitted polynomial at the given ranks (as ``Result.fitted_curve``)."""
    t = (2.0 * ranks - (n - 1)) / max(n - 1, 1)
    fitted = center + np.polynomial.polynomial.polyval(t, coefficients)
    return np.asarray(fitted, dtype=np.float64)


# ---- Steps run from the driver -----------------------------------------------------


@dataclass(frozen=True)
class _Scan:
    n: int
    n_omitted: int
    sample_values: npt.NDArray[np.float64]
    sample_chunks: _Ints
    #: The in-memory fit's rescaling: projections and moments are of
    #: ``z * 2**-exponent`` (0 for ordinary magnitudes).
    exponent: int
    #: The smallest and largest finite score.
    min: float
    max: float


def _scan(x: da.Array, policy: NanPolicy, sample_size: int) -> _Scan:
    rate = min(1.0, sample_size / max(x.shape[0], 1))
    tasks = [
        delayed(_scan_block)(block, start, index, rate)
        for index, (block, start) in enumerate(_blocks(x))
    ]
    parts = dask.compute(*tasks)
    state = _merge_all([part[0] for part in parts])
    n = state.finish(policy)
    values = np.concatenate([part[1] for part in parts])
    chunks = np.concatenate([part[2] for part in parts])
    order = np.lexsort((chunks, values))
    exponent = state.scale_exponent
    return _Scan(
        n=n,
        n_omitted=state.n_scores - state.n_finite,
        sample_values=values[order],
        sample_chunks=chunks[order],
        exponent=0 if exponent is None else exponent,
        min=state.min,
        max=state.max,
    )


def _check_count(got: int, scanned: int, what: str) -> None:
    """Refuse an input whose reads disagree (each pass reads it again)."""
    if got != scanned:
        raise RuntimeError(
            f"scores: the {what} hold {got} finite scores but the scan counted "
            f"{scanned}; the array gave different values on two reads (persist it, "
            "or seed its generation)"
        )


def _cluster_memory() -> int | None:
    """Total memory limit of the active distributed cluster's workers, if known."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return None
    workers = client.scheduler_info()["workers"].values()
    limits = [int(worker.get("memory_limit") or 0) for worker in workers]
    return sum(limits) if limits and min(limits) > 0 else None


def _waves(estimates: npt.NDArray[np.float64], budget: float) -> list[tuple[int, int]]:
    """Consecutive bucket ranges whose estimated bytes stay within the budget."""
    waves: list[tuple[int, int]] = []
    first, load = 0, 0.0
    for j, size in enumerate(estimates):
        if j > first and load + size > budget:
            waves.append((first, j))
            first, load = j, 0.0
        load += float(size)
    waves.append((first, len(estimates)))
    return waves


@dataclass(frozen=True)
class _Candidates:
    thresholds: npt.NDArray[np.float64]
    coefficients: npt.NDArray[np.float64]
    center: float
    splitters: _Splitters
    counts: _Ints


@dataclass(frozen=True)
class _Buckets:
    """The range partition of the exact mode's shuffle."""

    splitters: _Splitters
    #: Each bucket's estimated size in bytes, from the sample (for the waves).
    estimates: npt.NDArray[np.float64]
    #: The sample's median: near the median of the scores, a precise origin.
    origin: float


def _plan_buckets(x: da.Array, scan: _Scan, bucket_size: int) -> _Buckets:
    """Splitters at the sample's quantiles, for buckets of about ``bucket_size``."""
    splitters, sampled = _quantile_splitters(
        scan.sample_values,
        scan.sample_chunks,
        math.ceil(scan.n / bucket_size),
    )
    estimates = sampled * (scan.n / scan.sample_values.size) * x.dtype.itemsize
    origin = float(scan.sample_values[scan.sample_values.size // 2])
    return _Buckets(splitters, estimates, origin)


def _shuffle(
    x: da.Array,
    buckets: _Buckets,
    shuffle_bytes: float,
    task: Callable[..., _T],
    shared: tuple[object, ...],
    own: Callable[[int], tuple[object, ...]] | None = None,
) -> tuple[list[_T], _Ints]:
    """Run ``task(pieces, offsets, j, *shared, *own(b))`` on each bucket ``b``.

    Buckets are shuffled in waves of at most ``shuffle_bytes``; in a wave,
    ``pieces`` are the sorted pieces of bucket ``b`` from every chunk, ``j`` its
    index in the wave and ``offsets[j]`` its global rank. Returns the results and
    the counts of the buckets, both in bucket order.
    """
    blocks = _indexed_blocks(x)
    keys = delayed(buckets.splitters, traverse=False)
    base = 0
    results: list[_T] = []
    counts: list[int] = []
    for first, stop in _waves(buckets.estimates, shuffle_bytes):
        width = stop - first
        splits = [
            delayed(_split_block, nout=width + 1)(block, index, keys, first, stop)
            for block, index in blocks
        ]
        offsets = delayed(_wave_offsets)(base, [split[0] for split in splits])
        tasks = [
            delayed(task)(
                [split[1 + j] for split in splits],
                offsets,
                j,
                *shared,
                *(own(first + j) if own is not None else ()),
            )
            for j in range(width)
        ]
        placed, *wave = dask.compute(offsets, *tasks)
        results.extend(wave)
        counts.extend(int(c) for c in np.diff(placed))
        base = int(placed[-1])
    return results, np.array(counts, dtype=np.int64)


def _exact_candidates(
    x: da.Array,
    scan: _Scan,
    max_degree: int,
    bucket_size: int,
    shuffle_bytes: float,
) -> _Candidates:
    n = scan.n
    plan = _plan_buckets(x, scan, bucket_size)
    shared = (n, plan.origin, max_degree, n // 2, scan.exponent)
    results, counts = _shuffle(x, plan, shuffle_bytes, _project_bucket, shared)
    splitters = plan.splitters
    _check_count(int(counts.sum()), n, "buckets")
    median = next(value for _, value in results if value is not None)
    projection = _merge_all([state for state, _ in results])
    thresholds, coefficients, center = _core.fit_projection(
        projection, center=median, exponent=scan.exponent
    )
    return _Candidates(thresholds, coefficients, center, splitters, counts)


def _approximate_candidates(
    x: da.Array, scan: _Scan, max_degree: int, bins: int
) -> _Candidates:
    splitters = _histogram_splitters(scan.sample_values, scan.sample_chunks, bins)
    origin = float(scan.sample_values[scan.sample_values.size // 2])
    keys = delayed(splitters, traverse=False)
    parts = [
        delayed(_bin_block)(block, index, keys, origin, scan.exponent)
        for block, index in _indexed_blocks(x)
    ]
    (histogram,) = dask.compute(_tree_merge(parts))
    counts = histogram.counts.astype(np.int64)
    _check_count(int(counts.sum()), scan.n, "histogram")
    projection = _core.project_bins(histogram, max_degree=max_degree)
    thresholds, coefficients, center = _core.fit_projection(
        projection, center=origin, exponent=scan.exponent
    )
    return _Candidates(thresholds, coefficients, center, splitters, counts)


def _split_table(
    x: da.Array, scan: _Scan, thresholds: list[float], center: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint64], int | None]:
    """Each degree's compactness and count at its threshold, and the choice.

    One pass for the moments between the thresholds; one more, only when the
    rule does not trust the merged moments of some side, to measure those
    sides again in their own units.
    """
    blocks = _blocks(x)
    parts = [
        delayed(_split_moments_block)(block, thresholds, center, scan.exponent)
        for block, _ in blocks
    ]
    (split,) = dask.compute(_tree_merge(parts))
    _check_count(int(split.counts.sum()), scan.n, "split counts")
    ranges = _core.untrusted_ranges(split, thresholds=thresholds)
    rescan = None
    if ranges:
        rescans = [delayed(_rescan_block)(block, ranges) for block, _ in blocks]
        (rescan,) = dask.compute(_tree_merge(rescans))
    return _core.split_table(split, thresholds=thresholds, rescan=rescan)


def _coarsen(
    splitters: _Splitters, counts: _Ints, bucket_size: int
) -> tuple[_Splitters, _Ints]:
    """Merge neighbouring buckets into buckets of about ``bucket_size`` scores."""
    ends = np.cumsum(counts)
    total = int(ends[-1])
    targets = np.arange(1, math.ceil(total / bucket_size), dtype=np.int64) * bucket_size
    # Splitter i lies between bins i and i + 1: keep the first past each target.
    keep = np.unique(np.searchsorted(ends, targets, side="left"))
    keep = keep[keep < splitters.values.size]
    coarse_ends = np.concatenate((ends[keep], [total]))
    return splitters.subset(keep), np.diff(coarse_ends, prepend=0)


# ---- Result --------------------------------------------------------------------------


class DaskResult(Result):
    """A :class:`ltrend.Result` learned from a Dask array.

    The threshold, degree, table, ``n_anomalies`` and ``n_omitted`` are computed
    values, as in memory. What holds one value per score stays lazy: ``mask`` and
    ``labels`` are Dask arrays with the input's chunks, and ``sorted_scores()``
    and ``fitted_curve()`` return Dask arrays chunked by the buckets of the
    distributed sort. Computing ``sorted_scores()`` shuffles every score once
    more; slice it first (``result.sorted_scores()[-1000:]`` reads one bucket's
    worth of output) or store it with ``dask.array.to_zarr``.
    ``fitted_curve(degree, ranks=...)`` at chosen ranks is an ndarray, and
    ``plot()`` draws the same figure as in memory, computing the sorted scores at
    the drawn ranks (one more shuffle, all of it at once).
    :meth:`compute` gathers everything into an in-memory :class:`ltrend.Result`.
    """

    # NOTE: plot() shuffles once more to read the drawn ranks; keeping them from the
    # fit's own shuffle would save that pass but hold memory on every fit.

    __slots__ = ("_bucket_counts", "_n_anomalies", "_scores", "_splitters")

    # NOTE: a Dask result's per-score arrays are lazy Dask arrays, not ndarrays; code
    # that reads a Result's threshold, degree and table works on both unchanged.
    mask: da.Array

    def __init__(
        self,
        *,
        threshold: float,
        degree: int | None,
        table: tuple[DegreeRow, ...],
        n_anomalies: int,
        center: float,
        coefficients: npt.NDArray[np.float64],
        n_omitted: int,
        method: str,
        scores: da.Array,
        splitters: _Splitters,
        bucket_counts: _Ints,
        breakpoint: int | None = None,
    ) -> None:
        super().__init__(
            threshold=threshold,
            degree=degree,
            mask=np.zeros(0, dtype=np.bool_),
            table=table,
            sorted_scores=np.zeros(0, dtype=scores.dtype),
            center=center,
            coefficients=coefficients,
            n_omitted=n_omitted,
            method=method,
            breakpoint=breakpoint,
        )
        self.mask = scores.map_blocks(_mask_block, self.threshold, dtype=np.bool_)
        self._n_anomalies = n_anomalies
        self._scores = scores
        self._splitters = splitters
        self._bucket_counts = bucket_counts

    @property
    def n_anomalies(self) -> int:
        """How many scores are anomalous (counted during the fit)."""
        return self._n_anomalies

    @property
    def n_scores(self) -> int:
        """How many scores were given, non-finite ones included."""
        return int(self._scores.shape[0])

    @property
    def labels(self) -> da.Array:
        """Lazy 0/1 labels in input order (1 = anomalous), with the input's chunks."""
        return self.mask.astype(np.int8)

    def sorted_scores(self) -> da.Array:
        """The finite scores in ascending order, as a lazy Dask array.

        Chunked by the buckets of the distributed sort; computing it moves every
        score once (each output chunk gathers its range from all input chunks).
        """
        blocks = _indexed_blocks(self._scores)
        k = self._splitters.n_buckets
        keys = delayed(self._splitters, traverse=False)
        splits = [
            delayed(_split_block, nout=k + 1)(block, index, keys, 0, k)
            for block, index in blocks
        ]
        parts = [
            da.from_delayed(
                delayed(_sorted_bucket)([split[1 + j] for split in splits]),
                shape=(int(count),),
                dtype=self._scores.dtype,
            )
            for j, count in enumerate(self._bucket_counts)
        ]
        return da.concatenate(parts)

    def fitted_curve(
        self, degree: int | None = None, *, ranks: npt.ArrayLike | None = None
    ) -> Any:
        """The fitted polynomial of ``degree`` at the ranks of the sorted curve.

        At every rank (the default): a lazy Dask array chunked as
        :meth:`sorted_scores`. At the given ``ranks`` (integers in ``[0, n)``): an
        ndarray, as :meth:`ltrend.Result.fitted_curve`. Either way computed from
        the coefficients alone, with no pass over the scores. The breakpoint
        methods fit no polynomial: for them this raises ``ValueError``, as in memory.
        """
        if not self.table:
            return super().fitted_curve(degree, ranks=ranks)
        n = int(self._bucket_counts.sum())
        if degree is None:
            degree = self.degree if self.degree is not None else 1
        available = [row.degree for row in self.table]
        if degree not in available:
            raise ValueError(f"degree: must be one of {available}, got {degree}")
        coefficients = self._coefficients[degree - 1, : degree + 1]
        if ranks is not None:
            at = np.asarray(ranks)
            if at.dtype.kind not in "iu" or (
                at.size and (at.min() < 0 or at.max() >= n)
            ):
                raise ValueError(f"ranks: must be integers in [0, {n}), got {at!r}")
            return _curve_block(at.astype(np.float64), n, self._center, coefficients)
        chunks = (tuple(int(c) for c in self._bucket_counts),)
        every = da.arange(n, chunks=chunks, dtype=np.float64)
        return every.map_blocks(
            _curve_block, n, self._center, coefficients, dtype=np.float64
        )

    def to_dict(self, *, include_mask: bool = False) -> dict[str, Any]:
        """As :meth:`ltrend.Result.to_dict`; ``include_mask`` computes the indices."""
        summary = super().to_dict()
        if include_mask:
            summary["anomaly_indices"] = da.flatnonzero(self.mask).compute().tolist()
        return summary

    def compute(self) -> Result:
        """Gather the mask and sorted scores into an in-memory :class:`ltrend.Result`.

        Needs memory for both on the driver: for scores that fit in memory.
        """
        mask, sorted_scores = dask.compute(self.mask, self.sorted_scores())
        return Result(
            threshold=self.threshold,
            degree=self.degree,
            mask=np.asarray(mask, dtype=np.bool_),
            table=self.table,
            sorted_scores=np.asarray(sorted_scores),
            center=self._center,
            coefficients=self._coefficients,
            n_omitted=self.n_omitted,
            method=self.method,
            breakpoint=self.breakpoint,
        )


# ---- Entry point ---------------------------------------------------------------------


def fit(
    scores: da.Array,
    *,
    max_degree: SupportsIndex = DEFAULT_MAX_DEGREE,
    nan_policy: NanPolicy = "raise",
    method: str = "paper",
    mode: Mode = "exact",
    bucket_size: SupportsIndex = DEFAULT_BUCKET_SIZE,
    shuffle_bytes: SupportsIndex | None = None,
    bins: SupportsIndex = DEFAULT_BINS,
) -> DaskResult:
    """Learn the L-trend threshold of scores held in a chunked Dask array.

    The same method as :func:`ltrend.fit`, spread over the chunks with Dask (on a
    ``dask.distributed`` cluster when a ``Client`` is active). In the default
    exact mode the result equals ``ltrend.fit`` on the gathered scores: the same
    degree, the same anomaly count and mask, and the threshold within a relative
    1e-9 (in practice ~1e-15: partial sums are added in another order). For a
    breakpoint method (every method but ``"paper"``) it has the same
    ``breakpoint``, threshold, count and mask, except where docs/methods.md
    lets two candidates whose criteria agree to a relative 1e-9 trade places:
    ``knee`` is exact (the same depths, bit for bit), ``log_knee`` too unless
    more than half the scores tie (its unit is then a sum added in another
    order), ``two_segment`` decides between near-ties of its two-line errors
    by rounding, and ``tail_aware`` follows its parts.

    Parameters
    ----------
    scores : dask.array.Array, 1-D
        Anomaly scores, higher meaning more anomalous; float64 and float32 chunks
        are used as they are, other real dtypes are converted to float64.
    max_degree : int, default 5
        Highest polynomial degree tried, 1 to 10; also never above ``n - 2``.
    nan_policy : {"raise", "omit"}, default "raise"
        As for :func:`ltrend.fit`: ``"raise"`` refuses NaN and infinite scores (a
        cheap count over the chunks comes first), ``"omit"`` leaves them out and
        labels them normal.
    method : str, default "paper"
        One of ``ltrend.METHODS`` (see :func:`ltrend.fit`); the breakpoint
        methods need ``mode="exact"``.
    mode : {"exact", "approximate"}, default "exact"
        ``"exact"`` sorts the scores by one range-partitioning shuffle (two for
        ``log_knee``, ``two_segment`` and ``tail_aware``);
        ``"approximate"`` fits a histogram of ``bins`` bins instead (no shuffle)
        and then counts exactly at the thresholds it finds. The approximate mode
        runs ``"paper"`` only: the breakpoint methods need exact ranks of the
        sorted curve, which a histogram does not give.
    bucket_size : int, default 2**21
        Scores per bucket of the distributed sort (exact mode), and per chunk of
        :meth:`DaskResult.sorted_scores`.
    shuffle_bytes : int, optional
        The most bytes of scores moved in one wave of the shuffle. By default a
        quarter of the total worker memory limit of the active distributed
        cluster, or no limit (one wave) without one.
    bins : int, default 4096
        Histogram bins of the approximate mode.

    Returns
    -------
    DaskResult
        A :class:`ltrend.Result`: ``threshold``, ``degree``, ``table`` and
        ``n_anomalies`` computed (and ``breakpoint`` for a breakpoint method,
        with ``degree=None`` and an empty table, as in memory); ``mask`` a lazy
        boolean Dask array with the input's chunks.

    Raises
    ------
    TypeError
        For an input that is not a Dask array, or of a complex or non-numeric dtype.
    ValueError
        As :func:`ltrend.fit` (same messages for non-finite scores and too few
        scores), for unknown chunk sizes or an out-of-range option, and for a
        breakpoint method with ``mode="approximate"``.

    Notes
    -----
    The input is read once to scan and sample it, once per shuffle wave (or once
    for the histogram), once to count the candidate splits and, only when a
    side of a split needs measuring again in its own units (a spread near
    1e-300, or a tight cluster far from the median), once more: persist it
    first if computing it is expensive. A breakpoint method reads it once to
    scan, once per wave of each shuffle, once to count the scores up to a knee
    and, for ``log_knee`` on a tied majority, once for the mean deviation;
    ``tail_aware`` on a light tail reads it twice more (for the bucket holding
    its cut, and to count up to it). It must give the same values on every
    read. Any finite scores are handled as :func:`ltrend.fit` handles them
    (subnormals and magnitudes near 1.8e308 included).
    A fit's sample is seeded, so the same input gives the same buckets.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import ltrend
    >>> import ltrend.dask
    >>> rng = np.random.default_rng(0)
    >>> scores = np.concatenate([rng.normal(size=20_000), rng.normal(9.0, 2.0, 200)])
    >>> chunked = da.from_array(scores, chunks=5_000)
    >>> result = ltrend.dask.fit(chunked, bucket_size=4_000)  # 6 buckets
    >>> expected = ltrend.fit(scores)
    >>> (result.degree, result.n_anomalies) == (expected.degree, expected.n_anomalies)
    True
    >>> bool(abs(result.threshold - expected.threshold) <= 1e-9 * expected.threshold)
    True
    >>> result.mask.chunks == chunked.chunks
    True
    >>> bool((result.mask.compute() == expected.mask).all())
    True

    A breakpoint method gives the in-memory split (here on fewer scores, run in
    this process):

    >>> import dask
    >>> few = np.concatenate([scores[:3_000], scores[-60:]])
    >>> with dask.config.set(scheduler="synchronous"):
    ...     split = ltrend.dask.fit(
    ...         da.from_array(few, chunks=700), method="two_segment", bucket_size=500
    ...     )
    >>> expected = ltrend.fit(few, method="two_segment")
    >>> split.breakpoint == expected.breakpoint, split.degree, split.table
    (True, None, ())
    >>> split.threshold == expected.threshold, split.n_anomalies == expected.n_anomalies
    (True, True)
    """
    x = _as_dask_scores(scores)
    degree_cap = check_max_degree(max_degree)
    policy = check_nan_policy(nan_policy)
    check_method(method)
    # Imported here: it builds on this module's shuffle.
    from ltrend import _dask_split

    if method != "paper" and method not in _dask_split.SPLIT_METHODS:
        raise NotImplementedError(
            f"method: ltrend.dask does not spread {method!r} (a method added to "
            "ltrend.METHODS without a distributed path)"
        )
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
    if method != "paper" and mode != "exact":
        raise ValueError(
            f"mode: method {method!r} needs mode='exact' (its breakpoint is a rank "
            "of the sorted curve, which the approximate mode's histogram does not "
            f"give), got mode={mode!r}"
        )
    bucket = _check_positive(bucket_size, "bucket_size")
    n_bins = _check_positive(bins, "bins")
    budget: float
    if shuffle_bytes is None:
        memory = _cluster_memory()
        budget = math.inf if memory is None else SHUFFLE_MEMORY_FRACTION * memory
    else:
        budget = _check_positive(shuffle_bytes, "shuffle_bytes")

    length = int(x.shape[0])
    if mode == "exact":
        sample = SAMPLE_PER_BUCKET * math.ceil(length / bucket)
    else:
        sample = SAMPLE_PER_BIN * n_bins
    scan = _scan(x, policy, max(MIN_SAMPLE, sample))
    if method != "paper":
        split = _dask_split.fit_split(x, scan, method, bucket, budget)
        return DaskResult(
            threshold=split.threshold,
            degree=None,
            table=(),
            n_anomalies=split.n_anomalies,
            center=0.0,
            coefficients=np.zeros((0, 1), dtype=np.float64),
            n_omitted=scan.n_omitted,
            method=method,
            scores=x,
            splitters=split.splitters,
            bucket_counts=split.counts,
            breakpoint=split.breakpoint,
        )
    top = min(degree_cap, scan.n - 2)
    if mode == "exact":
        found = _exact_candidates(x, scan, top, bucket, budget)
        splitters, counts = found.splitters, found.counts
    else:
        found = _approximate_candidates(x, scan, top, n_bins)
        splitters, counts = _coarsen(found.splitters, found.counts, bucket)

    thresholds = [float(tau) for tau in found.thresholds]
    compactness, anomalies, chosen = _split_table(x, scan, thresholds, found.center)
    table = tuple(
        DegreeRow(d, tau, float(comp), int(count))
        for d, tau, comp, count in zip(
            range(1, top + 1), thresholds, compactness, anomalies, strict=True
        )
    )
    if chosen is None:
        threshold, n_anomalies = math.inf, 0
    else:
        threshold, n_anomalies = thresholds[chosen - 1], int(anomalies[chosen - 1])
    return DaskResult(
        threshold=threshold,
        degree=chosen,
        table=table,
        n_anomalies=n_anomalies,
        center=found.center,
        coefficients=np.asarray(found.coefficients, dtype=np.float64),
        n_omitted=scan.n_omitted,
        method=method,
        scores=x,
        splitters=splitters,
        bucket_counts=counts,
    )
