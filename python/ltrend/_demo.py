"""The embedded demo: a small real score set shipped inside the package."""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class DemoScores(NamedTuple):
    """Scores with ground truth, for trying ``ltrend`` without any data of one's own."""

    scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int8]
    description: str


DESCRIPTION = (
    "MNIST test set, raw pixels: 980 images of the digit 0 are normal and 20 "
    "images of other digits (2 %) are anomalies; the score is the squared L2 "
    "distance to the mean image."
)


def load_demo() -> DemoScores:
    """Load the demo scores and their 0/1 labels (1 = anomaly).

    Examples
    --------
    >>> from ltrend._demo import load_demo
    >>> demo = load_demo()
    >>> demo.scores.shape, int(demo.labels.sum())
    ((1000,), 20)
    """
    source = resources.files("ltrend") / "data" / "demo_scores.npz"
    with source.open("rb") as handle, np.load(handle) as data:
        scores = np.asarray(data["scores"], dtype=np.float64)
        labels = np.asarray(data["labels"], dtype=np.int8)
    return DemoScores(scores, labels, DESCRIPTION)
