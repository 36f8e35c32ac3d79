"""The core releases the GIL and holds no shared state: concurrent calls are exact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import ltrend


def test_concurrent_fits_equal_serial_fits() -> None:
    rng = np.random.default_rng(0)
    arrays = [
        np.concatenate([rng.normal(size=20_000 + 1000 * i), rng.normal(7, 2, 100)])
        for i in range(16)
    ]
    arrays += [a.astype(np.float32) for a in arrays[:4]]
    serial = [ltrend.fit(a) for a in arrays]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(ltrend.fit, arrays))
    for one, other in zip(serial, parallel, strict=True):
        assert one.threshold == other.threshold
        assert one.table == other.table
        np.testing.assert_array_equal(one.mask, other.mask)


def test_one_array_shared_by_many_threads() -> None:
    scores = np.random.default_rng(1).lognormal(size=100_000)
    expected = ltrend.fit(scores)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: ltrend.fit(scores), range(16)))
    assert all(r.threshold == expected.threshold for r in results)
