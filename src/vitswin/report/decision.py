"""The one place that decides what a set of numbers supports: every comparison the report states goes through here.

A comparison is *evidence* (an estimate with the statistic that tests it) and a *decision* (the level it is tested
at after correction for every other comparison in its family). Each kind of evidence inverts its own test, so its
interval excludes zero exactly when its p-value is below the level: the two can never disagree.

- Numbers measured once per run (calibration error, speed per round): Welch's t over the replicates, unpaired,
  because seed k of two models shares nothing that would make their runs a pair. When the number is computed from
  the test images (calibration error), the test images' share of the variance is added, from a bootstrap of the
  images shared by every run.
- Numbers measured per test image (correct or not, heatmap measures) over seeds x images, crossed (every seed sees
  every image): a variance decomposition with a term for each model's seeds and one for the images, Satterthwaite's
  degrees of freedom, t. With one seed it is the paired t-test over images; with one image, Welch over seeds.
- Binary per-image numbers of one trained model each (one seed): McNemar's exact test, with the Clopper-Pearson
  interval of the discordant split it inverts.

docs/report.md gives the formulas and the simulation that calibrates them (src/vitswin/report/simulate.py).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.stats import beta, binom
from scipy.stats import t as student_t

SIGNIFICANCE = 0.05
ARCHITECTURE_SEEDS = 3  # the fewest seeds for a statement about architectures rather than trained models
RELATIVE_NOISE = 1e-9  # a standard error below this share of the values' size is floating-point noise, not spread


class Evidence(Protocol):
    """An estimate, the p-value of "it is zero" and the interval that inverts the same test."""

    estimate: float

    @property
    def tested(self) -> bool:
        """False when there is no spread to test against (every replicate equal)."""

    def p_value(self) -> float: ...

    def interval(self, alpha: float) -> tuple[float, float]: ...

    def describe(self) -> str:
        """The statistic, in words, for the sentence that reports it."""


@dataclass(frozen=True)
class TEvidence:
    """estimate ± t(df) x standard error: the interval excludes 0 exactly when the two-sided t-test rejects."""

    estimate: float
    standard_error: float
    df: float
    method: str
    scale: float  # the size of the values compared, to tell spread from floating-point noise

    @property
    def tested(self) -> bool:
        return bool(np.isfinite(self.df) and self.standard_error > RELATIVE_NOISE * max(self.scale, 1e-300))

    def p_value(self) -> float:
        if not self.tested:
            return float("nan")
        return float(2 * student_t.sf(abs(self.estimate) / self.standard_error, self.df))

    def interval(self, alpha: float) -> tuple[float, float]:
        half = float(student_t.ppf(1 - alpha / 2, self.df)) * self.standard_error
        return self.estimate - half, self.estimate + half

    def describe(self) -> str:
        return f"{self.method}, {self.df:.3g} df"


@dataclass(frozen=True)
class ExactPairedEvidence:
    """Two trained models on the same images, right or wrong (or hit or miss): McNemar's exact test on the images
    only one gets right, and the Clopper-Pearson interval of that split turned into a difference of rates. Both
    come from the same binomial tails, so the interval excludes 0 exactly when the test rejects."""

    only_a: int
    only_b: int
    images: int

    @property
    def estimate(self) -> float:
        return (self.only_a - self.only_b) / self.images

    @property
    def tested(self) -> bool:
        return self.only_a + self.only_b > 0

    def p_value(self) -> float:
        discordant = self.only_a + self.only_b
        if discordant == 0:
            return float("nan")
        return float(min(1.0, 2 * binom.cdf(min(self.only_a, self.only_b), discordant, 0.5)))

    def interval(self, alpha: float) -> tuple[float, float]:
        discordant = self.only_a + self.only_b
        low, high = clopper_pearson(self.only_a, discordant, alpha)
        return discordant / self.images * (2 * low - 1), discordant / self.images * (2 * high - 1)

    def describe(self) -> str:
        return f"McNemar's exact test on the {self.only_a + self.only_b} images only one got right"


def clopper_pearson(successes: int, trials: int, alpha: float) -> tuple[float, float]:
    """The exact binomial interval of a proportion at level 1 - alpha: each end inverts a one-sided binomial test at
    alpha / 2, so it never has zero width, even at 0 or `trials` successes."""
    low = float(beta.ppf(alpha / 2, successes, trials - successes + 1)) if successes > 0 else 0.0
    high = float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes)) if successes < trials else 1.0
    return low, high


def welch(a: Sequence[float], b: Sequence[float], image_variance: float = 0.0, images: int = 0, over: str = "seeds") -> TEvidence:
    """mean(a) - mean(b) for numbers measured once per run (`over` seeds) or per timing round (`over` "timing
    rounds"), the replicates of a and b unpaired; `image_variance` (with its `images`) adds the variance that comes
    from which test images were drawn."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    terms = [(_variance(a) / len(a), len(a) - 1), (_variance(b) / len(b), len(b) - 1)]
    if image_variance > 0:
        terms.append((image_variance, images - 1))
    method = f"Welch's t over {over}" + (" and test images" if image_variance > 0 else "")
    return _t_evidence(float(a.mean() - b.mean()), terms, method, _scale(a, b))


def crossed(a: np.ndarray, b: np.ndarray | None = None, reference: float = 0.0) -> TEvidence:
    """mean(a) - mean(b) (or mean(a) - `reference`) for per-image numbers, arrays of (seeds, images) on the same
    images. The variance of the difference is each model's seed variance over its seeds plus the variance of the
    per-image differences over the images, less the seed-by-image noise that both of those already hold (two-way
    mean squares within each model), and never less than the per-image differences' variance alone (the seeds
    held fixed); degrees of freedom by Satterthwaite."""
    models = [np.atleast_2d(np.asarray(a, dtype=np.float64))]
    if b is not None:
        models.append(np.atleast_2d(np.asarray(b, dtype=np.float64)))
    images = models[0].shape[1]
    per_image = models[0].mean(0) - (models[1].mean(0) if b is not None else reference)
    terms, noise = [], 0.0
    for values in models:
        seeds = len(values)
        if seeds > 1:
            terms.append((_variance(values.mean(1)) / seeds, seeds - 1))
            noise += _interaction_mean_square(values) / seeds
    if images > 1:
        image_variance = _variance(per_image) / images
        terms.append((max(0.0, image_variance - noise / images), images - 1))
        if sum(variance for variance, _ in terms) < image_variance:  # never less sure than with the seeds held fixed
            terms = [(image_variance, images - 1)]
    estimate = float(models[0].mean() - (models[1].mean() if b is not None else reference))
    method = "crossed t over seeds and test images" if any(len(values) > 1 for values in models) else "paired t over test images"
    return _t_evidence(estimate, terms, method, _scale(*models))


def exact_paired(a: np.ndarray, b: np.ndarray) -> ExactPairedEvidence:
    """McNemar's evidence for two trained models' 0/1 outcomes on the same images."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    return ExactPairedEvidence(int((a & ~b).sum()), int((~a & b).sum()), len(a))


def _t_evidence(estimate: float, terms: list[tuple[float, int]], method: str, scale: float) -> TEvidence:
    terms = [(variance, df) for variance, df in terms if df > 0]
    total = sum(variance for variance, _ in terms)
    if not terms or total <= 0:
        return TEvidence(estimate, 0.0, float("nan"), method, scale)
    df = total**2 / sum(variance**2 / df for variance, df in terms if variance > 0)
    return TEvidence(estimate, float(np.sqrt(total)), float(df), method, scale)


def _variance(values: np.ndarray) -> float:
    return float(np.var(values, ddof=1)) if len(values) > 1 else 0.0


def _interaction_mean_square(values: np.ndarray) -> float:
    """The residual mean square of a seeds x images table (two-way, no replication): the seed-by-image noise."""
    seeds, images = values.shape
    if seeds < 2 or images < 2:
        return 0.0
    residual = values - values.mean(1, keepdims=True) - values.mean(0, keepdims=True) + values.mean()
    return float((residual**2).sum() / ((seeds - 1) * (images - 1)))


def _scale(*arrays: np.ndarray) -> float:
    return max(float(np.max(np.abs(array))) if np.size(array) else 0.0 for array in arrays)


@dataclass(frozen=True)
class Decision:
    """One comparison's verdict within its family: the level it was tested at (Holm's step for it), the interval
    at that level, the raw and the Holm-adjusted p-value. `rejected` is true exactly when the interval excludes 0
    and exactly when the adjusted p-value is below the family's level."""

    evidence: Evidence
    alpha: float  # the level this comparison was tested at
    interval: tuple[float, float]
    p_value: float
    p_adjusted: float
    family_size: int
    family_alpha: float

    @property
    def tested(self) -> bool:
        return self.evidence.tested

    @property
    def rejected(self) -> bool:
        return self.tested and self.p_adjusted < self.family_alpha

    @property
    def confidence(self) -> float:
        """The interval's level, e.g. 0.95."""
        return 1 - self.alpha


def decide(family: list[Evidence], alpha: float = SIGNIFICANCE) -> list[Decision]:
    """Holm's step-down correction over a family of comparisons, with each one's interval at the level of its step:
    the k-th smallest p-value is tested at alpha / (m - k + 1) until one fails; that one and every later one are
    shown at the failing step's level, where each includes 0. Comparisons with nothing to test do not count in m."""
    tested = [index for index, evidence in enumerate(family) if evidence.tested]
    p_values = {index: family[index].p_value() for index in tested}
    order = sorted(tested, key=lambda index: p_values[index])
    m = len(order)
    adjusted = dict(zip(tested, holm([p_values[index] for index in tested]), strict=True))
    levels, stopped = {}, None
    for rank, index in enumerate(order):
        step = alpha / (m - rank)
        if stopped is None and not p_values[index] < step:
            stopped = step
        levels[index] = step if stopped is None else stopped
    decisions = []
    for index, evidence in enumerate(family):
        if index in levels:
            level = levels[index]
            decisions.append(Decision(evidence, level, evidence.interval(level), p_values[index], adjusted[index], m, alpha))
        else:
            nan = float("nan")
            decisions.append(Decision(evidence, alpha, (nan, nan), nan, nan, m, alpha))
    return decisions


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values alone (for the per-seed tables): the k-th smallest times (m - k + 1), kept
    non-decreasing, capped at 1."""
    order = np.argsort(p_values)
    adjusted = np.empty(len(p_values))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()
