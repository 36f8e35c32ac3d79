"""Result.plot and the history figure, rendered by real matplotlib to PNG files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import ltrend
from ltrend import _plot


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _scores(n: int = 800, k: int = 12) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(n)
    return np.concatenate([rng.normal(1.0, 0.1, n - k), rng.uniform(3.0, 6.0, k)])


def _save(ax: Axes, path: Path) -> None:
    figure = ax.figure
    assert isinstance(figure, Figure)
    figure.savefig(path)


def _ydata(line: Any) -> npt.NDArray[np.float64]:
    return np.asarray(line.get_ydata(), dtype=np.float64)


def _png_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    # Something was drawn: not one flat colour.
    assert np.ptp(image[..., :3]) > 0.5
    return tuple(image.shape)


def test_plot_draws_the_curve_each_fit_and_the_threshold(tmp_path: Path) -> None:
    scores = _scores()
    result = ltrend.fit(scores)
    ax = result.plot()
    lines = {line.get_label(): line for line in ax.get_lines()}
    curve = lines["sorted scores"]
    np.testing.assert_array_equal(_ydata(curve), np.sort(scores))
    for row in result.table:
        chosen = " (chosen)" if row.degree == result.degree else ""
        fit_line = lines[f"degree {row.degree}{chosen}"]
        np.testing.assert_allclose(
            _ydata(fit_line), result.fitted_curve(row.degree), rtol=1e-12
        )
    threshold = lines[f"threshold {result.threshold:.6g}"]
    assert _ydata(threshold).tolist() == [result.threshold, result.threshold]
    (anomalies,) = ax.collections
    assert np.asarray(anomalies.get_offsets()).shape == (result.n_anomalies, 2)
    path = tmp_path / "plot.png"
    _save(ax, path)
    assert _png_shape(path)[2] in (3, 4)


def test_plot_on_given_axes() -> None:
    figure, (left, right) = plt.subplots(1, 2)
    returned = ltrend.fit(_scores()).plot(ax=right)
    assert returned is right
    assert len(left.get_lines()) == 0
    assert figure is right.figure


def test_no_split_has_no_threshold_line() -> None:
    result = ltrend.fit(np.ones(50))
    assert result.degree is None
    ax = result.plot()
    assert not any(
        str(line.get_label()).startswith("threshold") for line in ax.get_lines()
    )
    assert len(ax.collections) == 0
    assert "no split" in ax.get_title()


def test_large_inputs_are_thinned_but_keep_every_anomaly(tmp_path: Path) -> None:
    scores = _scores(n=200_000, k=300)
    result = ltrend.fit(scores)
    ax = result.plot()
    curve = next(line for line in ax.get_lines() if line.get_label() == "sorted scores")
    ranks = np.asarray(curve.get_xdata())
    assert len(ranks) <= _plot.MAX_DRAWN_POINTS + _plot.MAX_DRAWN_TAIL
    assert ranks[0] == 0
    assert ranks[-1] == len(scores) - 1
    tail = np.arange(len(scores) - result.n_anomalies, len(scores))
    assert np.isin(tail, ranks).all()
    np.testing.assert_array_equal(_ydata(curve), np.sort(scores)[ranks])
    path = tmp_path / "large.png"
    _save(ax, path)
    _png_shape(path)


def test_drawn_ranks_is_everything_when_small() -> None:
    np.testing.assert_array_equal(_plot.drawn_ranks(10, 3), np.arange(10))


def test_threshold_history_png(tmp_path: Path) -> None:
    steps = np.array([1000, 2000, 3000, 4000])
    thresholds = np.array([2.0, 2.5, np.inf, 2.2])
    path = tmp_path / "history.png"
    _plot.save_history_plot(steps, thresholds, str(path))
    assert _png_shape(path)[0] > 100
    _, ax = _plot.new_figure()
    _plot.draw_history(steps, thresholds, ax)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), steps)
    # An update with no split (infinite threshold) is a gap, not a spike.
    np.testing.assert_array_equal(_ydata(line), [2.0, 2.5, np.nan, 2.2])
    with pytest.raises(ValueError, match="one length"):
        _plot.draw_history(steps, thresholds[:2], ax)


def test_threshold_history_runs_on_to_now() -> None:
    steps = np.array([100, 250])
    thresholds = np.array([3.0, 4.0])
    _, ax = _plot.new_figure()
    _plot.draw_history(steps, thresholds, ax, until=400)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [100, 250, 400])
    np.testing.assert_array_equal(_ydata(line), [3.0, 4.0, 4.0])
    # The point added at `until` is not a refit: no dot there.
    assert line.get_markevery() == slice(0, 2)
    _, empty = _plot.new_figure()
    _plot.draw_history(np.array([], dtype=np.int64), np.array([]), empty, until=9)
    assert "no refit yet" in empty.get_title()


def test_plot_without_matplotlib_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = ltrend.fit(_scores())
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "ltrend\[plot\]"'):
        result.plot()


def test_importing_ltrend_imports_neither_matplotlib_nor_scikit_learn() -> None:
    code = (
        "import sys, numpy as np, ltrend\n"
        "ltrend.fit(np.arange(10.0)).to_dict()\n"
        "print(sorted(m for m in ('matplotlib', 'sklearn') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_fitted_curve_at_some_ranks() -> None:
    result = ltrend.fit(_scores())
    ranks = np.array([0, 5, 500, result.n_scores - 1])
    for row in result.table:
        np.testing.assert_array_equal(
            result.fitted_curve(row.degree, ranks=ranks),
            result.fitted_curve(row.degree)[ranks],
        )
    for bad in ([result.n_scores], [-1], [0.5]):
        with pytest.raises(ValueError, match="ranks: must be integers in"):
            result.fitted_curve(ranks=bad)
