"""Shared test configuration: hypothesis depth and the real score sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, settings

# CI can go deeper than a local run: LTREND_HYPOTHESIS_EXAMPLES=1000 pytest
settings.register_profile(
    "ltrend",
    max_examples=int(os.environ.get("LTREND_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ltrend")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LTREND_DATA", REPO.parent / "shared" / "data"))


def squared_distance_scores(
    features: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The paper's default detector: squared L2 distance to the mean."""
    centred = features - features.mean(axis=0)
    distances: npt.NDArray[np.float64] = np.einsum("ij,ij->i", centred, centred)
    return distances


def _adbench(name: str) -> npt.NDArray[np.float64]:
    path = DATA / "adbench" / name
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    with np.load(path) as data:
        return squared_distance_scores(np.asarray(data["X"], dtype=np.float64))


def _mnist_digit(digit: int) -> npt.NDArray[np.float64]:
    path = DATA / "mnist" / "mnist_test.npz"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    with np.load(path) as data:
        pixels = np.asarray(data["X"], dtype=np.float64) / 255.0
        digits = np.asarray(data["y"])
    rng = np.random.default_rng(digit)
    normal = np.flatnonzero(digits == digit)
    others = rng.choice(np.flatnonzero(digits != digit), normal.size // 49, False)
    return squared_distance_scores(pixels[np.concatenate([normal, others])])


REAL_SETS = {
    "cifar10_0": lambda: _adbench("CV_by_ResNet18/CIFAR10_0.npz"),
    "svhn_8": lambda: _adbench("CV_by_ResNet18/SVHN_8.npz"),
    "mvtec_bottle": lambda: _adbench("CV_by_ResNet18/MVTec-AD_bottle.npz"),
    "20news_3": lambda: _adbench("NLP_by_BERT/20news_3.npz"),
    "cardio": lambda: _adbench("Classical/6_cardio.npz"),
    "shuttle": lambda: _adbench("Classical/32_shuttle.npz"),
    "mnist_3": lambda: _mnist_digit(3),
}


@pytest.fixture(params=sorted(REAL_SETS), scope="session")
def real_scores(request: pytest.FixtureRequest) -> npt.NDArray[np.float64]:
    """Squared-distance scores of a real data set (skipped if the file is absent)."""
    scores: npt.NDArray[np.float64] = REAL_SETS[request.param]()
    return scores
