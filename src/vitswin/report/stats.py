"""Statistics of one test set: the exact interval of one run's accuracy, McNemar's table of two trained models,
calibration (and its value on resampled test images), the smoothed-loss floor and the typical epoch time. What a
set of such numbers supports is decided in one place, vitswin.report.decision; docs/report.md explains both."""

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from vitswin.report.decision import ExactPairedEvidence, clopper_pearson, holm

CALIBRATION_BINS = 15
IMAGE_RESAMPLES = 400  # bootstrap samples of the test images for the image share of a per-run number's variance


def accuracy_interval(correct: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact binomial) interval of one run's accuracy: never of zero width, even at 0 % or 100 %."""
    return clopper_pearson(int(np.sum(correct)), len(correct), 1 - level)


@dataclass(frozen=True)
class McNemar:
    """The 2x2 table of who is right on each test image, and the exact two-sided p-value."""

    both_right: int
    only_a_right: int
    only_b_right: int
    both_wrong: int

    @property
    def evidence(self) -> ExactPairedEvidence:
        total = self.both_right + self.only_a_right + self.only_b_right + self.both_wrong
        return ExactPairedEvidence(self.only_a_right, self.only_b_right, total)

    @property
    def p_value(self) -> float:
        """Exact McNemar test: under no difference, the discordant images split like fair coin flips (1 when there
        are none)."""
        return self.evidence.p_value() if self.evidence.tested else 1.0


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
    index = _bin_of(confidence, bins)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / count
        accuracy = np.bincount(index, correct.astype(np.float64), bins) / count
    gaps = np.where(count > 0, np.abs(accuracy - mean_confidence), 0.0)
    return Calibration(float((count / len(labels) * gaps).sum()), edges, mean_confidence, accuracy, count)


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width confidence bins, (lo, hi]."""
    return np.clip(np.digitize(confidence, np.linspace(0, 1, bins + 1)[1:-1], right=True), 0, bins - 1)


def resampled_ece(confidence: np.ndarray, correct: np.ndarray, resamples: np.ndarray, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """The ECE of one run's predictions (per-image `confidence` and `correct`) on each row of `resamples` (test-image
    indices, drawn with replacement): how much of its value is down to which test images were drawn."""
    samples, images = resamples.shape
    index = _bin_of(confidence, bins)[resamples] + bins * np.arange(samples)[:, None]  # one bin range per sample
    gap = (correct.astype(np.float64) - confidence)[resamples]
    per_bin = np.bincount(index.ravel(), gap.ravel(), samples * bins).reshape(samples, bins)
    return np.abs(per_bin).sum(1) / images


def smoothed_loss_floor(smoothing: float, classes: int) -> float:
    """The lowest cross-entropy with label smoothing `smoothing` over `classes` classes: the entropy of the smoothed
    target (1 - s + s/K on the true class, s/K on each other), reached only by predicting that target exactly.
    About 0.50 at 0.1 with 10 classes, where unsmoothed cross-entropy can approach 0."""
    if smoothing == 0:
        return 0.0
    true, other = 1 - smoothing + smoothing / classes, smoothing / classes
    return float(-true * np.log(true) - (classes - 1) * other * np.log(other))
