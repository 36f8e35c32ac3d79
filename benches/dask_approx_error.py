"""How far the approximate mode of ``ltrend.dask.fit`` lands from the exact fit.

A script, not part of the test run::

    nice python benches/dask_approx_error.py    # the table in docs/performance.md

For three score distributions of ``--n`` scores (in chunks of ``--n / 10``) and
several histogram sizes, it prints the relative error of the approximate
threshold against ``ltrend.fit`` (for the chosen degree, and the largest over
all degrees), and whether the chosen degree and the anomaly count agree. It runs
on Dask's threaded scheduler: the error does not depend on where chunks run.
"""

from __future__ import annotations

import argparse

import dask
import dask.array as da
import numpy as np
import numpy.typing as npt

import ltrend
import ltrend.dask

BINS = (16, 256, 4096, 65536)


def distributions(n: int) -> dict[str, npt.NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    sets = {
        "normal + 1 % N(8, 3)": np.concatenate(
            [rng.normal(size=n - n // 100), rng.normal(8.0, 3.0, n // 100)]
        ),
        "lognormal": rng.lognormal(size=n),
        "exponential + 0.1 % far": np.concatenate(
            [rng.exponential(size=n - n // 1000), 20 + rng.exponential(5, n // 1000)]
        ),
    }
    for scores in sets.values():
        rng.shuffle(scores)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=float, default=1e6)
    args = parser.parse_args()
    n = int(args.n)
    print(
        "| scores | bins | rel. error, chosen | max over degrees | same degree, count |"
    )
    print("|---|---:|---:|---:|---|")
    with dask.config.set(scheduler="threads"):
        for name, z in distributions(n).items():
            exact = ltrend.fit(z)
            x = da.from_array(z, chunks=max(n // 10, 1))
            for bins in BINS:
                approx = ltrend.dask.fit(x, mode="approximate", bins=bins)
                errors = [
                    abs(a.threshold - e.threshold) / abs(e.threshold)
                    for a, e in zip(approx.table, exact.table, strict=True)
                ]
                chosen = abs(approx.threshold - exact.threshold) / abs(exact.threshold)
                same = (approx.degree, approx.n_anomalies) == (
                    exact.degree,
                    exact.n_anomalies,
                )
                print(
                    f"| {name} | {bins} | {chosen:.1e} | {max(errors):.1e} | "
                    f"{'yes' if same else 'no'} ({approx.n_anomalies} vs "
                    f"{exact.n_anomalies}) |"
                )


if __name__ == "__main__":
    main()
