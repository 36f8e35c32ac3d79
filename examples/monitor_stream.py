"""Replay a real score stream through ``ltrend.Monitor`` and watch it adapt.

Two streams, both built from the benchmark data in ``../shared/data`` (set
``LTREND_DATA`` to read it from elsewhere), each with a drift in the middle:

``domain``
    A different normal class. A detector fitted before deployment (squared
    distance to the mean of the first 500 CIFAR-10 embeddings, each embedding
    scaled to unit length) scores CIFAR-10 images of class 0, then SVHN digits
    of class 0 (ResNet-18 embeddings, 5 % anomalies in each half). After the
    switch the scores grow, so a threshold learned once floods the operators
    with alarms; the monitor's window fills with the new scores and its
    threshold follows them. The detector itself is weak on these embeddings
    (the "best F1" column: no threshold at all does well on SVHN), so the
    point here is the alarm rate, not the precision.
``anomalies``
    New anomalies after the middle. Satellite image pixels (satimage-2): the
    first half holds normal scenes only, the second half the rest of the normal
    scenes and every anomaly (about 2.5 %). The detector is the standardised
    squared distance to the first 500 scenes. Once anomalies enter the window the
    sorted scores grow the steep branch of the "L", and the threshold moves to
    its corner.

For each block of scores the script prints the monitor's threshold at the end
of the block, the share of scores it flagged, and precision and recall against
the labels, beside a threshold learned once on the first window and then
frozen, and the best F1 any threshold reaches on that block (the detector's
ceiling).

Run::

    python examples/monitor_stream.py [domain|anomalies]
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

import ltrend
from ltrend import metrics

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``LTREND_DATA``, else ``<repo>/../shared/data``, else ``/work/shared/data``."""
    if "LTREND_DATA" in os.environ:
        return Path(os.environ["LTREND_DATA"])
    beside = REPO.parent / "shared" / "data"
    return beside if beside.exists() else Path("/work/shared/data")


@dataclass
class Stream:
    """A replayable score stream with its ground truth and monitor settings."""

    title: str
    scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int_]
    #: Name of the source of each score, for the printout.
    source: list[str]
    #: Index of the first score after the drift.
    drift_at: int
    window: int
    refit_every: int
    block: int


def load(path: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int_]]:
    with np.load(path) as data:
        features = np.asarray(data["X"], dtype=np.float64)
        labels = np.asarray(data["y"]).astype(np.int_)
    return features, labels


def squared_distance(
    features: npt.NDArray[np.float64], centre: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    offset = features - centre
    distances: npt.NDArray[np.float64] = np.einsum("ij,ij->i", offset, offset)
    return distances


def domain_stream(root: Path, rng: np.random.Generator) -> Stream:
    """CIFAR-10 class 0, then SVHN class 0; a detector fitted on CIFAR-10."""
    folder = root / "adbench" / "CV_by_ResNet18"
    halves = []
    for name in ("CIFAR10_0", "SVHN_0"):
        features, labels = load(folder / f"{name}.npz")
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        order = rng.permutation(len(labels))
        halves.append((name.split("_")[0], features[order], labels[order]))
    centre = halves[0][1][:500].mean(axis=0)
    return Stream(
        title="domain drift: CIFAR10_0 then SVHN_0 (fixed detector)",
        scores=np.concatenate([squared_distance(f, centre) for _, f, _ in halves]),
        labels=np.concatenate([y for _, _, y in halves]),
        source=[name for name, _, y in halves for _ in range(len(y))],
        drift_at=len(halves[0][2]),
        window=2_000,
        refit_every=250,
        block=750,
    )


def anomaly_stream(root: Path, rng: np.random.Generator) -> Stream:
    """satimage-2: normal scenes only, then the rest with every anomaly."""
    features, labels = load(root / "adbench" / "Classical" / "31_satimage-2.npz")
    normal = rng.permutation(np.flatnonzero(labels == 0))
    half = len(normal) // 2
    later = rng.permutation(np.concatenate([normal[half:], np.flatnonzero(labels)]))
    order = np.concatenate([normal[:half], later])
    reference = features[order[:500]]
    scale = reference.std(axis=0)
    scale[scale == 0.0] = 1.0
    standardised = (features[order] - reference.mean(axis=0)) / scale
    return Stream(
        title="new anomalies after the middle: satimage-2",
        scores=squared_distance(standardised, np.zeros(features.shape[1])),
        labels=labels[order],
        source=["clean" if i < half else "mixed" for i in range(len(order))],
        drift_at=half,
        window=1_000,
        refit_every=200,
        block=500,
    )


def replay(stream: Stream) -> None:
    monitor = ltrend.Monitor(window=stream.window, refit_every=stream.refit_every)
    frozen = ltrend.fit(stream.scores[: stream.window]).threshold
    print(f"\n{stream.title}")
    print(
        f"{len(stream.scores)} scores, {int(stream.labels.sum())} anomalies, "
        f"drift at score {stream.drift_at}; Monitor(window={stream.window}, "
        f"refit_every={stream.refit_every}); frozen threshold {frozen:.4g}"
    )
    print(
        f"{'scores':>13}  {'source':<13}{'anom':>5} | {'threshold':>9} {'flagged':>8}"
        f" {'prec':>5} {'recall':>6} | {'frozen':>7} {'prec':>5} {'recall':>6}"
        f" | {'best F1':>7}"
    )
    for start in range(0, len(stream.scores), stream.block):
        stop = min(start + stream.block, len(stream.scores))
        scores, truth = stream.scores[start:stop], stream.labels[start:stop]
        flags = monitor.update_many(scores)
        still = scores >= frozen
        tau = monitor.threshold
        sources = sorted(set(stream.source[start:stop]))
        marker = " <- drift" if start <= stream.drift_at < stop else ""
        print(
            f"{start:>6}-{stop - 1:<6}  {'+'.join(sources):<13}{int(truth.sum()):>5} | "
            f"{'none' if tau is None else f'{tau:.4g}':>9} {flags.mean():>8.1%}"
            f" {metrics.precision(truth, flags):>5.2f}"
            f" {metrics.recall(truth, flags):>6.2f} |"
            f" {still.mean():>7.1%} {metrics.precision(truth, still):>5.2f}"
            f" {metrics.recall(truth, still):>6.2f}"
            f" | {metrics.best_f1(truth, scores)[0]:>7.2f}{marker}"
        )
    status = monitor.status()
    print(
        f"{status.n_refits} refits; {status.n_flagged} of {status.n_seen} scores "
        f"flagged; the last refit chose degree {status.degree}"
    )


SCENARIOS = {"domain": domain_stream, "anomalies": anomaly_stream}


def main(argv: list[str]) -> int:
    chosen = argv or sorted(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenario {unknown[0]!r}; choose from {sorted(SCENARIOS)}")
        return 2
    root = data_dir()
    for name in chosen:
        rng = np.random.default_rng(0)
        try:
            stream = SCENARIOS[name](root, rng)
        except FileNotFoundError as err:
            print(f"skipping {name!r}: data file absent ({err.filename}); ", end="")
            print("set LTREND_DATA to the folder holding adbench/")
            continue
        replay(stream)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
