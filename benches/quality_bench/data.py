"""The benchmark's data sets: real features and 0/1 labels, built with fixed seeds.

Every file comes from the shared data folder (``$LTREND_DATA``, else
``<repo>/../shared/data``, else ``/work/shared/data``); a data set whose file is
absent is skipped, never an error.

Groups (the rows of the report):

- ``pixels``: MNIST test set, raw pixels / 255; each digit in turn is normal and
  2 % anomalies are drawn from the other nine digits.
- ``resnet``: ADBench ResNet-18 embeddings: CIFAR-10 and SVHN (classes 0 and 4 /
  0 and 8) at the file's 5 % and with the anomalies subsampled to 2 %, and the 15
  MVTec-AD categories as they come (13-32 %).
- ``ood``: out-of-distribution anomalies: the normals of a CIFAR-10 file with SVHN
  images as the anomalies at 2 % (three draws per file).
- ``tabular``: the 16 ADBench classical sets and 20news (BERT embeddings), each
  column standardised; sets above ``ROW_CAP`` rows are subsampled (stratified).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
LabelArray = npt.NDArray[np.int8]

#: Every random draw of the data derives from this seed.
DATA_SEED = 20240229
#: The anomaly share of the paper's protocol (section 6.1) for the subsampled sets.
LOW_RATIO = 0.02
#: Largest number of rows kept per data set, so that the slowest detectors (OC-SVM,
#: KDE) stay within the run's time budget on two cores.
ROW_CAP = 10_000
#: Independent anomaly draws for each out-of-distribution set.
OOD_DRAWS = 3

GROUPS = ("pixels", "resnet", "ood", "tabular")
GROUP_TITLES = {
    "pixels": "raw pixels (MNIST)",
    "resnet": "ResNet features (CIFAR-10, SVHN, MVTec-AD)",
    "ood": "out-of-distribution (CIFAR-10 vs SVHN)",
    "tabular": "tabular (ADBench classical) and 20news",
}

_REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path | None:
    """The shared data folder, or None when it cannot be found."""
    candidates = []
    if os.environ.get("LTREND_DATA"):
        candidates.append(Path(os.environ["LTREND_DATA"]))
    candidates += [_REPO.parent / "shared" / "data", Path("/work/shared/data")]
    for path in candidates:
        if (path / "README.md").is_file() or (path / "adbench").is_dir():
            return path
    return None


@dataclass(frozen=True)
class DataSet:
    """One benchmark case: a name, its group, and how to build ``(X, y)``."""

    name: str
    group: str
    files: tuple[str, ...]
    build: Callable[[Path], tuple[FloatArray, LabelArray]]

    def available(self, root: Path) -> bool:
        return all((root / f).is_file() for f in self.files)


def _rng(*keys: object) -> np.random.Generator:
    """A generator seeded by the data seed and the case's own keys."""
    text = "/".join(str(k) for k in keys)
    return np.random.default_rng([DATA_SEED, *text.encode()])


def _load(root: Path, file: str) -> tuple[FloatArray, LabelArray]:
    with np.load(root / file) as archive:
        return archive["X"].astype(np.float64), archive["y"].astype(np.int8)


def _with_ratio(
    normal: FloatArray, pool: FloatArray, ratio: float, rng: np.random.Generator
) -> tuple[FloatArray, LabelArray]:
    """All of ``normal`` plus anomalies drawn from ``pool`` to make ``ratio``."""
    n_anomalies = max(1, round(ratio / (1.0 - ratio) * normal.shape[0]))
    picked = rng.choice(pool.shape[0], size=n_anomalies, replace=False)
    x = np.vstack([normal, pool[picked]])
    y = np.concatenate(
        [np.zeros(normal.shape[0], np.int8), np.ones(n_anomalies, np.int8)]
    )
    return x, y


def _cap_rows(
    x: FloatArray, y: LabelArray, rng: np.random.Generator
) -> tuple[FloatArray, LabelArray]:
    """At most ``ROW_CAP`` rows, keeping the anomaly share (stratified)."""
    if x.shape[0] <= ROW_CAP:
        return x, y
    keep: list[npt.NDArray[np.intp]] = []
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        share = round(ROW_CAP * rows.size / y.size)
        keep.append(rng.choice(rows, size=share, replace=False))
    chosen = np.sort(np.concatenate(keep))
    return x[chosen], y[chosen]


def _standardise(x: FloatArray) -> FloatArray:
    spread = x.std(axis=0)
    spread[spread == 0.0] = 1.0
    standardised: FloatArray = (x - x.mean(axis=0)) / spread
    return standardised


def _mnist(digit: int) -> Callable[[Path], tuple[FloatArray, LabelArray]]:
    def build(root: Path) -> tuple[FloatArray, LabelArray]:
        with np.load(root / "mnist" / "mnist_test.npz") as archive:
            pixels = archive["X"].reshape(len(archive["y"]), -1) / 255.0
            digits = archive["y"]
        return _with_ratio(
            pixels[digits == digit],
            pixels[digits != digit],
            LOW_RATIO,
            _rng("mnist", digit),
        )

    return build


def _adbench(
    file: str, ratio: float | None
) -> Callable[[Path], tuple[FloatArray, LabelArray]]:
    def build(root: Path) -> tuple[FloatArray, LabelArray]:
        x, y = _load(root, file)
        if ratio is None:
            return x, y
        return _with_ratio(x[y == 0], x[y == 1], ratio, _rng(file, ratio))

    return build


def _ood(
    normal_file: str, anomaly_file: str, draw: int
) -> Callable[[Path], tuple[FloatArray, LabelArray]]:
    def build(root: Path) -> tuple[FloatArray, LabelArray]:
        x_normal, y_normal = _load(root, normal_file)
        x_pool, _ = _load(root, anomaly_file)
        return _with_ratio(
            x_normal[y_normal == 0], x_pool, LOW_RATIO, _rng("ood", normal_file, draw)
        )

    return build


def _tabular(file: str) -> Callable[[Path], tuple[FloatArray, LabelArray]]:
    def build(root: Path) -> tuple[FloatArray, LabelArray]:
        x, y = _load(root, file)
        x, y = _cap_rows(x, y, _rng("cap", file))
        return _standardise(x), y

    return build


_RESNET = "adbench/CV_by_ResNet18"
_MVTEC = [
    "bottle",
    "cable",
    "capsule",
    "carpet",
    "grid",
    "hazelnut",
    "leather",
    "metal_nut",
    "pill",
    "screw",
    "tile",
    "toothbrush",
    "transistor",
    "wood",
    "zipper",
]
_TABULAR = [
    "2_annthyroid",
    "6_cardio",
    "18_Ionosphere",
    "23_mammography",
    "24_mnist",
    "25_musk",
    "26_optdigits",
    "28_pendigits",
    "29_Pima",
    "30_satellite",
    "31_satimage-2",
    "32_shuttle",
    "38_thyroid",
    "40_vowels",
    "42_WBC",
    "44_Wilt",
]


def datasets() -> list[DataSet]:
    """Every benchmark case, whether or not its file is present."""
    cases: list[DataSet] = []
    for digit in range(10):
        cases.append(
            DataSet(
                f"mnist-{digit}", "pixels", ("mnist/mnist_test.npz",), _mnist(digit)
            )
        )
    for stem in ("CIFAR10_0", "CIFAR10_4", "SVHN_0", "SVHN_8"):
        file = f"{_RESNET}/{stem}.npz"
        cases.append(DataSet(f"{stem}-5%", "resnet", (file,), _adbench(file, None)))
        cases.append(
            DataSet(f"{stem}-2%", "resnet", (file,), _adbench(file, LOW_RATIO))
        )
    for category in _MVTEC:
        file = f"{_RESNET}/MVTec-AD_{category}.npz"
        cases.append(
            DataSet(f"mvtec-{category}", "resnet", (file,), _adbench(file, None))
        )
    for stem in ("CIFAR10_0", "CIFAR10_4"):
        normal_file = f"{_RESNET}/{stem}.npz"
        anomaly_file = f"{_RESNET}/SVHN_0.npz"
        for draw in range(OOD_DRAWS):
            cases.append(
                DataSet(
                    f"{stem}-vs-SVHN-{draw}",
                    "ood",
                    (normal_file, anomaly_file),
                    _ood(normal_file, anomaly_file, draw),
                )
            )
    for stem in _TABULAR:
        file = f"adbench/Classical/{stem}.npz"
        cases.append(DataSet(stem, "tabular", (file,), _tabular(file)))
    text = "adbench/NLP_by_BERT/20news_3.npz"
    cases.append(DataSet("20news_3", "tabular", (text,), _tabular(text)))
    return cases


def normal_only(case: DataSet) -> Callable[[Path], tuple[FloatArray, LabelArray]]:
    """The no-anomaly version of ``case`` (paper figure 5): its normal rows only."""

    def build(root: Path) -> tuple[FloatArray, LabelArray]:
        x, y = case.build(root)
        normal = x[y == 0]
        return normal, np.zeros(normal.shape[0], np.int8)

    return build


#: The cases whose normal rows form the no-anomaly benchmark.
NO_ANOMALY_CASES = (
    "mnist-0",
    "mnist-3",
    "mnist-7",
    "CIFAR10_0-5%",
    "SVHN_0-5%",
    "mvtec-hazelnut",
    "6_cardio",
    "38_thyroid",
)
