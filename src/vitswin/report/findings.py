"""Findings: short sentences generated from the measured numbers, never written by hand.

Every comparison of two models on the same images carries its test: McNemar's for accuracy, the
Wilcoxon signed-rank test for per-image heatmap measurements. A difference that is not significant
at the 5 % level is reported as such.
"""

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy.stats import wilcoxon

from vitswin.report.stats import PairTest, holm, mcnemar_pairs, paired_bootstrap_interval

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class ModelFacts:
    """What the findings know about one model: per-image correctness on the shared test set, and its costs."""

    name: str
    correct: np.ndarray  # (N,) bool, in test-set order
    seconds_per_epoch: float
    train_time_s: float
    parameters: int
    flops: float
    ece: float
    attention: dict[str, np.ndarray] = field(default_factory=dict)  # per-image heatmap measurements, same images

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.correct))


TEST_SELECTED = (
    "The test set also selected each model's checkpoint (data.val_split: test, the published protocol), so every "
    "test accuracy below is optimistic; a held-out validation split (e.g. data.val_split: 0.1) gives unbiased ones."
)


def findings(models: list[ModelFacts], method: str = "gradcam", seed: int = 0, test_selected: bool = False) -> list[str]:
    """Sentences comparing every pair of models: accuracy, cost, calibration and (where measured) attention; first,
    when `test_selected`, that the test accuracies are optimistic because the test set chose the checkpoints."""
    sentences = [TEST_SELECTED] if test_selected else []
    tests = {(test.a, test.b): test for test in mcnemar_pairs({model.name: model.correct for model in models})}
    attention_p = _wilcoxon_pairs(models)
    for a, b in combinations(models, 2):
        sentences.append(_accuracy(a, b, tests[(a.name, b.name)], seed))
        sentences += _cost(a, b)
        sentences.append(_calibration(a, b))
        if a.attention and b.attention:
            sentences += _attention(a, b, method, attention_p)
    return sentences


def _accuracy(a: ModelFacts, b: ModelFacts, pair: PairTest, seed: int) -> str:
    test = pair.table
    # With more than two models, significance is judged on the Holm-adjusted p-value over every pair.
    p_value = f"p = {test.p_value:.2g}" + (f", Holm-adjusted {pair.p_adjusted:.2g}" if pair.pairs > 1 else "")
    if a.accuracy == b.accuracy:
        return (
            f"{a.name} and {b.name} are equally accurate ({100 * a.accuracy:.2f} % on {len(a.correct)} test images; "
            f"McNemar {p_value})."
        )
    high, low = (a, b) if a.accuracy > b.accuracy else (b, a)
    low_ci, high_ci = paired_bootstrap_interval(high.correct, low.correct, seed)
    numbers = (
        f"{100 * high.accuracy:.2f} % against {100 * low.accuracy:.2f} % on {len(a.correct)} test images, "
        f"a difference of {100 * (high.accuracy - low.accuracy):.2f} points with 95 % CI {100 * low_ci:.2f} to "
        f"{100 * high_ci:.2f}"
    )
    if pair.p_adjusted < SIGNIFICANCE:
        return (
            f"{high.name} is more accurate than {low.name}: {numbers}; McNemar's test finds the difference "
            f"significant ({p_value})."
        )
    return (
        f"{high.name} scores higher than {low.name} ({numbers}), but the difference is not significant "
        f"(McNemar {p_value}): on these test images the two cannot be told apart."
    )


def _cost(a: ModelFacts, b: ModelFacts) -> list[str]:
    fast, slow = sorted((a, b), key=lambda m: m.seconds_per_epoch)
    cheap, dear = sorted((a, b), key=lambda m: _seconds_per_point(m))
    small, large = sorted((a, b), key=lambda m: m.parameters)
    return [
        f"{fast.name} trains faster per epoch: {fast.seconds_per_epoch:.1f} s against {slow.seconds_per_epoch:.1f} s "
        f"for {slow.name} ({slow.seconds_per_epoch / fast.seconds_per_epoch:.2f}x).",
        f"Per point of test accuracy, {cheap.name} needed {_seconds_per_point(cheap):.2f} s of training against "
        f"{_seconds_per_point(dear):.2f} s for {dear.name}.",
        f"{small.name} has {small.parameters / 1e6:.2f} M parameters and {small.flops / 1e9:.3f} GFLOPs per image; "
        f"{large.name} has {large.parameters / small.parameters:.2f}x the parameters ({large.parameters / 1e6:.2f} M) "
        f"and {large.flops / small.flops:.2f}x the FLOPs ({large.flops / 1e9:.3f} GFLOPs).",
    ]


def _seconds_per_point(model: ModelFacts) -> float:
    return model.train_time_s / max(100 * model.accuracy, 1e-9)


def _calibration(a: ModelFacts, b: ModelFacts) -> str:
    better, worse = sorted((a, b), key=lambda m: m.ece)
    if better.ece == worse.ece:
        return f"{a.name} and {b.name} are equally well calibrated (expected calibration error {a.ece:.3f})."
    return (
        f"{better.name} is better calibrated: expected calibration error {better.ece:.3f} against "
        f"{worse.ece:.3f} for {worse.name}."
    )


ATTENTION_MEASURES = ("top10_share", "pointing_hit", "deletion_auc")


def _wilcoxon_p(a: ModelFacts, b: ModelFacts, key: str) -> float:
    differences = np.asarray(a.attention[key]) - np.asarray(b.attention[key])
    return float(wilcoxon(differences).pvalue) if np.any(differences != 0) else 1.0


def _wilcoxon_pairs(models: list[ModelFacts]) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(raw, Holm-adjusted) Wilcoxon p-value per (measure, model, model), adjusted over every pair of models
    measured on that measure."""
    tests = {}
    for key in ATTENTION_MEASURES:
        pairs = [(a, b) for a, b in combinations(models, 2) if key in a.attention and key in b.attention]
        raw = [_wilcoxon_p(a, b, key) for a, b in pairs]
        tests |= {(key, a.name, b.name): (p, q) for (a, b), p, q in zip(pairs, raw, holm(raw), strict=True)}
    return tests


def _attention(a: ModelFacts, b: ModelFacts, method: str, tests: dict[tuple[str, str, str], tuple[float, float]]) -> list[str]:
    sentences = []
    pairs = len({(first, second) for _, first, second in tests})

    def paired(key: str, higher_wins: bool) -> _Paired | None:
        return _paired(a, b, key, higher_wins, *tests[(key, a.name, b.name)], holm_adjusted=pairs > 1)

    if c := paired("top10_share", higher_wins=True):
        sentences.append(
            f"{c.winner}'s {method} maps are more concentrated: {100 * c.win:.1f} % of the mass in the top "
            f"10 % of pixels against {100 * c.lose:.1f} % for {c.loser} ({c.win / c.lose:.2f}x){c.verdict}."
        )
    if "pointing_hit" in a.attention and "pointing_hit" in b.attention:
        chance = float(np.mean(a.attention["pointing_random"]))
        if c := paired("pointing_hit", higher_wins=True):
            sentences.append(
                f"{c.winner}'s {method} maps point at the object more often: {100 * c.win:.0f} % of images "
                f"against {100 * c.lose:.0f} % for {c.loser}, where a random map scores {100 * chance:.0f} %"
                f"{c.verdict}."
            )
    if c := paired("deletion_auc", higher_wins=False):
        sentences.append(
            f"{c.winner}'s {method} maps are more faithful by deletion: area under the deletion curve "
            f"{c.win:.3f} against {c.lose:.3f} for {c.loser}, lower being better{c.verdict}."
        )
    return sentences


@dataclass(frozen=True)
class _Paired:
    """Which of two models does better on a per-image measurement, by how much, and the test's verdict."""

    winner: str
    loser: str
    win: float
    lose: float
    verdict: str  # to end the sentence with


def _paired(
    a: ModelFacts, b: ModelFacts, key: str, higher_wins: bool, p_value: float, p_adjusted: float, holm_adjusted: bool
) -> _Paired | None:
    """Compare the models' means of a per-image measurement by its Wilcoxon signed-rank test (`p_adjusted` judges
    significance: Holm-adjusted over every pair when there are more than two models); None if level."""
    values_a, values_b = np.asarray(a.attention[key]), np.asarray(b.attention[key])
    mean_a, mean_b = float(values_a.mean()), float(values_b.mean())
    if mean_a == mean_b:
        return None
    p_text = f"Wilcoxon p = {p_value:.2g}" + (f", Holm-adjusted {p_adjusted:.2g}" if holm_adjusted else "")
    verdict = (
        f", a significant difference ({p_text})"
        if p_adjusted < SIGNIFICANCE
        else f"; the difference is not significant ({p_text}, {len(values_a)} images)"
    )
    if (mean_a > mean_b) == higher_wins:
        return _Paired(a.name, b.name, mean_a, mean_b, verdict)
    return _Paired(b.name, a.name, mean_b, mean_a, verdict)
