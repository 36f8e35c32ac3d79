"""A PyOD Isolation Forest on real data: its default threshold, then the learned one.

satimage-2 (ADBench, from ``../shared/data``): 5,803 satellite image pixels, of
which 71 (1.2 %) are anomalies. PyOD flags a fixed 10 % by default; one call to
``ltrend.pyod.relabel`` replaces that cut with the L-trend threshold learned from
the detector's own scores, without labels. The labels are used here only to
score both cuts::

    python examples/pyod_relabel.py [--plot satimage.png]

The data folder is ``$LTREND_DATA``, else ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from pyod.models.iforest import IForest

from ltrend import metrics
from ltrend.pyod import relabel

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LTREND_DATA", REPO.parent / "shared" / "data"))
SATIMAGE = DATA / "adbench" / "Classical" / "31_satimage-2.npz"


def _quality(labels: Any, predicted: Any, threshold: float) -> dict[str, Any]:
    return {
        "threshold": float(threshold),
        "flagged": int(np.count_nonzero(predicted)),
        "precision": metrics.precision(labels, predicted),
        "recall": metrics.recall(labels, predicted),
        "f1": metrics.f1(labels, predicted),
    }


def compare(path: Path = SATIMAGE, plot: str | None = None) -> dict[str, Any]:
    """Fit an Isolation Forest on ``path``; score PyOD's cut and the learned one."""
    with np.load(path) as stored:
        features = np.asarray(stored["X"], dtype=np.float64)
        labels = np.asarray(stored["y"])
    detector = IForest(random_state=0).fit(features)
    default = _quality(labels, detector.labels_, detector.threshold_)
    result = relabel(detector)
    learned = _quality(labels, detector.labels_, detector.threshold_)
    if plot is not None:
        figure = result.plot().figure
        assert isinstance(figure, Figure)  # a new figure, not a subfigure
        figure.savefig(plot)
    return {
        "scores": detector.decision_scores_,
        "default": default,
        "ltrend": learned,
        "best_f1": metrics.best_f1(labels, detector.decision_scores_)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="also draw the learned threshold to a file")
    args = parser.parse_args()
    comparison = compare(plot=args.plot)
    print(
        f"{'cut':<22}{'threshold':>10}{'flagged':>9}{'precision':>11}{'recall':>8}{'F1':>7}"
    )
    for name, key in (
        ("PyOD default (10 %)", "default"),
        ("L-trend (relabel)", "ltrend"),
    ):
        row = comparison[key]
        print(
            f"{name:<22}{row['threshold']:>10.4f}{row['flagged']:>9}"
            f"{row['precision']:>11.3f}{row['recall']:>8.3f}{row['f1']:>7.3f}"
        )
    print(f"best F1 of any threshold on these scores: {comparison['best_f1']:.3f}")


if __name__ == "__main__":
    main()
