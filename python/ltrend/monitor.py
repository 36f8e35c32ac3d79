"""``ltrend.Monitor``: a streaming threshold that re-learns itself as scores drift.

A service scores events one at a time or in batches and needs a decision for
each score now. The monitor judges every score against the threshold in force
when it arrives, keeps the latest ``window`` scores, and re-learns the threshold
on them every ``refit_every`` scores, with exactly the semantics of
:func:`ltrend.fit`. The work happens in the Rust core (a ring buffer plus a
sorted copy of the window that each refit updates by merging, never re-sorting).
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple, SupportsFloat, SupportsIndex

import numpy as np
import numpy.typing as npt

from ltrend import _core
from ltrend._fit import DEFAULT_MAX_DEGREE
from ltrend._result import DegreeRow, _json_float
from ltrend._validation import (
    NanPolicy,
    as_scores,
    check_max_degree,
    check_method,
    check_nan_policy,
)

__all__ = [
    "DEFAULT_REFIT_EVERY",
    "DEFAULT_WINDOW",
    "HISTORY_LIMIT",
    "Monitor",
    "MonitorStatus",
]

#: Default window: enough scores for a stable fit at a 1 % anomaly rate
#: (about 100 anomalies), small enough to follow drift within minutes at
#: typical request rates.
DEFAULT_WINDOW = 10_000
#: Default refit interval: a tenth of the default window, so consecutive
#: thresholds share 90 % of their scores.
DEFAULT_REFIT_EVERY = 1_000

#: Refits kept by :meth:`Monitor.threshold_history`, the oldest dropped first:
#: at one refit an hour almost six months, in under 100 kB of every snapshot.
HISTORY_LIMIT: int = _core.MONITOR_HISTORY_LIMIT

_MIN_SCORES: int = _core.MIN_SCORES
_MAX_WINDOW: int = _core.MONITOR_MAX_WINDOW
_REAL_KINDS = frozenset("biuf")


class MonitorStatus(NamedTuple):
    """A consistent view of a :class:`Monitor`, taken at one instant."""

    #: The threshold in force; None until the first refit, +inf when the last
    #: refit found no split (then nothing is flagged).
    threshold: float | None
    #: The degree the last refit chose; None before it, when it found no split,
    #: and always for a method other than ``"paper"`` (as :func:`ltrend.fit`).
    degree: int | None
    #: ``n_seen`` when the last refit ran; None before the first.
    last_refit: int | None
    #: Refits run so far.
    n_refits: int
    #: Scores given to the monitor, non-finite ones included.
    n_seen: int
    #: Scores judged anomalous.
    n_flagged: int
    #: Non-finite scores left out (``nan_policy="omit"``).
    n_omitted: int
    #: Scores in the window now.
    n_window: int
    #: Finite scores that entered the window since the last refit.
    since_refit: int
    #: Scores in the window at the last refit; None before the first.
    refit_size: int | None
    #: How many of those scores the last refit put at or above its threshold.
    refit_anomalies: int | None
    #: The per-degree table of the last refit (empty before the first, and for a
    #: method other than ``"paper"``, which fits no polynomial degree).
    table: tuple[DegreeRow, ...]


def _check_count(name: str, value: object, low: int, high: int) -> int:
    """Return ``value`` as an int in ``low..=high`` or raise naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    try:
        count = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name}: expected an integer, got {type(value).__name__} {value!r}"
        ) from None
    if not low <= count <= high:
        raise ValueError(f"{name}: must be between {low} and {high}, got {count}")
    return int(count)


def _as_score(score: object) -> float:
    """One real score as a Python float (non-finite values pass through)."""
    if isinstance(score, float):
        return float(score)
    array = np.asarray(score)
    if array.ndim != 0:
        raise ValueError(
            f"score: expected one number, got an array of shape {array.shape}; "
            "pass batches to update_many"
        )
    if array.dtype.kind not in _REAL_KINDS:
        raise TypeError(
            f"score: expected a real number, got {type(score).__name__} {score!r}"
        )
    return float(array)


class Monitor:
    """Judge streaming scores against an L-trend threshold that follows the data.

    Each score is judged against the threshold in force when it arrives
    (``score >= threshold`` is anomalous), then enters a window of the latest
    ``window`` scores. The threshold is learned on the window as soon as it holds
    ``min_scores`` scores, and re-learned after every ``refit_every`` further
    scores. Each refit is exactly :func:`ltrend.fit` on the window with the
    monitor's ``method`` and ``max_degree``: right after one, ``monitor.threshold
    == ltrend.fit(monitor.window_scores(), method=monitor.method).threshold``.

    Parameters
    ----------
    window : int, default 10_000
        How many of the latest finite scores the threshold is learned on,
        3 to 2**40.
    refit_every : int, default 1_000
        Finite scores between two refits, 1 to 2**40. It may exceed ``window``.
    min_scores : int, optional
        Finite scores needed before the first threshold, 3 to ``window``.
        Defaults to ``min(window, refit_every)``, and at least 3.
    max_degree : int, default 5
        As for :func:`ltrend.fit`.
    nan_policy : {"raise", "omit"}, default "raise"
        ``"raise"`` refuses a batch holding NaN or infinite scores (the monitor
        is left unchanged); ``"omit"`` judges them normal, as :func:`ltrend.fit`
        labels them, and keeps them out of the window.
    method : str, default "paper"
        One of ``ltrend.METHODS``; each refit runs it. The split methods (every
        one but ``"paper"``) report no degree and an empty table, as
        :func:`ltrend.fit` does for them.

    Raises
    ------
    TypeError
        For a non-integer size or degree.
    ValueError
        For an option out of range, or a method not in ``ltrend.METHODS``.

    See Also
    --------
    ltrend.fit : The one-shot thresholder each refit runs.

    Notes
    -----
    *Before the first threshold* (``threshold is None``) every score is judged
    normal. *Non-finite scores* under ``nan_policy="omit"`` count in ``n_seen``
    and ``n_omitted`` but neither enter the window nor advance the refit
    schedule. *No split*: when a refit finds no split (for example a window of
    equal scores), the threshold is +inf and nothing is flagged until
    the next refit. *Float32* scores are judged and stored as their exact
    float64 values, so they behave as the same values passed as float64.

    *Cost*: a refit merges the scores that arrived and left since the previous
    one into a sorted copy of the window (O(window + k log k) for k scores) and
    runs the fit on it; between refits an update is O(1). Memory is about three
    float64 copies of the window.

    *Threads*: one monitor may be shared. Each call holds an internal lock for
    its duration (with the GIL released), so a batch is judged and added
    atomically; no score is lost or counted twice.

    *History*: every refit records ``n_seen`` and the threshold it learned;
    :meth:`threshold_history` returns the latest :data:`HISTORY_LIMIT` of them
    (the oldest are dropped first, so memory stays bounded however long the
    monitor runs), and snapshots keep them. ``ltrend snapshot FILE --plot
    out.png`` draws them from a saved monitor.

    *Durability*: :meth:`to_bytes` captures the full state in a versioned,
    CRC-32-checked byte string and :meth:`from_bytes` restores it exactly (the
    Rust core decodes and validates it; nothing in it is executed). Pickling
    goes through the same pair, but unpickling untrusted bytes is unsafe
    whatever they hold: store and load snapshots with ``to_bytes`` and
    ``from_bytes``.

    Examples
    --------
    >>> import numpy as np
    >>> import ltrend
    >>> rng = np.random.default_rng(0)
    >>> monitor = ltrend.Monitor(window=2_000, refit_every=500)
    >>> print(monitor.threshold)
    None
    >>> scores = np.concatenate([rng.random(1_990), 5.0 + rng.random(10)])
    >>> flags = monitor.update_many(rng.permutation(scores))
    >>> monitor.n_refits
    4
    >>> monitor.threshold == ltrend.fit(monitor.window_scores()).threshold
    True
    >>> monitor.update(9.0), monitor.update(0.5)
    (True, False)
    >>> restored = ltrend.Monitor.from_bytes(monitor.to_bytes())
    >>> restored.threshold == monitor.threshold, restored.n_seen
    (True, 2002)
    """

    __slots__ = ("_core", "_raise")

    def __init__(
        self,
        *,
        window: SupportsIndex = DEFAULT_WINDOW,
        refit_every: SupportsIndex = DEFAULT_REFIT_EVERY,
        min_scores: SupportsIndex | None = None,
        max_degree: SupportsIndex = DEFAULT_MAX_DEGREE,
        nan_policy: NanPolicy = "raise",
        method: str = "paper",
    ) -> None:
        size = _check_count("window", window, _MIN_SCORES, _MAX_WINDOW)
        every = _check_count("refit_every", refit_every, 1, _MAX_WINDOW)
        if min_scores is None:
            first = max(_MIN_SCORES, min(size, every))
        else:
            first = _check_count("min_scores", min_scores, _MIN_SCORES, size)
        core = _core.Monitor(
            window=size,
            refit_every=every,
            min_scores=first,
            max_degree=check_max_degree(max_degree),
            nan_policy=check_nan_policy(nan_policy),
            method=check_method(method),
        )
        self._attach(core)

    def _attach(self, core: _core.Monitor) -> None:
        self._core = core
        self._raise = core.status().nan_policy == "raise"

    # Scoring ------------------------------------------------------------------

    def update(self, score: SupportsFloat) -> bool:
        """Judge one score, then add it to the window.

        Parameters
        ----------
        score : float
            One real score (a Python or NumPy number).

        Returns
        -------
        bool
            True when ``score >= threshold`` for the threshold in force before
            this score arrived; False before the first threshold.

        Raises
        ------
        TypeError
            For a complex, string or other non-real value.
        ValueError
            For an array (use :meth:`update_many`), or a NaN or infinite score
            under ``nan_policy="raise"`` (the monitor is then unchanged).

        Examples
        --------
        >>> import ltrend
        >>> monitor = ltrend.Monitor(window=5, refit_every=5)
        >>> [monitor.update(z) for z in (0.1, 0.2, 0.1, 0.2, 0.3, 4.0)]
        [False, False, False, False, False, True]
        """
        z = _as_score(score)
        if self._raise and not math.isfinite(z):
            raise ValueError(
                f"score: got {z}; NaN and infinite scores are refused with "
                'nan_policy="raise" (pass nan_policy="omit" to judge them normal '
                "and keep them out of the window)"
            )
        return self._core.update(z)

    def update_many(self, scores: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Judge a batch of scores in order, adding each to the window after it.

        A refit that falls due inside the batch applies to the scores after it,
        exactly as if they had been given one at a time.

        Parameters
        ----------
        scores : array_like, 1-D
            Real scores; float32 and float64 are read without a copy.

        Returns
        -------
        ndarray of bool
            The anomaly mask, in input order.

        Raises
        ------
        TypeError
            For complex, string or object scores.
        ValueError
            For a non-1-D array, or NaN or infinite scores under
            ``nan_policy="raise"``; the whole batch is then refused and the
            monitor is unchanged.

        Examples
        --------
        >>> import numpy as np
        >>> import ltrend
        >>> monitor = ltrend.Monitor(window=100, refit_every=100)
        >>> calm = np.r_[np.linspace(0.0, 1.0, 97), 6.0, 7.0, 8.0]
        >>> monitor.update_many(calm).any()
        np.False_
        >>> monitor.update_many([0.5, 9.0, 0.7]).tolist()
        [False, True, False]
        """
        return self._core.update_many(as_scores(scores))

    def refit(self) -> None:
        """Re-learn the threshold on the window now and restart the refit count.

        Useful after a known change (a new model version, say), rather than
        waiting up to ``refit_every`` scores.

        Raises
        ------
        ValueError
            While the window holds fewer than ``min_scores`` scores.
        """
        self._core.refit()

    def window_scores(self) -> npt.NDArray[np.float64]:
        """The scores in the window, oldest first (a new float64 array)."""
        return self._core.window_scores()

    def threshold_history(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The threshold over time: when each refit ran and what it learned.

        ``thresholds[i]`` judged the scores that arrived after score number
        ``steps[i]``, until the next refit; ``thresholds[-1]`` is the threshold
        in force now.

        Returns
        -------
        steps : ndarray of int64
            ``n_seen`` at each refit, strictly increasing.
        thresholds : ndarray of float64
            The threshold each refit learned; +inf where it found no split
            (nothing was flagged until the next refit). Never NaN.

        Notes
        -----
        Only the latest :data:`HISTORY_LIMIT` refits are kept, the oldest dropped
        first. A refit at the same ``n_seen`` as the one before it (a manual
        :meth:`refit` right after a scheduled one) sees the same window and so
        learns the same threshold; it is recorded once. Before the first refit
        both arrays are empty. Snapshots (:meth:`to_bytes`) keep the history,
        and :meth:`to_dict` lists it with the degree of each refit.

        Examples
        --------
        >>> import numpy as np
        >>> import ltrend
        >>> monitor = ltrend.Monitor(window=10, refit_every=10)
        >>> flags = monitor.update_many(np.r_[np.full(10, 2.0), np.arange(10.0) ** 3])
        >>> steps, thresholds = monitor.threshold_history()
        >>> steps
        array([10, 20])
        >>> np.isinf(thresholds)
        array([ True, False])
        >>> cubes = ltrend.fit(np.arange(10.0) ** 3)
        >>> bool(thresholds[-1] == monitor.threshold == cubes.threshold)
        True
        """
        _, steps, thresholds, _ = self._core.history()
        return steps, thresholds

    # Inspection ---------------------------------------------------------------

    def status(self) -> MonitorStatus:
        """Everything that changes with updates, read at one instant.

        Reading several properties one after another while other threads update
        the monitor may mix instants; this does not.
        """
        raw = self._core.status()
        return MonitorStatus(
            threshold=raw.threshold,
            degree=raw.degree,
            last_refit=raw.last_refit,
            n_refits=raw.n_refits,
            n_seen=raw.n_seen,
            n_flagged=raw.n_flagged,
            n_omitted=raw.n_omitted,
            n_window=raw.n_window,
            since_refit=raw.since_refit,
            refit_size=raw.refit_size,
            refit_anomalies=raw.refit_anomalies,
            table=tuple(DegreeRow(*row) for row in raw.table),
        )

    @property
    def threshold(self) -> float | None:
        """The threshold in force: None until the first refit, +inf for no split."""
        return self._core.status().threshold

    @property
    def degree(self) -> int | None:
        """The degree the last refit chose.

        None before it, for no split, and for a method other than ``"paper"``.
        """
        return self._core.status().degree

    @property
    def last_refit(self) -> int | None:
        """``n_seen`` when the last refit ran; None before the first."""
        return self._core.status().last_refit

    @property
    def n_refits(self) -> int:
        """Refits run so far."""
        return self._core.status().n_refits

    @property
    def n_seen(self) -> int:
        """Scores given to the monitor, non-finite ones included."""
        return self._core.status().n_seen

    @property
    def n_flagged(self) -> int:
        """Scores judged anomalous so far."""
        return self._core.status().n_flagged

    @property
    def n_omitted(self) -> int:
        """Non-finite scores left out under ``nan_policy="omit"``."""
        return self._core.status().n_omitted

    @property
    def n_window(self) -> int:
        """Scores in the window now (at most ``window``)."""
        return self._core.status().n_window

    @property
    def table(self) -> tuple[DegreeRow, ...]:
        """The per-degree table of the last refit.

        Empty before the first, and for a method other than ``"paper"``.
        """
        return self.status().table

    @property
    def window(self) -> int:
        """The window size."""
        return self._core.status().window

    @property
    def refit_every(self) -> int:
        """Finite scores between two refits."""
        return self._core.status().refit_every

    @property
    def min_scores(self) -> int:
        """Finite scores needed before the first threshold."""
        return self._core.status().min_scores

    @property
    def max_degree(self) -> int:
        """Highest polynomial degree each refit tries."""
        return self._core.status().max_degree

    @property
    def nan_policy(self) -> NanPolicy:
        """``"raise"`` or ``"omit"``."""
        return "raise" if self._raise else "omit"

    @property
    def method(self) -> str:
        """The method each refit uses (one of ``ltrend.METHODS``)."""
        return self._core.status().method

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (options, counters, threshold, table and history).

        ``history`` holds three lists of one length, one item per refit of
        :meth:`threshold_history`: ``n_seen``, ``threshold`` and ``degree``
        (None where the refit found no split). Non-finite floats are written as
        the strings "inf" or "nan".
        """
        raw, steps, thresholds, degrees = self._core.history()
        threshold = None if raw.threshold is None else _json_float(raw.threshold)
        return {
            "window": raw.window,
            "refit_every": raw.refit_every,
            "min_scores": raw.min_scores,
            "max_degree": raw.max_degree,
            "nan_policy": raw.nan_policy,
            "method": raw.method,
            "threshold": threshold,
            "degree": raw.degree,
            "last_refit": raw.last_refit,
            "n_refits": raw.n_refits,
            "n_seen": raw.n_seen,
            "n_flagged": raw.n_flagged,
            "n_omitted": raw.n_omitted,
            "n_window": raw.n_window,
            "since_refit": raw.since_refit,
            "table": [
                {
                    "degree": degree,
                    "threshold": _json_float(tau),
                    "compactness": _json_float(comp),
                    "n_anomalies": count,
                }
                for degree, tau, comp, count in raw.table
            ],
            "history": {
                "n_seen": steps.tolist(),
                "threshold": [_json_float(tau) for tau in thresholds.tolist()],
                "degree": degrees,
            },
        }

    # Durability ---------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The full state as a self-checking byte string.

        The format is versioned (magic bytes, format version, payload length),
        holds the options, counters, last refit, threshold history and window,
        and ends with a CRC-32 of everything before it. It is little-endian on
        every platform. The history adds at most 24 bytes per refit kept
        (:data:`HISTORY_LIMIT`), under 100 kB.
        """
        return self._core.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Monitor:
        """Restore a monitor from :meth:`to_bytes`, exactly as it was.

        Parameters
        ----------
        data : bytes-like
            A snapshot.

        Returns
        -------
        Monitor
            A monitor with the same options, window, threshold and counters,
            which goes on to judge every later score as the original would.

        Raises
        ------
        TypeError
            When ``data`` is not bytes-like.
        ValueError
            When the bytes are truncated, oversized, corrupted (checksum
            mismatch), of another format version, or describe an impossible
            state. Nothing is half-loaded.
        """
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TypeError(
                f"data: expected the bytes of Monitor.to_bytes(), got "
                f"{type(data).__name__}"
            )
        monitor = cls.__new__(cls)
        monitor._attach(_core.Monitor.from_bytes(data))
        return monitor

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (type(self).from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        raw = self._core.status()
        if raw.threshold is None:
            state = f"no threshold yet ({raw.n_window} of {raw.min_scores} scores)"
        else:
            state = f"threshold={raw.threshold:.6g}, degree={raw.degree}"
        return (
            f"Monitor(window={raw.window}, refit_every={raw.refit_every}, "
            f"{state}, n_seen={raw.n_seen}, n_flagged={raw.n_flagged})"
        )
