"""Simulated studies that calibrate the decision rule (vitswin.report.decision): two models whose true difference
is known, trained with `seeds` seeds each and tested on the same images, with seed and image variance of the sizes
real studies show. The share of studies in which the rule finds a difference is its false-positive rate when the
true difference is zero, and its power otherwise. tests/test_decision.py and benchmarks/decision_calibration.py
run these; docs/report.md shows the rates."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vitswin.report.decision import SIGNIFICANCE, Evidence, crossed, welch


@dataclass(frozen=True)
class Scenario:
    """How one kind of number varies, and the true difference a study may have."""

    name: str
    simulate: Callable[[np.random.Generator, int, float], tuple[np.ndarray, np.ndarray]]  # (rng, seeds, difference)
    evidence: Callable[[np.ndarray, np.ndarray], Evidence]
    difference: float  # a realistic true difference, for the power
    unit: str


IMAGES = 400


def per_run_values(rng: np.random.Generator, seeds: int, difference: float) -> tuple[np.ndarray, np.ndarray]:
    """A number measured once per run (a calibration error in points, a time): seed noise only, of standard
    deviation 1, model b's with 1.5x model a's (two architectures need not be equally seed-sensitive)."""
    return rng.normal(0.0, 1.0, seeds), rng.normal(-difference, 1.5, seeds)


def per_image_correct(rng: np.random.Generator, seeds: int, difference: float) -> tuple[np.ndarray, np.ndarray]:
    """Right or wrong on each image: a logit giving about 84 % accuracy, shifted by each image's difficulty
    (shared), each model's own difficulty for that image, each run's seed effect and the coin flip of the run on
    the image (together about 2 points of accuracy between seeds on 400 images). `difference` shifts model b's
    logit down (0.5: about 5 points of accuracy)."""
    difficulty = rng.normal(0.0, 1.5, IMAGES)

    def model(shift: float) -> np.ndarray:
        logits = 2.5 - shift + difficulty + rng.normal(0.0, 1.0, IMAGES) + rng.normal(0.0, 0.15, (seeds, 1))
        return (rng.random((seeds, IMAGES)) < 1 / (1 + np.exp(-logits))).astype(np.float64)

    return model(0.0), model(difference)


def per_image_measure(rng: np.random.Generator, seeds: int, difference: float) -> tuple[np.ndarray, np.ndarray]:
    """A continuous heatmap measure (deletion AUC): the images' variance dominates, the seeds' is almost nil."""
    base = rng.normal(0.3, 0.1, IMAGES)

    def model(shift: float) -> np.ndarray:
        own = rng.normal(0.0, 0.05, IMAGES) + rng.normal(0.0, 0.002, (seeds, 1))
        return base - shift + own + rng.normal(0.0, 0.02, (seeds, IMAGES))

    return model(0.0), model(difference)


SCENARIOS = (
    Scenario("per-run number (seed noise only)", per_run_values, welch, 3.0, "seed standard deviations"),
    Scenario("per-image correctness (accuracy)", per_image_correct, crossed, 0.5, "logit (about 5 points of accuracy)"),
    Scenario("per-image heatmap measure (deletion AUC)", per_image_measure, crossed, 0.02, "AUC"),
)
SEED_COUNTS = (3, 5, 10)


def rejection_rate(scenario: Scenario, seeds: int, difference: float, studies: int, seed: int = 0) -> float:
    """The share of `studies` simulated studies in which the rule's 95 % interval excludes zero."""
    rng = np.random.default_rng([seed, seeds, int(difference * 1000)])
    rejected = 0
    for _ in range(studies):
        evidence = scenario.evidence(*scenario.simulate(rng, seeds, difference))
        rejected += evidence.tested and evidence.p_value() < SIGNIFICANCE
    return rejected / studies


def calibration_table(studies: int, power_studies: int, seed: int = 0) -> list[dict[str, float | int | str]]:
    """False-positive rate (over `studies` null studies) and power (over `power_studies`) of every scenario at every
    seed count."""
    return [
        {
            "scenario": scenario.name,
            "seeds": seeds,
            "false_positive_rate": rejection_rate(scenario, seeds, 0.0, studies, seed),
            "true_difference": f"{scenario.difference:g} {scenario.unit}",
            "power": rejection_rate(scenario, seeds, scenario.difference, power_studies, seed),
        }
        for scenario in SCENARIOS
        for seeds in SEED_COUNTS
    ]
