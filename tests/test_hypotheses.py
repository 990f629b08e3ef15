"""Hypotheses stated before a study runs: each judged through the one decision rule, Holm over all their tests."""

from dataclasses import replace

import pytest

from conftest import tiny_study
from test_effects import design
from vitswin.config import HypothesisConfig, load_config, validate_config
from vitswin.errors import VitswinError
from vitswin.report.decision import holm
from vitswin.report.hypotheses import CONTRADICTED, SUPPORTED, UNDECIDED, UNMEASURED, _pairs, _test, judge
from vitswin.study import run_config


def claim(**keys) -> HypothesisConfig:
    return HypothesisConfig(**{"metric": "accuracy", **keys})


def test_a_gap_that_holds_under_both_recipes_supports_the_architecture_claim() -> None:
    cells = design(0.8, architecture=0.08, recipe=0.02, interaction=0.0)
    within, plain, reverse = judge(
        (claim(higher="swin", than="vit", within="recipe"), claim(higher="swin", than="vit"), claim(higher="vit", than="swin")),
        cells,
        "gradcam",
        "",
    )
    assert within.verdict == SUPPORTED
    assert "swin+recipe-vit" in within.evidence and "vit+recipe-swin" in within.evidence
    # The own cells differ in their recipes: the claim is tested, and said to be of model plus recipe.
    assert plain.verdict == SUPPORTED and "model plus recipe: they differ in train.lr" in plain.evidence
    assert reverse.verdict == CONTRADICTED


def test_a_ranking_that_reverses_with_the_recipe_contradicts_the_architecture_claim() -> None:
    cells = design(0.8, architecture=0.06, recipe=0.0, interaction=-0.12)
    (within,) = judge((claim(higher="swin", than="vit", within="recipe"),), cells, "gradcam", "")
    assert within.verdict == CONTRADICTED


def test_gaps_too_small_for_the_seeds_are_not_decided() -> None:
    cells = design(0.8, architecture=0.0, recipe=0.0, interaction=0.0, spread=0.02)
    (judged,) = judge((claim(higher="swin", than="vit"),), cells, "gradcam", "")
    assert judged.verdict == UNDECIDED and "interval" in judged.evidence


def test_every_test_of_every_hypothesis_is_one_holm_family() -> None:
    cells = design(0.8, architecture=0.01, recipe=0.01, interaction=0.0, spread=0.01)
    hypotheses = (claim(higher="swin", than="vit", within="recipe"), claim(higher="swin", than="vit"))
    p_values = [_test(h, a, b, "gradcam", "").evidence.p_value() for h in hypotheses for a, b in _pairs(h, cells)]
    assert len(p_values) == 3
    judged = judge(hypotheses, cells, "gradcam", "")
    adjusted = [decision.p_adjusted for each in judged for decision in each.decisions]
    assert adjusted == pytest.approx(holm(p_values))
    assert "Holm-adjusted" in judged[1].evidence


def test_best_epoch_is_compared_over_seeds_and_a_metric_not_measured_says_so() -> None:
    vit, _, swin, _ = design(0.8, architecture=0.05, recipe=0.0, interaction=0.0)
    vit, swin = replace(vit, best_epochs=(3, 3, 4), coordinates={}), replace(swin, best_epochs=(9, 8, 9), coordinates={})
    earlier, focused = judge(
        (claim(metric="best_epoch", lower="vit", than="swin"), claim(metric="top10_share", higher="vit", than="swin")),
        [vit, swin],
        "gradcam",
        "",
    )
    assert earlier.verdict == SUPPORTED and "Welch's t over seeds" in earlier.evidence
    assert focused.verdict == UNMEASURED


def test_a_claim_within_an_axis_the_design_lacks_is_not_tested() -> None:
    plain = [replace(c, coordinates={}) for c in design(0.8, 0.2, 0.0, 0.0)[::3]]
    (judged,) = judge((claim(higher="swin", than="vit", within="recipe"),), plain, "gradcam", "")
    assert judged.verdict == UNMEASURED and "has no recipe axis" in judged.evidence


def test_with_fewer_than_three_seeds_no_hypothesis_is_decided() -> None:
    cells = [replace(c, seeds=[0], correct=c.correct[:1], confidence=c.confidence[:1]) for c in design(0.8, 0.2, 0.0, 0.0)]
    (judged,) = judge((claim(higher="swin", than="vit", within="recipe"),), cells, "gradcam", "")
    assert judged.verdict == UNDECIDED and "with 1 seed per model" in judged.evidence


@pytest.mark.parametrize(
    ("override", "sentence"),
    [
        ("hypotheses=[{metric: accuracy, higher: swan, than: vit}]", "hypothesis 1 names 'swan', which is not a model"),
        ("hypotheses=[{metric: acc, higher: swin, than: vit}]", "'hypotheses.0.metric' has bad value 'acc'"),
        ("hypotheses=[{metric: accuracy, higher: swin, lower: vit, than: vit}]", "names either 'higher' or 'lower'"),
        ("hypotheses=[{metric: accuracy, higher: vit, than: vit}]", "compares two models, not 'vit' with itself"),
        ("hypotheses=[{metric: accuracy, higher: swin, than: vit, within: recipes}]", "'hypotheses.0.within' has bad value"),
    ],
)
def test_a_bad_hypothesis_is_one_sentence(override: str, sentence: str) -> None:
    with pytest.raises(VitswinError, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [override])


def test_a_run_folder_records_its_run_without_the_studys_hypotheses(tmp_path) -> None:
    raw = {**tiny_study(tmp_path), "hypotheses": [{"metric": "accuracy", "higher": "swin", "than": "vit"}]}
    narrowed = run_config(validate_config(raw), "vit", 0)
    assert narrowed.hypotheses == () and validate_config(narrowed.model_dump()) == narrowed
