"""Write seed inputs for the cargo-fuzz targets into fuzz/corpus/<target>/.

    python scripts/fuzz_seeds.py

Random bytes rarely form a snapshot with a valid checksum, or a score stream
with an L shape, so each target starts from a few real ones (made with the
installed ``ltrend``) and the fuzzer mutates those. ``scripts/fuzz.sh`` runs
this first. The layouts follow the targets in ``fuzz/fuzz_targets/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import ltrend

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"
#: Bytes of the snapshot envelope before the payload, and after it.
HEADER, TRAILER = 8 + 4 + 8, 4


def l_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    """An L shape with ties: uniform bulk, a few far scores, repeated values."""
    scores = rng.random(n)
    scores[rng.random(n) < 0.05] += 8.0
    scores[rng.random(n) < 0.1] = 0.5
    return scores


def monitors(rng: np.random.Generator) -> list[ltrend.Monitor]:
    """Monitors in every state a snapshot can hold: empty, filling, refitted,
    full with evicted scores, with NaN omitted, with a long history; the methods
    taken in turn, so that every one has a snapshot."""
    made = []
    for i, (window, every, min_scores, n, policy) in enumerate(
        [
            (5, 2, 3, 0, "raise"),
            (10, 4, 8, 5, "raise"),
            (12, 5, 6, 30, "omit"),
            (40, 9, 20, 137, "raise"),
            (30, 50, 30, 95, "omit"),
            (3, 1, 3, 200, "raise"),
        ]
    ):
        monitor = ltrend.Monitor(
            window=window,
            refit_every=every,
            min_scores=min_scores,
            max_degree=int(rng.integers(1, 11)),
            nan_policy=policy,  # type: ignore[arg-type]
            method=ltrend.METHODS[i % len(ltrend.METHODS)],
        )
        scores = l_scores(rng, n)
        if policy == "omit":
            scores[rng.random(n) < 0.05] = np.nan
        monitor.update_many(scores)
        made.append(monitor)
    return made


def write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data)


def main() -> None:
    rng = np.random.default_rng(8)
    for i, monitor in enumerate(monitors(rng)):
        snapshot = monitor.to_bytes()
        # Mode byte: even = the bytes as they are, odd = a payload to seal.
        write("snapshot", f"{i}-raw", b"\x00" + snapshot)
        write("snapshot", f"{i}-payload", b"\x01" + snapshot[HEADER:-TRAILER])
    for i, n in enumerate([3, 4, 10, 60, 500]):
        scores = l_scores(rng, n)
        # Head byte: max_degree = head % 12, bit 7 = nan_policy omit.
        write("fit", f"{i}-f64", bytes([5]) + scores.astype("<f8").tobytes())
        write("fit", f"{i}-f32", bytes([0x83]) + scores.astype("<f4").tobytes())
    for i, (window, every, min_scores, degree, flags, batch) in enumerate(
        [(20, 5, 10, 5, 0, 7), (60, 13, 40, 3, 1, 31), (8, 80, 8, 10, 2, 3)]
    ):
        # Head: window - 3, refit_every - 1, min_scores - 3, max_degree - 1,
        # flags (bit 0 omit, bit 1 float32, bits 2.. the index in METHODS),
        # batch length - 1.
        scores = l_scores(rng, 300)
        dtype = "<f4" if flags & 2 else "<f8"
        for m, method in enumerate(ltrend.METHODS):
            mode = flags | m << 2
            head = bytes(
                [window - 3, every - 1, min_scores - 3, degree - 1, mode, batch]
            )
            data = head + scores.astype(dtype).tobytes()
            write("monitor", f"{i}-{method}", data)
    written = sorted(p.relative_to(CORPUS) for p in CORPUS.glob("*/seed-*"))
    print(f"{len(written)} seeds in {CORPUS}")


if __name__ == "__main__":
    main()
