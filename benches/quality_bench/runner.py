"""Scores and thresholder results, computed once and cached in ``benches/.cache``.

Cache keys hold the data set, the detector, the seeds (through the source hash of
the modules that define them) and the code version, so editing a detector or a
thresholder recomputes exactly what it touches, and an unchanged rerun only reads.

PyThresh thresholders run in forked worker processes, at most ``jobs`` at once,
each killed after ``timeout`` seconds. A thresholder that exceeded the limit on a
set of ``n`` scores is not started again on ``n`` or more scores in the same run
and is recorded as timed out there too (sets are processed smallest first).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import ltrend
from ltrend import metrics

from . import data, detectors, thresholders

FloatArray = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

CACHE = Path(__file__).resolve().parents[1] / ".cache"
_HERE = Path(__file__).resolve().parent


def _digest(paths: Iterable[Path], *extra: str) -> str:
    """A short hash of the files and strings; Python files are hashed by their
    syntax tree, so reformatting them keeps the cache."""
    h = hashlib.sha1()
    for path in paths:
        if path.suffix == ".py":
            h.update(ast.dump(ast.parse(path.read_text())).encode())
        else:
            h.update(path.read_bytes())
    for text in extra:
        h.update(text.encode())
    return h.hexdigest()[:12]


def score_version() -> str:
    """Version of the scores: the data and detector code (seeds live there)."""
    import pyod
    import sklearn

    return _digest(
        [_HERE / "data.py", _HERE / "detectors.py"],
        sklearn.__version__,
        pyod.__version__,
    )


def ltrend_version() -> str:
    """Version of our thresholders: their code and the built ltrend package."""
    package = Path(ltrend.__file__).parent
    files = sorted(package.glob("*.py")) + sorted(package.glob("_core*"))
    return _digest([_HERE / "thresholders.py", *files], PRESENTATION)


#: Bump when the way scores reach the thresholders changes (it keys their cache).
PRESENTATION = "shuffled-v1"


def pythresh_version(timeout: float) -> str:
    """Version of the PyThresh records: the package, the time limit, the protocol."""
    import pythresh

    version = getattr(pythresh, "__version__", "unknown")
    return _digest([], str(version), repr(timeout), PRESENTATION)


@dataclass
class ScoreSet:
    case: str
    group: str
    detector: str
    scores: FloatArray
    y: npt.NDArray[np.int8]
    builtin: Mask | None
    seconds: float
    normal_only: bool

    @property
    def key(self) -> str:
        prefix = "normal-only__" if self.normal_only else ""
        return f"{prefix}{self.case}__{self.detector}"


def _score_file(case: str, detector: str, normal_only: bool, version: str) -> Path:
    prefix = "normal-only__" if normal_only else ""
    return CACHE / "scores" / f"{prefix}{case}__{detector}__{version}.npz"


def _compute_case(name: str, root: Path, normal_only: bool, version: str) -> list[str]:
    """Score one data set with every detector whose scores are not cached."""
    case = next(c for c in data.datasets() if c.name == name)
    missing = [
        name
        for name in detectors.DETECTORS
        if not _score_file(case.name, name, normal_only, version).is_file()
    ]
    if not missing:
        return []
    build = data.normal_only(case) if normal_only else case.build
    x, y = build(root)
    done = []
    for detector in missing:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored = detectors.DETECTORS[detector](x)
        seconds = time.perf_counter() - start
        path = _score_file(case.name, detector, normal_only, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        builtin = scored.builtin if scored.builtin is not None else np.zeros(0, bool)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            scores=scored.scores.astype(np.float64),
            y=y,
            builtin=builtin,
            has_builtin=scored.builtin is not None,
            seconds=seconds,
        )
        tmp.replace(path)
        done.append(detector)
    return done


def score_sets(
    cases: list[data.DataSet],
    root: Path,
    *,
    jobs: int,
    normal_only: bool = False,
    log: Callable[[str], None] = print,
) -> list[ScoreSet]:
    """Every (case, detector) score set, computing what the cache lacks."""
    version = score_version()
    todo = [
        c
        for c in cases
        if any(
            not _score_file(c.name, d, normal_only, version).is_file()
            for d in detectors.DETECTORS
        )
    ]
    if todo:
        log(f"scoring {len(todo)} data set(s) with {jobs} worker(s)")
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [
                (c, pool.submit(_compute_case, c.name, root, normal_only, version))
                for c in todo
            ]
            for case, future in futures:
                future.result()
                log(f"  scored {case.name}")
    sets = []
    for case in cases:
        order = presentation_order(case.name)
        for name in detectors.DETECTORS:
            with np.load(_score_file(case.name, name, normal_only, version)) as f:
                shuffle = order(f["scores"].size)
                builtin = f["builtin"][shuffle] if bool(f["has_builtin"]) else None
                sets.append(
                    ScoreSet(
                        case=case.name,
                        group=case.group,
                        detector=name,
                        scores=f["scores"][shuffle],
                        y=f["y"][shuffle],
                        builtin=builtin,
                        seconds=float(f["seconds"]),
                        normal_only=normal_only,
                    )
                )
    return sets


def presentation_order(case: str) -> Callable[[int], npt.NDArray[np.intp]]:
    """The seeded order in which a case's scores reach every thresholder.

    The data sets built here list their normals first and their anomalies last
    (and some ADBench files are sorted by label), and some thresholders read the
    input order (PyThresh FILTER smooths the scores in that order, COMB uses it);
    a fixed random order per data set takes that information away from them all.
    """

    def order(n: int) -> npt.NDArray[np.intp]:
        rng = np.random.default_rng([data.DATA_SEED, n, *case.encode()])
        return rng.permutation(n)

    return order


# --------------------------------------------------------------------------- results


def judge(
    score_set: ScoreSet, mask: Mask, seconds: float, version: str
) -> dict[str, Any]:
    """The record of one thresholder on one score set."""
    record: dict[str, Any] = {
        "status": "ok",
        "version": version,
        "seconds": seconds,
        "flagged": float(np.mean(mask)),
    }
    if not score_set.normal_only:
        y, predicted = score_set.y, mask
        best, _ = metrics.best_f1(y, score_set.scores)
        f1 = metrics.f1(y, predicted)
        record.update(
            precision=metrics.precision(y, predicted),
            recall=metrics.recall(y, predicted),
            f1=f1,
            mcc=metrics.matthews(y, predicted),
            f1_ratio=f1 / best if best > 0 else float("nan"),
        )
    return record


def _failure(status: str, version: str, message: str, seconds: float) -> dict[str, Any]:
    return {
        "status": status,
        "version": version,
        "message": message,
        "seconds": seconds,
    }


def _results_file(score_set: ScoreSet) -> Path:
    return CACHE / "results" / f"{score_set.key}.json"


def _load_results(score_set: ScoreSet) -> dict[str, dict[str, Any]]:
    path = _results_file(score_set)
    if not path.is_file():
        return {}
    loaded: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return loaded


def _save_results(score_set: ScoreSet, results: dict[str, dict[str, Any]]) -> None:
    path = _results_file(score_set)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, sort_keys=True))
    tmp.replace(path)


def _worker(
    apply: Callable[[FloatArray], Mask],
    scores: FloatArray,
    channel: multiprocessing.connection.Connection,
) -> None:
    """Run one thresholder in a forked process and send back its mask or error."""
    sink = io.StringIO()
    with (
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            start = time.perf_counter()
            mask = apply(scores)
            seconds = time.perf_counter() - start
            channel.send(("ok", np.packbits(mask), seconds))
        # Any failure of the thresholder is reported as its result, never raised.
        except BaseException as err:
            channel.send(("error", f"{type(err).__name__}: {err}"[:200], 0.0))
    channel.close()
    os._exit(0)


@dataclass
class _Task:
    score_set: ScoreSet
    thresholder: thresholders.Thresholder
    version: str


def _run_limited(
    tasks: list[_Task],
    *,
    jobs: int,
    timeout: float,
    done: Callable[[_Task, dict[str, Any]], None],
) -> None:
    """Run tasks in forked workers, at most ``jobs`` at once, killing slow ones."""
    context = multiprocessing.get_context("fork")
    pending = deque(sorted(tasks, key=lambda t: t.score_set.scores.size))
    timed_out_at: dict[str, int] = {}
    running: dict[Any, tuple[Any, _Task, float]] = {}
    while pending or running:
        while pending and len(running) < jobs:
            task = pending.popleft()
            n = task.score_set.scores.size
            name = task.thresholder.name
            if name in timed_out_at and n >= timed_out_at[name]:
                done(
                    task,
                    _failure(
                        "timeout",
                        task.version,
                        f"not run: exceeded {timeout:g} s on "
                        f"{timed_out_at[name]} scores",
                        0.0,
                    ),
                )
                continue
            receiver, sender = context.Pipe(duplex=False)
            assert task.thresholder.apply is not None
            process = context.Process(
                target=_worker,
                args=(task.thresholder.apply, task.score_set.scores, sender),
            )
            process.start()
            sender.close()
            running[receiver] = (process, task, time.monotonic())
        ready = multiprocessing.connection.wait(list(running), timeout=0.1)
        for receiver in ready:
            process, task, _ = running.pop(receiver)
            try:
                message = receiver.recv()
            except EOFError:
                message = ("error", "the worker process died", 0.0)
            receiver.close()
            process.join()
            status, payload, seconds = message
            if status == "ok":
                size = task.score_set.scores.size
                mask = np.unpackbits(payload, count=size).astype(bool)
                done(task, judge(task.score_set, mask, seconds, task.version))
            else:
                done(task, _failure("error", task.version, payload, seconds))
        now = time.monotonic()
        for receiver, (process, task, started) in list(running.items()):
            if now - started > timeout:
                process.kill()
                process.join()
                receiver.close()
                del running[receiver]
                n = task.score_set.scores.size
                name = task.thresholder.name
                timed_out_at[name] = min(timed_out_at.get(name, n), n)
                done(
                    task,
                    _failure(
                        "timeout", task.version, f"exceeded {timeout:g} s", timeout
                    ),
                )


def _unavailable(module: str) -> str | None:
    """Why a PyThresh thresholder cannot be imported here, or None if it can."""
    try:
        __import__(f"pythresh.thresholds.{module}")
    except Exception as err:
        return f"{type(err).__name__}: {err}"[:200]
    return None


def evaluate(
    sets: list[ScoreSet],
    chosen: list[thresholders.Thresholder],
    *,
    jobs: int,
    timeout: float,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``results[set key][thresholder name]``, computing what is missing."""
    ours = ltrend_version()
    theirs = pythresh_version(timeout)
    results = {s.key: _load_results(s) for s in sets}
    dirty: set[str] = set()
    limited: list[_Task] = []
    missing_modules: dict[str, str | None] = {}
    for s in sets:
        stored = results[s.key]
        for t in chosen:
            version = theirs if t.family == "pythresh" else ours
            record = stored.get(t.name)
            if record is not None and record.get("version") == version:
                continue
            dirty.add(s.key)
            if t.family == "builtin":
                if s.builtin is None:
                    stored[t.name] = _failure(
                        "n/a", version, "no built-in decision", 0.0
                    )
                else:
                    # The decision comes with the detector's fit: no time of its own.
                    stored[t.name] = judge(s, s.builtin, 0.0, version)
            elif t.family == "pythresh":
                module = t.name.split()[-1].lower()
                if module not in missing_modules:
                    missing_modules[module] = _unavailable(module)
                reason = missing_modules[module]
                if reason is not None:
                    stored[t.name] = _failure("unavailable", version, reason, 0.0)
                else:
                    limited.append(_Task(s, t, version))
            else:
                assert t.apply is not None
                start = time.perf_counter()
                try:
                    mask = t.apply(s.scores)
                except Exception as err:
                    stored[t.name] = _failure("error", version, repr(err)[:200], 0.0)
                else:
                    seconds = time.perf_counter() - start
                    stored[t.name] = judge(s, mask, seconds, version)
    by_key = {s.key: s for s in sets}
    if limited:
        log(
            f"running {len(limited)} PyThresh call(s), {jobs} at a time, "
            f"{timeout:g} s limit"
        )
        counter = {"n": 0, "last": time.monotonic()}

        def done(task: _Task, record: dict[str, Any]) -> None:
            results[task.score_set.key][task.thresholder.name] = record
            counter["n"] += 1
            if time.monotonic() - counter["last"] > 60:
                counter["last"] = time.monotonic()
                log(f"  {counter['n']}/{len(limited)} PyThresh calls done")
                for key in dirty:
                    _save_results(by_key[key], results[key])

        _run_limited(limited, jobs=jobs, timeout=timeout, done=done)
    for key in dirty:
        _save_results(by_key[key], results[key])
    return results


def versions() -> dict[str, str]:
    """Versions of everything that shaped the numbers."""
    import pyod
    import pythresh
    import scipy
    import sklearn

    return {
        "python": sys.version.split()[0],
        "ltrend": ltrend.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "pyod": pyod.__version__,
        "pythresh": str(getattr(pythresh, "__version__", "unknown")),
    }
