"""Search for inputs on which ltrend.fit or the reference break a rule.

    python scripts/extreme_search.py SEED COUNT

Draws COUNT arrays (3 to 3,000 scores) from shapes that hypothesis reaches
rarely: log-uniform magnitudes, tight clusters at any magnitude, subnormal
integers, a few binary exponents, boundary values, a bulk with a tight cluster
far from it (ordinary magnitudes), an L with one extreme score. Each array goes
through the core and the reference with a random ``max_degree``; both must keep
every rule of METHOD.md (``check_rules`` of tests/test_properties.py) and agree
by its parity rule (tests/parity.py). Prints the first failures and a count;
exits 1 if any failed. A failure belongs in EXTREME_EXAMPLES of the tests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_properties import check_rules

import ltrend
from ltrend import reference

from parity import assert_agree

Scores = npt.NDArray[np.float64]
BOUNDARY = np.array(
    [
        *(0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308),
        *(1.7976931348623157e308, -1.7976931348623157e308, 1.0, -1.0),
        *(1e300, 1e-300, 2.0**400, 2.0**-400),
    ]
)


def magnitudes(rng: np.random.Generator, size: int) -> Scores:
    """Floats with a uniformly drawn binary exponent, from the subnormals up."""
    return np.ldexp(rng.uniform(-1.0, 1.0, size), rng.integers(-1074, 1024, size))


def draw(rng: np.random.Generator) -> Scores:
    n = int(rng.integers(3, 40)) if rng.random() < 0.8 else int(rng.integers(40, 3000))
    kind = int(rng.integers(0, 7))
    if kind == 0:
        return magnitudes(rng, n)
    if kind == 1:
        k = int(rng.integers(1, 4))
        centres = magnitudes(rng, k)
        spreads = np.ldexp(1.0, rng.integers(-1074, 1024, k))
        which = rng.integers(0, k, n)
        z = centres[which] + spreads[which] * rng.standard_normal(n)
        return np.where(np.isfinite(z), z, centres[which])
    if kind == 2:
        subnormal: Scores = rng.integers(-5, 50, n).astype(np.float64) * 5e-324
        return subnormal
    if kind == 3:
        few: Scores = np.ldexp(
            rng.uniform(-1.0, 1.0, n), rng.choice(rng.integers(-1074, 1024, 3), n)
        )
        return few
    if kind == 4:
        return rng.choice(BOUNDARY, n)
    if kind == 5:
        m = int(rng.integers(2, n + 2))
        offset = 10.0 ** rng.uniform(0, 15) * rng.choice([-1.0, 1.0])
        spread = abs(offset) * 10.0 ** rng.uniform(-15.5, -6)
        return np.concatenate([rng.standard_normal(n), offset + spread * rng.random(m)])
    z = rng.standard_normal(n)
    z[: int(rng.integers(1, 3))] = np.ldexp(1.0, int(rng.integers(-1074, 1023)))
    return z


def main(seed: int, count: int) -> int:
    rng = np.random.default_rng(seed)
    failures = 0
    started = time.monotonic()
    for i in range(count):
        with np.errstate(all="ignore"):
            scores = draw(rng)
        max_degree = int(rng.integers(1, 11))
        try:
            core = ltrend.fit(scores, max_degree=max_degree)
            ref = reference.fit(scores, max_degree=max_degree)
            check_rules(core, scores, max_degree=max_degree)
            check_rules(ref, scores, max_degree=max_degree)
            assert_agree(core, ref, scores)
        except Exception as error:  # every failure is a finding
            failures += 1
            if failures <= 5:
                shown = (
                    scores.tolist() if scores.size <= 50 else f"{scores.size} scores"
                )
                print(f"input {i}, max_degree {max_degree}: {shown!r}")
                print(f"  {type(error).__name__}: {str(error)[:600]}")
    took = time.monotonic() - started
    print(f"seed {seed}: {count} arrays, {failures} failures, {took:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
