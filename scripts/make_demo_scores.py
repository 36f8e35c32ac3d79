"""Rebuild the demo score set shipped in ``python/ltrend/data/demo_scores.npz``.

MNIST test digits (LeCun and Cortes, CC BY-SA 3.0): every "0" is normal, and 2 %
anomalies are drawn from the other digits with a fixed seed. The score is the
squared L2 distance of the raw pixels (scaled to [0, 1]) to the mean image, the
paper's default detector.

Run from the repository root: ``python scripts/make_demo_scores.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "mnist" / "mnist_test.npz"
TARGET = ROOT / "python" / "ltrend" / "data" / "demo_scores.npz"
NORMAL_DIGIT = 0
ANOMALY_SHARE = 0.02
SEED = 0


def main() -> None:
    data = np.load(SOURCE)
    pixels = data["X"].astype(np.float64) / 255.0
    digits = data["y"]
    rng = np.random.default_rng(SEED)
    normal = np.flatnonzero(digits == NORMAL_DIGIT)
    n_anomalies = round(ANOMALY_SHARE * normal.size / (1 - ANOMALY_SHARE))
    others = rng.choice(np.flatnonzero(digits != NORMAL_DIGIT), n_anomalies, False)
    chosen = rng.permutation(np.concatenate([normal, others]))
    features = pixels[chosen]
    scores = ((features - features.mean(axis=0)) ** 2).sum(axis=1)
    labels = (digits[chosen] != NORMAL_DIGIT).astype(np.int8)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(TARGET, scores=scores, labels=labels)
    print(f"wrote {TARGET}: {scores.size} scores, {labels.sum()} anomalies")


if __name__ == "__main__":
    main()
