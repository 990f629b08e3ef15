"""The decision rule against independent computations (scipy, plain numpy), its agreement between interval and
test, its correction, and its calibration by simulated studies with no true difference."""

import numpy as np
import pytest
from scipy.stats import binomtest, ttest_ind, ttest_rel

from vitswin.report.decision import ExactPairedEvidence, crossed, decide, exact_paired, holm, welch
from vitswin.report.simulate import SCENARIOS, SEED_COUNTS, calibration_table
from vitswin.report.stats import accuracy_interval


@pytest.mark.parametrize(
    ("a", "b"), [([0.91, 0.88, 0.905], [0.95, 0.94, 0.951]), ([1.0, 2.0, 3.5, 2.2, 1.9], [2.0, 4.0, 6.0, 7.0, 5.5])]
)
def test_welch_is_scipys_welch_t_test_and_its_interval(a: list[float], b: list[float]) -> None:
    evidence = welch(a, b)
    reference = ttest_ind(a, b, equal_var=False)
    assert evidence.p_value() == pytest.approx(reference.pvalue, rel=1e-9)
    assert evidence.df == pytest.approx(reference.df, rel=1e-9)
    low, high = reference.confidence_interval(0.95)
    assert evidence.interval(0.05) == pytest.approx((low, high), rel=1e-9)
    # The flaw: at 3 seeds a seed bootstrap's interval is the range of the per-seed differences.
    assert evidence.interval(0.05)[1] - evidence.interval(0.05)[0] > np.ptp(np.subtract(a[:3], b[:3]))


def test_welch_does_not_depend_on_which_seeds_are_paired() -> None:
    a, b = [0.91, 0.88, 0.905], [0.95, 0.94, 0.951]
    results = {(welch(a, order).p_value(), welch(a, order).interval(0.05)) for order in ([b[i] for i in p] for p in _orders())}
    assert len({round(p, 12) for p, _ in results}) == 1
    rng = np.random.default_rng(0)
    images_a, images_b = rng.random((3, 200)) < 0.8, rng.random((3, 200)) < 0.75
    p_values = {round(crossed(images_a, images_b[list(order)]).p_value(), 12) for order in _orders()}
    assert len(p_values) == 1


def _orders() -> list[tuple[int, int, int]]:
    return [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


def test_with_one_seed_the_crossed_rule_is_the_paired_t_test_over_images() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.3, 0.1, 64), rng.normal(0.32, 0.1, 64)
    evidence, reference = crossed(a[None], b[None]), ttest_rel(a, b)
    assert evidence.p_value() == pytest.approx(reference.pvalue, rel=1e-9)
    assert evidence.interval(0.05) == pytest.approx(tuple(reference.confidence_interval(0.95)), rel=1e-9)


def test_the_crossed_rule_matches_its_two_way_mean_squares_computed_by_hand() -> None:
    """Seeds x images for each model: per-model seed means and seed-by-image residuals, by explicit sums."""
    rng = np.random.default_rng(2)
    a = rng.normal(0.5, 0.1, (4, 30)) + rng.normal(0, 0.05, (4, 1))
    b = rng.normal(0.45, 0.1, (3, 30)) + rng.normal(0, 0.05, (3, 1))
    terms = []
    noise = 0.0
    for values in (a, b):
        k, n = values.shape
        seed_means = [sum(row) / n for row in values]
        grand = sum(seed_means) / k
        terms.append((sum((m - grand) ** 2 for m in seed_means) / (k - 1) / k, k - 1))
        image_means = [sum(values[s, i] for s in range(k)) / k for i in range(n)]
        residual = sum((values[s, i] - seed_means[s] - image_means[i] + grand) ** 2 for s in range(k) for i in range(n)) / (
            (k - 1) * (n - 1)
        )
        noise += residual / k
    per_image = a.mean(0) - b.mean(0)
    image_term = (sum((d - per_image.mean()) ** 2 for d in per_image) / 29 - noise) / 30
    terms.append((max(image_term, 0.0), 29))
    variance = sum(v for v, _ in terms)
    df = variance**2 / sum(v**2 / d for v, d in terms if v > 0)
    evidence = crossed(a, b)
    assert evidence.standard_error == pytest.approx(np.sqrt(variance), rel=1e-9)
    assert evidence.df == pytest.approx(df, rel=1e-9)
    assert evidence.estimate == pytest.approx(a.mean() - b.mean())


def test_a_number_the_same_on_every_image_reduces_the_crossed_rule_to_welch_over_seeds() -> None:
    a, b = np.array([0.91, 0.88, 0.905]), np.array([0.95, 0.94, 0.951])
    evidence = crossed(np.repeat(a[:, None], 50, 1), np.repeat(b[:, None], 50, 1))
    assert evidence.p_value() == pytest.approx(welch(a, b).p_value(), rel=1e-9)


@pytest.mark.parametrize(("only_a", "only_b"), [(12, 4), (3, 0), (40, 25), (0, 9)])
def test_mcnemar_evidence_is_the_exact_binomial_test_and_its_clopper_pearson_interval(only_a: int, only_b: int) -> None:
    a = np.array([1] * 50 + [1] * only_a + [0] * only_b + [0] * 10)
    b = np.array([1] * 50 + [0] * only_a + [1] * only_b + [0] * 10)
    evidence = exact_paired(a, b)
    reference = binomtest(only_a, only_a + only_b, 0.5)
    assert evidence.p_value() == pytest.approx(reference.pvalue, rel=1e-9)
    low, high = reference.proportion_ci(0.95, method="exact")
    share = (only_a + only_b) / len(a)
    assert evidence.interval(0.05) == pytest.approx((share * (2 * low - 1), share * (2 * high - 1)), abs=1e-12)
    # The case: 12 against 4 is not significant (Wilcoxon's normal approximation said 0.046).
    if (only_a, only_b) == (12, 4):
        assert evidence.p_value() == pytest.approx(0.077, abs=0.001)


def test_a_perfect_run_has_an_interval_of_nonzero_width() -> None:
    low, high = accuracy_interval(np.ones(200, dtype=bool))
    reference = binomtest(200, 200).proportion_ci(0.95, method="exact")
    assert (low, high) == pytest.approx((reference.low, reference.high)) and low == pytest.approx(0.9817, abs=1e-4)
    assert accuracy_interval(np.array([True] * 90 + [False] * 10)) == pytest.approx(
        tuple(binomtest(90, 100).proportion_ci(0.95, method="exact"))
    )


def test_zero_or_floating_point_spread_is_not_tested() -> None:
    constant = welch([10.0, 10.0, 10.0], [10.1, 10.1, 10.1])
    assert not constant.tested and np.isnan(constant.p_value())
    nearly = welch([10.0, 10.0 + 1e-14, 10.0], [10.1, 10.1, 10.1 - 1e-14])  # the p = 5e-29
    assert not nearly.tested
    assert not crossed(np.ones((3, 20)), np.ones((3, 20))).tested
    assert not exact_paired(np.ones(10), np.ones(10)).tested
    decision = decide([constant, welch([1.0, 2.0, 3.0], [1.5, 2.5, 2.0])])
    assert not decision[0].tested and not decision[0].rejected and decision[1].family_size == 1


def test_holm_adjusted_p_values_by_hand() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, kept non-decreasing.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # The six raw p-values: no finding of the default study survived.
    assert holm([0.046, 0.72, 0.023, 0.064, 0.42, 0.027]) == pytest.approx([0.184, 0.84, 0.138, 0.192, 0.84, 0.138])


def test_every_decision_rejects_exactly_when_its_interval_excludes_zero() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        family = []
        for _ in range(rng.integers(1, 8)):
            kind = rng.integers(3)
            shift = rng.normal(0, 0.6)
            if kind == 0:
                family.append(welch(rng.normal(shift, 1, 3), rng.normal(0, 1, rng.integers(2, 6))))
            elif kind == 1:
                family.append(crossed(rng.normal(shift / 10, 0.3, (3, 40)), rng.normal(0, 0.3, (3, 40))))
            else:
                only = rng.integers(0, 25, 2)
                family.append(ExactPairedEvidence(int(only[0]), int(only[1]), 100))
        for decision in decide(family):
            if not decision.tested:
                continue
            low, high = decision.interval
            assert decision.rejected == (low > 0 or high < 0) == (decision.p_adjusted < 0.05)
            assert decision.p_value <= decision.p_adjusted


@pytest.fixture(scope="module")
def calibration() -> list[dict]:
    return calibration_table(studies=4000, power_studies=500)  # false-positive rates within about 0.35 points


def test_the_rule_is_calibrated_at_the_seed_counts_people_use(calibration: list[dict]) -> None:
    """Simulated studies with no true difference: at most 6 % are called different (nominal 5 %), for a number
    measured once per run and for per-image numbers, at 3, 5 and 10 seeds."""
    assert {(row["scenario"], row["seeds"]) for row in calibration} == {
        (scenario.name, seeds) for scenario in SCENARIOS for seeds in SEED_COUNTS
    }
    for row in calibration:
        assert row["false_positive_rate"] <= 0.06, row
        assert row["false_positive_rate"] >= 0.025, row  # not calibrated by never deciding anything


def test_the_rule_finds_realistic_differences(calibration: list[dict]) -> None:
    power = {(row["scenario"], row["seeds"]): row["power"] for row in calibration}
    for scenario in SCENARIOS:
        assert power[scenario.name, 3] >= 0.4, power
        assert power[scenario.name, 3] <= power[scenario.name, 5] + 0.02 <= power[scenario.name, 10] + 0.04, power
        assert power[scenario.name, 10] >= 0.9, power
