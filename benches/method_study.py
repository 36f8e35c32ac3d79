"""Which L-trend method to ship: ``python benches/method_study.py``.

Scores every candidate of ``quality_bench.candidates`` on the benchmark's cached
score sets (run ``python benches/quality.py`` first) and writes
``docs/method-study.md``: mean F1_ratio per group, and a leave-one-group-out
selection (for each group, the candidate that is best on the other three groups,
judged on the held-out one), so that no choice is tuned to the data it is
judged on; then, for the CIFAR-10 score sets that share their normal rows, the
cuts their labels want against the ones ``tail_aware`` and PyThresh's DSN pick.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_bench import candidates, data, runner, thresholders

from ltrend import metrics

_DOCS = Path(__file__).resolve().parents[1] / "docs" / "method-study.md"


#: Candidates that add a constant fitted to this benchmark to a shipped method:
#: name prefix -> (the shipped method, what the constant is).
_TUNED = {
    "knee, slope": ("knee", "a slope factor"),
    "log_knee, unit": (
        "log_knee",
        "a multiple of the interquartile range as the log unit",
    ),
    "tail_aware, depth": (
        "tail_aware",
        "a multiple of the exponential reference depth",
    ),
}


def _decision(
    folds: dict[str, str],
    groups: list[str],
    names: list[str],
    mean: Callable[[str, list[str]], float],
) -> list[str]:
    """What ``ltrend.fit`` ships, and why, from the study's own numbers."""
    counts = Counter(folds.values())
    most = max(counts.values())
    tied = [name for name, count in counts.items() if count == most]
    lines = ["## Decision", ""]
    if len(tied) > 1:
        overall = ", ".join(f"`{n}` {mean(n, groups):.3f}" for n in tied)
        spread = max(mean(n, groups) for n in tied) - min(mean(n, groups) for n in tied)
        lines += [
            f"No candidate is picked by more than {most} of the {len(folds)} folds.",
            f"Over all score sets the picks score {overall}",
            f"(a spread of {spread:.3f}).",
            "",
        ]
        return lines + _shipped(folds, groups, names, mean)
    pick = tied[0]
    family = next((v for k, v in _TUNED.items() if pick.startswith(k)), None)
    if family is not None:
        plain, constant = family
        held = [g for g, p in folds.items() if p == pick]
        gaps = ", ".join(f"{g} {mean(pick, [g]) - mean(plain, [g]):+.3f}" for g in held)
        lines += [
            f"The protocol's most frequent pick is `{pick}`: `{plain}` with",
            f"{constant} chosen on this benchmark. On the groups held out when it",
            f"was picked, it differs from the plain `{plain}` by {gaps};",
            "over all score sets by "
            f"{mean(pick, groups) - mean(plain, groups):+.3f}. That is all the",
            "constant buys out of sample, so `ltrend.fit` ships the plain",
            f'`method="{plain}"`, which has no constant fitted to this benchmark.',
            "",
        ]
    else:
        lines += [f"The protocol's most frequent pick is `{pick}`.", ""]
    return lines + _shipped(folds, groups, names, mean)


def _shipped(
    folds: dict[str, str],
    groups: list[str],
    names: list[str],
    mean: Callable[[str, list[str]], float],
) -> list[str]:
    """Why ``method="tail_aware"`` ships, and what no candidate achieves."""
    excess = "excess over a gaussian base, lowest 90%"
    below = "tail_aware, then the estimated-F1 cut below it if light"
    skewed = "tail_aware, then the estimated-F1 cut on a skew-normal base if light"
    blended = "tail_aware and that estimated-F1 cut in consensus if light"

    def best_on(group: str) -> str:
        return max(names, key=lambda n: mean(n, [group]))

    ahead = [g for g in groups if mean("two_segment", [g]) > mean("paper", [g])]
    over_log = [g for g in groups if mean("tail_aware", [g]) > mean("log_knee", [g])]
    family = [p for p in folds.values() if p.startswith("tail_aware")]

    def gain(name: str, keep: list[str]) -> float:
        return mean(name, keep) - mean("tail_aware", keep)

    return [
        f"{len(family)} of the {len(folds)} folds pick a `tail_aware` variant. The",
        "depth multiples are constants fitted here, and the estimated-F1 variant",
        "changes `tail_aware` only on light tails: "
        f"{gain(below, groups):+.3f} over all score sets,",
        f"{gain(below, ['ood']):+.3f} on ood and {gain(below, ['resnet']):+.3f} "
        "on resnet. Neither is worth a",
        'new method in the core, so the plain `method="tail_aware"` ships: the',
        "knee of the signed-log curve where that curve bends at least as much as",
        "an exponential sample's of the same size,",
        "else the consensus of the raw curve's `knee` and `two_segment` cuts. Its",
        "one modelling choice, the exponential as the boundary between light and",
        "heavy tails, was made on this benchmark after the Gaussian (its own row",
        f"above, {mean('tail_aware, Gaussian reference', groups):.3f} over all "
        "score sets); nothing else in it is",
        f"tuned. Over all score sets it scores {mean('tail_aware', groups):.3f}, "
        f"against {mean('log_knee', groups):.3f} for",
        f"`log_knee` and {mean('knee', groups):.3f} for `knee`, and it is ahead of "
        f"`log_knee` in {len(over_log)} of {len(groups)}",
        f"groups ({', '.join(over_log)}).",
        "",
        '`method="log_knee"` alone is the best shipped method on the ResNet',
        f"group ({mean('log_knee', ['resnet']):.3f}). "
        '`method="two_segment"`, the exact L-shaped fit, is ahead of the',
        f"paper's method in {len(ahead)} of {len(groups)} groups "
        f"({', '.join(ahead)}). No candidate is",
        "first in every group: the tight cuts that suit the raw-pixel group (its",
        "best cuts flag about 2 %; the best candidate there is",
        f"`{best_on('pixels')}`) lose the ResNet",
        "and tabular groups, which want 10 to 30 %, and no label-free reading of the",
        "curve tried here (the log knee's depth against a reference, a second knee",
        "above the first or within the branch, a cut at the largest F1 estimated",
        "against the base's extension) sends the raw-pixel sets to a tight cut",
        "without sending ResNet sets there too.",
        "",
        "The estimated-F1 cut moves that trade-off rather than escaping it: with a",
        f"Gaussian base it is {mean(excess, ['ood']):.3f} on ood and "
        f"{mean(excess, ['tabular']):.3f} on tabular,",
        f"but {mean(excess, ['resnet']):.3f} on resnet "
        f"({mean(excess, groups):.3f} over all score sets); fitted below",
        "`tail_aware`'s own cut, so that the base follows the contamination, it",
        "trades between the same groups against `tail_aware` (the deltas above).",
        "A skew-normal base, its shape read from the base itself, moves further",
        f"along it ({mean(skewed, ['pixels']):.3f} on pixels, "
        f"{mean(skewed, ['resnet']):.3f} on resnet), and the",
        "consensus of that cut with `tail_aware` lands between the two "
        f"({mean(blended, ['ood']):.3f} on ood,",
        f"{mean(blended, ['resnet']):.3f} on resnet).",
        "The other",
        "candidates stay in `benches/quality_bench/candidates.py` as the record of",
        "what was tried.",
    ]


#: Score sets built on the same CIFAR-10 normal rows, by how their anomalies
#: were drawn: the kind's label in the report -> its test on the case name.
_SAME_NORMALS = {
    "the file's own anomalies at 5 % (resnet)": lambda case: case.endswith("-5%"),
    "the file's own anomalies at 2 % (resnet)": lambda case: case.endswith("-2%"),
    "SVHN images at 2 % (ood)": lambda case: "-vs-SVHN-" in case,
}


def _same_normals(sets: list[runner.ScoreSet]) -> list[str]:
    """Why the ood and ResNet groups pull apart: the CIFAR-10 score sets look
    alike to a label-free rule whatever their anomalies, yet want different cuts.
    PyThresh's DSN, first on ood, is run on the same sets for comparison."""
    from scipy import stats

    rules = {
        "tail_aware": candidates.fit_method("tail_aware"),
        "PyThresh DSN": thresholders.pythresh_method("dsn"),
    }
    lines = [
        "## Same normals, different best cuts",
        "",
        "The CIFAR-10 files give score sets with the same normal rows and three",
        "kinds of anomalies. Medians over each kind's score sets (every detector) of",
        "the skewness and of the share flagged; mean F1_ratio in parentheses:",
        "",
        "| anomalies | score sets | skewness | best cut flags | "
        + " | ".join(f"{name} flags" for name in rules)
        + " |",
        "| :-- | --: | --: | --: | " + " | ".join("--:" for _ in rules) + " |",
    ]
    best_shares = []
    for kind, belongs in _SAME_NORMALS.items():
        chosen = [s for s in sets if s.case.startswith("CIFAR10_") and belongs(s.case)]
        if not chosen:
            continue
        skew = np.median([stats.skew(s.scores) for s in chosen])
        best = [metrics.best_f1(s.y, s.scores) for s in chosen]
        best_share = np.median(
            [np.mean(s.scores >= cut) for s, (_, cut) in zip(chosen, best, strict=True)]
        )
        best_shares.append(f"{best_share:.1%}")
        cells = []
        for apply in rules.values():
            masks = [apply(s.scores) for s in chosen]
            ratio = np.mean(
                [
                    metrics.f1(s.y, m) / f1
                    for s, m, (f1, _) in zip(chosen, masks, best, strict=True)
                ]
            )
            cells.append(f"{np.median([m.mean() for m in masks]):.1%} ({ratio:.3f})")
        lines.append(
            f"| {kind} | {len(chosen)} | {skew:.2f} | {best_share:.1%} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "By their skewness the curves look alike, and both rules, which read only",
        "the scores, cut the three kinds alike, but the best cuts differ",
        f"({', '.join(best_shares)}). A rule whose one share sits nearer the 2 %",
        "kinds' best cuts wins those and the ood group (three anomaly draws per",
        "normal file) and gives up the 5 % kind, which is the trade the rows of",
        "the first table trace.",
    ]
    return lines


def main() -> int:
    root = data.data_dir()
    if root is None:
        print("no shared data folder found (set LTREND_DATA)", file=sys.stderr)
        return 0
    cases = [c for c in data.datasets() if c.available(root)]
    sets = runner.score_sets(cases, root, jobs=2)
    found = candidates.candidates()
    started = time.perf_counter()
    ratios: dict[str, dict[str, list[float]]] = {
        name: {g: [] for g in data.GROUPS} for name in found
    }
    for s in sets:
        best, _ = metrics.best_f1(s.y, s.scores)
        for name, apply in found.items():
            ratios[name][s.group].append(metrics.f1(s.y, apply(s.scores)) / best)
    groups = [g for g in data.GROUPS if any(ratios[n][g] for n in found)]

    def mean(name: str, keep: list[str]) -> float:
        return float(np.mean([r for g in keep for r in ratios[name][g]]))

    lines = [
        "# Choosing the L-trend method: a leave-one-group-out study",
        "",
        "Generated by `python benches/method_study.py` from the cached scores of",
        "`python benches/quality.py` (the same score sets as `docs/benchmarks.md`).",
        "Every candidate reads only the sorted scores; none sees a label. Cell:",
        "mean F1_ratio over the group's score sets.",
        "",
        "| candidate | " + " | ".join(groups) + " | all |",
        "| :-- | " + " | ".join("--:" for _ in groups) + " | --: |",
    ]
    for name in found:
        cells = [f"{np.mean(ratios[name][g]):.3f}" for g in groups]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {mean(name, groups):.3f} |"
        )
    lines += [
        "",
        "## Leave one group out",
        "",
        "For each group, the candidate with the best mean F1_ratio on the other three",
        "groups is picked, then judged on the held-out group.",
        "",
        "| held out | picked on the other groups | its F1_ratio there | "
        "best candidate in hindsight |",
        "| :-- | :-- | --: | :-- |",
    ]
    picks: Counter[str] = Counter()
    folds: dict[str, str] = {}
    for held in groups:
        others = [g for g in groups if g != held]
        pick = max(found, key=lambda n: mean(n, others))
        hindsight = max(found, key=lambda n: mean(n, [held]))
        picks[pick] += 1
        folds[held] = pick
        lines.append(
            f"| {held} | {pick} | {mean(pick, [held]):.3f} | "
            f"{hindsight} ({mean(hindsight, [held]):.3f}) |"
        )
    lines += [
        "",
        "Picks: "
        + ", ".join(f"{n} ({c} of {len(groups)})" for n, c in picks.most_common()),
        "",
        *_decision(folds, groups, list(found), mean),
        "",
        *_same_normals(sets),
        "",
        f"({len(sets)} score sets, {len(found)} candidates, "
        f"{time.perf_counter() - started:.0f} s)",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    _DOCS.parent.mkdir(parents=True, exist_ok=True)
    _DOCS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
