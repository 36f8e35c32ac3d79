"""The breakpoint methods of ``ltrend.dask.fit`` (exact mode): every method but "paper".

Each method is a scan of the sorted curve whose every step needs a few numbers
about the whole curve (docs/methods.md). The scan of ``ltrend.dask`` gives ``n``
and the two extreme scores; the buckets of its shuffle, each sorted at known
global ranks, give the rest, and each bucket then scores its own ranks:

1. First shuffle (:func:`ltrend._core.split_summary`): per bucket, its deepest
   point below the raw chord (``knee``), its scores at the quartile ranks (the
   centre and unit of ``log_knee``'s scale) and the two-line moments of its
   points (``two_segment``). When more than half the scores tie, the log unit is
   the mean absolute deviation from the median: one pass over the chunks.
2. Second shuffle (:func:`ltrend._core.split_cuts`), for ``log_knee``,
   ``two_segment`` and ``tail_aware``: per bucket, its deepest point below the
   chord of the signed-log curve, and its best two-segment breakpoint, scored
   with the moments of every point below and above the bucket (merged from the
   first shuffle's, Chan's formula) around its own points, pushed one by one.
3. A deepest point is the last normal score; one pass over the chunks
   (:func:`ltrend._core.rank_counts`) counts the scores at or below it (the
   breakpoint) and finds the smallest above it (the threshold).
4. ``tail_aware`` composes these as in memory; on a light tail its count ``c``
   needs the score at rank ``n - c``: only the bucket holding that rank is
   shuffled and sorted, and one more count gives the breakpoint below its ties.

The depths are the in-memory expression at the same ranks on the same values,
so the knees are the in-memory ones bit for bit (unless the log unit is the
mean deviation, summed in another order); the two-line errors agree to
rounding, which docs/methods.md allows to decide only between near-ties
(a relative 1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt
from dask.delayed import delayed

from ltrend import _core
from ltrend.dask import (
    _aligned,
    _blocks,
    _Buckets,
    _check_count,
    _Ints,
    _plan_buckets,
    _Scan,
    _Scores,
    _shuffle,
    _split_block,
    _Splitters,
)

#: The methods this module spreads; "paper" is ltrend.dask's own.
SPLIT_METHODS = ("two_segment", "knee", "log_knee", "tail_aware")

#: A candidate knee: (global rank, depth, the point's value on its reading).
_Knee = tuple[int, float, float]
#: A two-segment cut: (breakpoint, total squared error, threshold).
_Cut = tuple[int, float, float]
#: A bucket's first pass: count, largest score, (rank, score) at the probes,
#: knee candidate, two-line moments.
_Summary = tuple[
    int, float | None, list[tuple[int, float]], _Knee | None, _core.LineMoments
]


@dataclass(frozen=True)
class SplitFit:
    """A breakpoint method's split of the scores, and the buckets that found it."""

    threshold: float
    breakpoint: int | None
    n_anomalies: int
    splitters: _Splitters
    counts: _Ints


@dataclass(frozen=True)
class _Split:
    """A split as a breakpoint and a threshold (None: no split)."""

    breakpoint: int
    threshold: float


# ---- Tasks (run on the workers) --------------------------------------------------


def _summarize_bucket(
    pieces: list[_Scores],
    offsets: _Ints,
    j: int,
    frame: _core.SplitFrame,
    probes: list[int],
) -> _Summary:
    values = _aligned(np.concatenate(pieces))
    return _core.split_summary(
        values, offset=int(offsets[j]), frame=frame, probes=probes
    )


def _cut_bucket(
    pieces: list[_Scores],
    offsets: _Ints,
    j: int,
    frame: _core.SplitFrame,
    log_scale: tuple[float, float] | None,
    before: _core.LineMoments | None,
    after: _core.LineMoments | None,
    previous: float | None,
) -> tuple[_Knee | None, _Cut | None]:
    values = _aligned(np.concatenate(pieces))
    return _core.split_cuts(
        values,
        offset=int(offsets[j]),
        frame=frame,
        log_scale=log_scale,
        before=before,
        after=after,
        previous=previous,
    )


def _deviation_block(block: npt.ArrayLike, center: float, exponent: int) -> float:
    return _core.absolute_deviation(_aligned(block), center=center, exponent=exponent)


def _counts_block(
    block: npt.ArrayLike,
    keys: list[float],
    log_scale: tuple[float, float] | None,
    exponent: int,
) -> tuple[_Ints, _Ints, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    below, at_or_below, least_from, least_above = _core.rank_counts(
        _aligned(block), keys=keys, log_scale=log_scale, exponent=exponent
    )
    return (
        below.astype(np.int64),
        at_or_below.astype(np.int64),
        least_from,
        least_above,
    )


def _score_in_bucket(pieces: list[_Scores], local: int) -> float:
    """The score at local rank ``local`` of a bucket gathered from its pieces."""
    values = np.sort(np.concatenate(pieces))
    _check_count(max(values.size, local + 1), values.size, "bucket of the cut")
    return float(values[local])


# ---- Steps run from the driver -----------------------------------------------------


def _first_deepest(knees: list[_Knee | None]) -> _Knee | None:
    """The deepest of the buckets' knees (in bucket order, so ties go to the
    lowest rank, the first maximum); None unless it lies below the chord."""
    best: _Knee | None = None
    for knee in knees:
        if knee is not None and (best is None or knee[1] > best[1]):
            best = knee
    return best if best is not None and best[1] > 0.0 else None


def _best_cut(cuts: list[_Cut | None]) -> _Cut | None:
    """The cut of smallest error, ties to the lowest breakpoint (bucket order)."""
    best: _Cut | None = None
    for cut in cuts:
        if cut is not None and (best is None or cut[1] < best[1]):
            best = cut
    return best


def _rank_counts(
    x: da.Array, keys: list[float], log_scale: tuple[float, float] | None, exponent: int
) -> tuple[_Ints, _Ints, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`ltrend._core.rank_counts` of every chunk, merged."""
    parts = dask.compute(
        *[
            delayed(_counts_block)(block, keys, log_scale, exponent)
            for block, _ in _blocks(x)
        ]
    )
    return (
        np.sum([p[0] for p in parts], axis=0, dtype=np.int64),
        np.sum([p[1] for p in parts], axis=0, dtype=np.int64),
        np.min([p[2] for p in parts], axis=0),
        np.min([p[3] for p in parts], axis=0),
    )


def _above_knee(
    x: da.Array, knee: _Knee, log_scale: tuple[float, float] | None, scan: _Scan
) -> _Split:
    """The split above a knee point: the scores reading above it (as in memory)."""
    _, at_or_below, _, least_above = _rank_counts(
        x, [knee[2]], log_scale, scan.exponent
    )
    breakpoint = int(at_or_below[0])
    # The knee is never the last point (it lies below the chord), so scores above
    # it exist; only an input that changed between reads breaks that.
    if not knee[0] < breakpoint < scan.n:
        raise RuntimeError(
            f"scores: {breakpoint} scores read at or below the knee at rank "
            f"{knee[0]} of {scan.n}; the array gave different values on two reads "
            "(persist it, or seed its generation)"
        )
    return _Split(breakpoint, float(least_above[0]))


def _log_scale(
    x: da.Array, scan: _Scan, picked: list[tuple[int, float]]
) -> tuple[float, float] | None:
    """The rescaled centre and unit of the log scale (one more pass when the
    quartiles coincide); None when the scores have no spread."""
    scale = _core.log_scale(scan.n, picked=picked, exponent=scan.exponent)
    if scale is None or not math.isnan(scale[1]):
        return scale
    center = scale[0]
    parts = dask.compute(
        *[
            delayed(_deviation_block)(block, center, scan.exponent)
            for block, _ in _blocks(x)
        ]
    )
    return _core.log_scale(
        scan.n, picked=picked, exponent=scan.exponent, deviation=math.fsum(parts)
    )


def _score_at(x: da.Array, buckets: _Buckets, counts: _Ints, rank: int) -> float:
    """The score at a global rank: only the bucket holding it is shuffled."""
    ends = np.cumsum(counts)
    b = int(np.searchsorted(ends, rank, side="right"))
    keys = delayed(buckets.splitters, traverse=False)
    splits = [
        delayed(_split_block, nout=2)(block, index, keys, b, b + 1)
        for index, (block, _) in enumerate(_blocks(x))
    ]
    local = rank - int(ends[b] - counts[b])
    (value,) = dask.compute(
        delayed(_score_in_bucket)([split[1] for split in splits], local)
    )
    return float(value)


def _surroundings(
    summaries: list[_Summary],
) -> list[tuple[_core.LineMoments, _core.LineMoments, float | None]]:
    """Per bucket: the merged moments of the buckets below and above it, and the
    largest score below it."""
    moments = [summary[4] for summary in summaries]
    before = [_core.LineMoments()]
    for m in moments[:-1]:
        before.append(before[-1].merge(m))
    after = [_core.LineMoments()]
    for m in reversed(moments[1:]):
        after.append(m.merge(after[-1]))
    after.reverse()
    previous: list[float | None] = [None]
    for summary in summaries[:-1]:
        previous.append(summary[1] if summary[1] is not None else previous[-1])
    return list(zip(before, after, previous, strict=True))


def fit_split(
    x: da.Array, scan: _Scan, method: str, bucket_size: int, shuffle_bytes: float
) -> SplitFit:
    """The split of a breakpoint method, equal to the in-memory one (module doc)."""
    n = scan.n
    buckets = _plan_buckets(x, scan, bucket_size)
    # The two-line moments are taken about the sample's median, rescaled as the
    # scores they are subtracted from.
    unplaced = _core.SplitFrame(n, scan.min, scan.max, scan.exponent, 0.0)
    origin = unplaced.scaled(buckets.origin)
    frame = _core.SplitFrame(n, scan.min, scan.max, scan.exponent, origin)
    logged = method in ("log_knee", "tail_aware")
    lines = method in ("two_segment", "tail_aware")
    probes = _core.quantile_ranks(n) if logged else []

    summaries, counts = _shuffle(
        x, buckets, shuffle_bytes, _summarize_bucket, (frame, probes)
    )
    _check_count(int(counts.sum()), n, "buckets")
    picked = [pair for summary in summaries for pair in summary[2]]
    log_scale = _log_scale(x, scan, picked) if logged else None

    log_knee: _Knee | None = None
    cut: _Cut | None = None
    if log_scale is not None or lines:
        around = _surroundings(summaries) if lines else None
        results, again = _shuffle(
            x,
            buckets,
            shuffle_bytes,
            _cut_bucket,
            (frame, log_scale),
            lambda b: around[b] if around is not None else (None, None, None),
        )
        _check_count(int(again.sum()), n, "buckets")
        log_knee = _first_deepest([r[0] for r in results])
        cut = _best_cut([r[1] for r in results])

    split = _choose(
        x, frame, scan, method, buckets, counts, summaries, log_scale, log_knee, cut
    )
    if split is None:
        return SplitFit(math.inf, None, 0, buckets.splitters, counts)
    return SplitFit(
        split.threshold,
        split.breakpoint,
        n - split.breakpoint,
        buckets.splitters,
        counts,
    )


def _choose(
    x: da.Array,
    frame: _core.SplitFrame,
    scan: _Scan,
    method: str,
    buckets: _Buckets,
    counts: _Ints,
    summaries: list[_Summary],
    log_scale: tuple[float, float] | None,
    log_knee: _Knee | None,
    cut: _Cut | None,
) -> _Split | None:
    """The method's split from the merged candidates (``tail_aware`` as in memory)."""
    n = scan.n
    by_lines = None if cut is None else _Split(cut[0], cut[2])
    if method == "two_segment":
        return by_lines
    # tail_aware's reference depth costs a pass over n quantiles: read only by it.
    if log_knee is not None and (
        method == "log_knee" or log_knee[1] >= _core.exponential_depth(n)
    ):
        return _above_knee(x, log_knee, log_scale, scan)
    if method == "log_knee":
        return None
    knee = _first_deepest([summary[3] for summary in summaries])
    by_knee = None if knee is None else _above_knee(x, knee, None, scan)
    if method == "knee":
        return by_knee
    count = _core.raw_count(
        None if by_knee is None else n - by_knee.breakpoint,
        None if by_lines is None else n - by_lines.breakpoint,
    )
    if count is None:
        return None
    # The whole run of ties of the score at rank n - count is anomalous.
    at = _score_at(x, buckets, counts, n - count)
    below, _, least_from, _ = _rank_counts(x, [frame.scaled(at)], None, scan.exponent)
    return _Split(int(below[0]), float(least_from[0]))
