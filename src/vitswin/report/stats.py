"""Statistics for comparing classifiers: on one test set (bootstrap intervals, McNemar's test, calibration), and
across training seeds (a two-level bootstrap interval and a paired t-test over seeds, Holm-adjusted over pairs of
models). docs/report.md explains them in plain words."""

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.stats import binom, ttest_1samp

BOOTSTRAP_SAMPLES = 2000
CALIBRATION_BINS = 15
SIGNIFICANCE = 0.05
ARCHITECTURE_SEEDS = 3  # the fewest seeds for a statement about architectures rather than trained models


def bootstrap_interval(
    correct: np.ndarray, seed: int = 0, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap interval of the accuracy, resampling test images with replacement."""
    correct = np.asarray(correct, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, len(correct), (samples, len(correct)))].mean(1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_bootstrap_interval(
    correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """Bootstrap interval of accuracy(a) - accuracy(b), resampling the same test images for both models."""
    return bootstrap_interval(
        np.asarray(correct_a, dtype=np.float64) - np.asarray(correct_b, dtype=np.float64), seed, level, samples
    )


@dataclass(frozen=True)
class McNemar:
    """The 2x2 table of who is right on each test image, and the exact two-sided p-value."""

    both_right: int
    only_a_right: int
    only_b_right: int
    both_wrong: int

    @property
    def p_value(self) -> float:
        """Exact McNemar test: under no difference, the discordant images split like fair coin flips."""
        discordant = self.only_a_right + self.only_b_right
        if discordant == 0:
            return 1.0
        return float(min(1.0, 2 * binom.cdf(min(self.only_a_right, self.only_b_right), discordant, 0.5)))


@dataclass(frozen=True)
class PairTest:
    """McNemar's test of one pair of models, with its p-value adjusted for every pair compared (Holm)."""

    a: str
    b: str
    table: McNemar
    p_adjusted: float
    pairs: int  # how many pairs were compared, and adjusted for


def mcnemar_pairs(correct: dict[str, np.ndarray]) -> list[PairTest]:
    """McNemar's test for every pair of models on the same images, Holm-adjusted over the pairs (with two
    models, one pair: nothing to adjust)."""
    pairs = list(combinations(correct, 2))
    tables = [mcnemar(correct[a], correct[b]) for a, b in pairs]
    adjusted = holm([table.p_value for table in tables])
    return [PairTest(a, b, table, p, len(pairs)) for (a, b), table, p in zip(pairs, tables, adjusted, strict=True)]


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """The 2x2 table of two models' right and wrong answers on the same images, with McNemar's exact test."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    return McNemar(int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum()))


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error and the reliability diagram's bins (equal-width confidence bins)."""

    ece: float
    bin_edges: np.ndarray  # (bins + 1,)
    confidence: np.ndarray  # (bins,) mean confidence per bin, NaN where empty
    accuracy: np.ndarray  # (bins,) accuracy per bin, NaN where empty
    count: np.ndarray  # (bins,)


def calibration(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> Calibration:
    """ECE = sum over bins of (images in bin / all images) * |accuracy - mean confidence| (Guo et al., 2017)."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)  # bins are (lo, hi]
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / count
        accuracy = np.bincount(index, correct.astype(np.float64), bins) / count
    gaps = np.where(count > 0, np.abs(accuracy - mean_confidence), 0.0)
    return Calibration(float((count / len(labels) * gaps).sum()), edges, mean_confidence, accuracy, count)


def smoothed_loss_floor(smoothing: float, classes: int) -> float:
    """The lowest cross-entropy with label smoothing `smoothing` over `classes` classes: the entropy of the smoothed
    target (1 - s + s/K on the true class, s/K on each other), reached only by predicting that target exactly.
    About 0.50 at 0.1 with 10 classes, where unsmoothed cross-entropy can approach 0."""
    if smoothing == 0:
        return 0.0
    true, other = 1 - smoothing + smoothing / classes, smoothing / classes
    return float(-true * np.log(true) - (classes - 1) * other * np.log(other))


def typical_epoch_time(epoch_times: list[float]) -> float:
    """The median epoch time after the first: the first epoch also pays for start-up (compilation, caches, the
    first validation), and a median shrugs off epochs slowed by other work on a shared machine."""
    return float(np.median(epoch_times[1:] if len(epoch_times) > 1 else epoch_times))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for testing several hypotheses at once (every pair of models):
    the k-th smallest is multiplied by (m - k + 1), made non-decreasing, capped at 1. Controls the chance of any
    false "significant" at the nominal level; with one p-value it changes nothing."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def two_level_interval(
    differences: np.ndarray, seed: int = 0, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """Percentile interval of the mean of `differences` (seeds x test images: model a's value minus model b's, same
    seed, same image) that includes both sources of chance: which training seeds were drawn, and which test
    images. Each bootstrap sample draws seeds with replacement and, independently, test images with replacement,
    and averages the chosen rows over the chosen columns; seeds and images are crossed, not nested, because every
    seed is tested on the same images (Owen 2007, the "pigeonhole" bootstrap, slightly conservative). With one
    column per seed (a number measured once per run) it is a bootstrap over seeds alone."""
    differences = np.asarray(differences, dtype=np.float64)
    seeds, images = differences.shape
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for index in range(samples):
        rows = rng.integers(0, seeds, seeds)
        columns = rng.integers(0, images, images)
        means[index] = differences[rows][:, columns].mean()
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def seed_t_test(per_seed_differences: np.ndarray) -> float:
    """Two-sided p-value of a paired t-test over seeds (Student's t with seeds - 1 degrees of freedom on the
    per-seed differences): could the expected difference over training seeds be zero? 1 when every difference is
    zero, 0 when they are equal and not zero, NaN with a single seed (nothing to test)."""
    differences = np.asarray(per_seed_differences, dtype=np.float64)
    if len(differences) < 2:
        return float("nan")
    if np.all(differences == differences[0]):
        return 1.0 if differences[0] == 0 else 0.0
    return float(ttest_1samp(differences, 0.0).pvalue)


@dataclass(frozen=True)
class SeedComparison:
    """Two models compared over the same training seeds: per-seed means, the mean difference a - b with its
    two-level interval, and the t-test over seeds (raw and Holm-adjusted over every pair of models compared)."""

    a: str
    b: str
    seeds: list[int]
    per_seed_a: np.ndarray  # (seeds,) model a's mean per seed
    per_seed_b: np.ndarray
    interval: tuple[float, float]  # of the mean difference a - b
    p_value: float
    p_adjusted: float
    pairs: int

    @property
    def per_seed_difference(self) -> np.ndarray:
        return self.per_seed_a - self.per_seed_b

    @property
    def difference(self) -> float:
        return float(self.per_seed_difference.mean())

    @property
    def decided(self) -> bool:
        """Whether the difference is larger than its uncertainty, for the architectures: at least three seeds, the
        Holm-adjusted t-test below 5 % and an interval that excludes zero."""
        low, high = self.interval
        return len(self.seeds) >= ARCHITECTURE_SEEDS and self.p_adjusted < SIGNIFICANCE and (low > 0 or high < 0)


def compare_across_seeds(values: dict[str, np.ndarray], seeds: list[int], seed: int = 0) -> list[SeedComparison]:
    """Every pair of models compared over seeds. `values[model]` is (seeds, images) (a per-image measurement such as
    correctness, same images for every seed and model) or (seeds,) (a number per run such as the calibration error).
    The t-tests are Holm-adjusted over the pairs."""
    arrays = {name: np.asarray(array, dtype=np.float64).reshape(len(seeds), -1) for name, array in values.items()}
    pairs = list(combinations(arrays, 2))
    intervals = [two_level_interval(arrays[a] - arrays[b], seed) for a, b in pairs]
    raw = [seed_t_test(arrays[a].mean(1) - arrays[b].mean(1)) for a, b in pairs]
    adjusted = holm([1.0 if np.isnan(p) else p for p in raw])
    return [
        SeedComparison(a, b, list(seeds), arrays[a].mean(1), arrays[b].mean(1), interval, p, q, len(pairs))
        for (a, b), interval, p, q in zip(pairs, intervals, raw, adjusted, strict=True)
    ]
