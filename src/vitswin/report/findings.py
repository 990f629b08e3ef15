"""Findings: short sentences generated from the measured numbers, never written by hand.

A statement that one model beats another is made at the level the numbers support. With three or more training
seeds, a difference is stated for the architectures when it is larger than its uncertainty: the paired t-test over
seeds (Holm-adjusted over every pair of models) below 5 % and a 95 % interval (seeds and test images resampled) that
excludes zero. With fewer seeds, the findings compare the trained models of each seed (McNemar's test for accuracy,
Wilcoxon's signed-rank test for per-image heatmap measurements) and say that another seed can change the verdict.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import combinations

import numpy as np
from scipy.stats import wilcoxon

from vitswin.report.stats import (
    ARCHITECTURE_SEEDS,
    SIGNIFICANCE,
    PairTest,
    SeedComparison,
    compare_across_seeds,
    holm,
    mcnemar_pairs,
    paired_bootstrap_interval,
)


@dataclass(frozen=True)
class ModelFacts:
    """What the findings know about one model, over its seeds: per-image correctness on the shared test set, its
    costs, its calibration and (where every seed was explained) per-image heatmap measurements."""

    name: str
    seeds: list[int]
    correct: np.ndarray  # (seeds, N) bool, in test-set order
    epoch_times: np.ndarray  # (seeds,) the typical epoch's training time of each run
    parameters: int
    flops: float
    ece: np.ndarray  # (seeds,)
    attention: dict[str, np.ndarray] = field(default_factory=dict)  # measure -> (seeds, images), same images

    @property
    def accuracy(self) -> np.ndarray:
        """(seeds,) test accuracy of each run."""
        return self.correct.mean(1)


@dataclass(frozen=True)
class Measure:
    """How one compared number is named and printed."""

    topic: str
    value: Callable[[float], str]
    difference: Callable[[float], str]


ACCURACY = Measure("Test accuracy", lambda v: f"{100 * v:.2f} %", lambda d: f"{100 * d:+.2f} points")
EPOCH_TIME = Measure(
    "Training time per epoch (the median epoch after the first)", lambda v: f"{v:.1f} s", lambda d: f"{d:+.1f} s"
)
CALIBRATION = Measure("Expected calibration error (lower: better calibrated)", lambda v: f"{v:.3f}", lambda d: f"{d:+.3f}")
ATTENTION = {  # per-image heatmap measurements; {method} is the explanation method
    "top10_share": Measure(
        "Share of {method} mass in the top 10 % of pixels", lambda v: f"{100 * v:.1f} %", lambda d: f"{100 * d:+.1f} points"
    ),
    "pointing_hit": Measure(
        "{method} pointing game (the map's peak on the object)", lambda v: f"{100 * v:.0f} %", lambda d: f"{100 * d:+.0f} points"
    ),
    "deletion_auc": Measure("{method} deletion AUC (lower: more faithful)", lambda v: f"{v:.3f}", lambda d: f"{d:+.3f}"),
}

TEST_SELECTED = (
    "The test set also selected each model's checkpoint (data.val_split: test, the published protocol), so every "
    "test accuracy below is optimistic; a held-out validation split (e.g. data.val_split: 0.1) gives unbiased ones."
)


def findings(models: list[ModelFacts], method: str = "gradcam", test_selected: bool = False) -> list[str]:
    """Sentences comparing every pair of models: accuracy, cost, calibration and (where measured) attention; first,
    when `test_selected`, that the test accuracies are optimistic, and with fewer than three seeds, that the
    comparisons are of trained models, not architectures."""
    seeds = models[0].seeds
    sentences = [TEST_SELECTED] if test_selected else []
    if len(models) < 2:
        return sentences
    if len(seeds) < ARCHITECTURE_SEEDS:
        sentences.append(_trained_models_only(seeds))
        sentences += _accuracy_per_seed(models)
    else:
        sentences += _across_seeds(models, ACCURACY, lambda m: m.correct)
    sentences += _sizes(models)
    sentences += _across_seeds(models, EPOCH_TIME, lambda m: m.epoch_times)
    sentences += _across_seeds(models, CALIBRATION, lambda m: m.ece)
    for key, template in ATTENTION.items():
        measured = [model for model in models if key in model.attention]
        if len(measured) < 2:
            continue
        measure = replace(template, topic=template.topic.format(method=method))
        if len(seeds) < ARCHITECTURE_SEEDS:
            sentences += _attention_per_seed(measured, key, measure)
        else:
            sentences += _across_seeds(measured, measure, lambda m, key=key: m.attention[key])
    return sentences


def _trained_models_only(seeds: list[int]) -> str:
    return (
        f"With {len(seeds)} seed{'s' if len(seeds) > 1 else ''} per model, these findings compare trained models, not "
        f"architectures: another seed (initialisation, batch order, augmentation) can change which model wins. Train "
        f"at least {ARCHITECTURE_SEEDS}, e.g. --set 'seeds=[0,1,2]', for a comparison of the architectures."
    )


def _across_seeds(models: list[ModelFacts], measure: Measure, values: Callable[[ModelFacts], np.ndarray]) -> list[str]:
    """One sentence per pair: a stated difference when it is larger than its uncertainty, else the numbers."""
    arrays = {model.name: values(model) for model in models}
    per_image = next(iter(arrays.values())).ndim > 1
    resampled = "seeds and test images resampled" if per_image else "seeds resampled"
    return [_seed_sentence(c, measure, resampled) for c in compare_across_seeds(arrays, models[0].seeds)]


def _seed_sentence(c: SeedComparison, measure: Measure, resampled: str) -> str:
    seeds = len(c.seeds)
    mean_a, mean_b = float(c.per_seed_a.mean()), float(c.per_seed_b.mean())
    over = f"mean over {seeds} seeds" if seeds > 1 else f"seed {c.seeds[0]}"
    numbers = f"{c.a} {measure.value(mean_a)}, {c.b} {measure.value(mean_b)} ({over})"
    if seeds < ARCHITECTURE_SEEDS:
        return f"{measure.topic}: {numbers}; with fewer than {ARCHITECTURE_SEEDS} seeds no ranking is stated."
    low, high = c.interval
    holm_text = f", Holm-adjusted over {c.pairs} pairs {c.p_adjusted:.2g}" if c.pairs > 1 else ""
    evidence = (
        f"difference {c.a} - {c.b} {measure.difference(c.difference)}, 95 % interval {measure.difference(low)} to "
        f"{measure.difference(high)} ({resampled}); paired t-test over seeds p = {c.p_value:.2g}"
        f"{holm_text}"
    )
    if c.decided and measure.value(mean_a) != measure.value(mean_b):
        higher, lower = (c.a, c.b) if mean_a > mean_b else (c.b, c.a)
        return f"{measure.topic}: {higher} is higher than {lower} across {seeds} seeds: {numbers}; {evidence}."
    return (
        f"{measure.topic}: across {seeds} seeds {c.a} and {c.b} cannot be told apart: {numbers}; {evidence}{_split_verdicts(c)}."
    )


def _split_verdicts(c: SeedComparison) -> str:
    """Which seeds each model won on, when the seeds disagree."""
    differences = c.per_seed_difference
    wins_a = [seed for seed, d in zip(c.seeds, differences, strict=True) if d > 0]
    wins_b = [seed for seed, d in zip(c.seeds, differences, strict=True) if d < 0]
    if not (wins_a and wins_b):
        return ""
    return f"; {c.a} was higher on {_seeds_text(wins_a)}, {c.b} on {_seeds_text(wins_b)}"


def _seeds_text(seeds: list[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _accuracy_per_seed(models: list[ModelFacts]) -> list[str]:
    """McNemar's test of the trained models of each seed, Holm-adjusted over the pairs."""
    sentences = []
    for index, seed in enumerate(models[0].seeds):
        tests = {(test.a, test.b): test for test in mcnemar_pairs({model.name: model.correct[index] for model in models})}
        for a, b in combinations(models, 2):
            sentences.append(_mcnemar_sentence(a.name, b.name, a.correct[index], b.correct[index], tests[(a.name, b.name)], seed))
    return sentences


def _mcnemar_sentence(a: str, b: str, correct_a: np.ndarray, correct_b: np.ndarray, pair: PairTest, seed: int) -> str:
    test = pair.table
    p_value = f"p = {test.p_value:.2g}" + (f", Holm-adjusted {pair.p_adjusted:.2g}" if pair.pairs > 1 else "")
    accuracy_a, accuracy_b = float(correct_a.mean()), float(correct_b.mean())
    if f"{100 * accuracy_a:.2f}" == f"{100 * accuracy_b:.2f}":
        return (
            f"Seed {seed}: the trained {a} and {b} are equally accurate ({100 * accuracy_a:.2f} % on {len(correct_a)} test "
            f"images; McNemar {p_value})."
        )
    (high, high_correct), (low, low_correct) = sorted(
        ((a, correct_a), (b, correct_b)), key=lambda item: float(item[1].mean()), reverse=True
    )
    low_ci, high_ci = paired_bootstrap_interval(high_correct, low_correct, seed)
    numbers = (
        f"{100 * high_correct.mean():.2f} % against {100 * low_correct.mean():.2f} % on {len(correct_a)} test images, "
        f"a difference of {100 * (high_correct.mean() - low_correct.mean()):.2f} points with 95 % CI {100 * low_ci:.2f} to "
        f"{100 * high_ci:.2f}"
    )
    if pair.p_adjusted < SIGNIFICANCE:
        return (
            f"Seed {seed}: the trained {high} is more accurate than the trained {low}: {numbers}; McNemar's test finds "
            f"these two trained models different ({p_value}), which says nothing yet about the architectures."
        )
    return (
        f"Seed {seed}: the trained {high} scores higher than the trained {low} ({numbers}), but the difference is not "
        f"significant (McNemar {p_value}): on these test images the two cannot be told apart."
    )


def _sizes(models: list[ModelFacts]) -> list[str]:
    """Parameters and FLOPs: properties of the networks, the same for every seed."""
    sentences = []
    for a, b in combinations(models, 2):
        small, large = sorted((a, b), key=lambda m: m.parameters)
        sentences.append(
            f"{small.name} has {small.parameters / 1e6:.2f} M parameters and {small.flops / 1e9:.3f} GFLOPs per image; "
            f"{large.name} has {large.parameters / small.parameters:.2f}x the parameters ({large.parameters / 1e6:.2f} M) "
            f"and {large.flops / small.flops:.2f}x the FLOPs ({large.flops / 1e9:.3f} GFLOPs)."
        )
    return sentences


def _attention_per_seed(models: list[ModelFacts], key: str, measure: Measure) -> list[str]:
    """Wilcoxon's signed-rank test of the trained models of each seed, Holm-adjusted over the pairs."""
    sentences = []
    for index, seed in enumerate(models[0].seeds):
        pairs = list(combinations(models, 2))
        raw = [_wilcoxon_p(a.attention[key][index], b.attention[key][index]) for a, b in pairs]
        for (a, b), p, q in zip(pairs, raw, holm(raw), strict=True):
            mean_a, mean_b = float(np.mean(a.attention[key][index])), float(np.mean(b.attention[key][index]))
            p_text = f"Wilcoxon p = {p:.2g}" + (f", Holm-adjusted {q:.2g}" if len(pairs) > 1 else "")
            value = measure.value
            numbers = f"{a.name} {value(mean_a)}, {b.name} {value(mean_b)} on {len(a.attention[key][index])} images"
            if key == "pointing_hit" and "pointing_random" in a.attention:
                numbers += f", where a random map scores {value(float(np.mean(a.attention['pointing_random'][index])))}"
            verdict = (
                "a significant difference between these trained models"
                if q < SIGNIFICANCE and value(mean_a) != value(mean_b)
                else "not a significant difference"
            )
            sentences.append(f"{measure.topic}, seed {seed}: {numbers}; {verdict} ({p_text}).")
    return sentences


def _wilcoxon_p(values_a: np.ndarray, values_b: np.ndarray) -> float:
    differences = np.asarray(values_a, dtype=np.float64) - np.asarray(values_b, dtype=np.float64)
    return float(wilcoxon(differences).pvalue) if np.any(differences != 0) else 1.0
