"""Recipe designs: the architecture gap within each recipe, the recipe effect within each architecture and their
interaction, checked against a two-way fit on constructed results with known effects."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import make_two_colour_folder, tiny_study
from vitswin.config import load_config, validate_config
from vitswin.data.splits import nested_subset
from vitswin.errors import VitswinError
from vitswin.report.effects import compared, interactions
from vitswin.report.facts import ModelFacts
from vitswin.report.findings import findings
from vitswin.study import run_study, train_models
from vitswin.study_folder import StudyFolder

IMAGES = 2000
SEEDS = 3


def cell(model: str, recipe: str, accuracies: list[float], seed: int) -> ModelFacts:
    """A design's cell over seeds: each seed's run right on the given share of the test images."""
    rng = np.random.default_rng(seed)
    correct = np.stack([rng.permutation(np.arange(IMAGES) < round(value * IMAGES)) for value in accuracies])
    name = model if recipe == model else f"{model}+recipe-{recipe}"
    return ModelFacts(
        name,
        list(range(len(accuracies))),
        correct,
        np.full(correct.shape, 0.8),
        1_000_000,
        2e9,
        0.1,
        recipe={"train.lr": {"vit": 3e-3, "swin": 2e-3}[recipe]},
        architecture=model,
        coordinates={"recipe": recipe},
    )


def design(base: float, architecture: float, recipe: float, interaction: float, spread: float = 0.004) -> list[ModelFacts]:
    """The four cells of a 2x2 recipe swap with known effects on accuracy: swin's gap over vit under vit's recipe is
    `architecture`, swin's recipe adds `recipe`, and under swin's recipe the gap changes by `interaction`."""
    rng = np.random.default_rng(7)

    def accuracies(mean: float) -> list[float]:
        return list(mean + rng.normal(0, spread, SEEDS))

    means = {
        ("vit", "vit"): base,
        ("swin", "vit"): base + architecture,
        ("vit", "swin"): base + recipe,
        ("swin", "swin"): base + architecture + recipe + interaction,
    }
    order = [("vit", "vit"), ("vit", "swin"), ("swin", "vit"), ("swin", "swin")]
    return [cell(model, recipe, accuracies(means[model, recipe]), i) for i, (model, recipe) in enumerate(order)]


def two_way_interaction(cells: list[ModelFacts]) -> float:
    """The interaction coefficient of an ordinary least-squares fit of every run's accuracy on architecture, recipe
    and their product (an independent computation of what effects.py estimates)."""
    rows, targets = [], []
    for each in cells:
        swin, swin_recipe = each.model == "swin", each.coordinates["recipe"] == "swin"
        for accuracy in each.accuracy:
            rows.append([1.0, swin, swin_recipe, swin * swin_recipe])
            targets.append(accuracy)
    coefficients = np.linalg.lstsq(np.array(rows, dtype=float), np.array(targets), rcond=None)[0]
    return float(coefficients[3])


def text(judged: list, start: str) -> str:
    return next(finding.text for finding in judged if finding.text.startswith(start))


@pytest.mark.parametrize(("architecture", "recipe", "interaction"), [(0.05, 0.0, 0.0), (0.04, 0.02, -0.08), (0.0, 0.03, 0.03)])
def test_the_interaction_is_the_two_way_fits_and_its_interval_holds_the_truth(
    architecture: float, recipe: float, interaction: float
) -> None:
    cells = design(0.8, architecture, recipe, interaction)
    (found,) = interactions(cells)
    assert (found.a, found.b, found.axis, found.values) == ("vit", "swin", "recipe", ("vit", "swin"))
    # (vit - swin under vit's recipe) - (vit - swin under swin's recipe) is the fit's interaction term.
    assert found.evidence.estimate == pytest.approx(two_way_interaction(cells), abs=1e-12)
    low, high = found.evidence.interval(0.01)
    assert low < interaction < high


def test_a_gap_under_both_recipes_is_the_architectures() -> None:
    judged = findings(design(0.8, architecture=0.08, recipe=0.02, interaction=0.0))
    statement = text(judged, "Test accuracy, architecture by recipe (vit and swin)")
    assert "the gap is not shown to depend on the recipe" in statement
    assert "Verdict: swin is ahead of vit under recipe vit and under recipe swin (8." in statement
    assert "the gap is the architectures', whichever the recipe" in statement
    # Within each recipe and within each architecture, never a model with one recipe against another with another.
    compared_pairs = {(f.a, f.b) for f in judged if f.measure == "accuracy"}
    assert compared_pairs == {
        ("vit", "vit+recipe-swin"),
        ("vit", "swin+recipe-vit"),
        ("vit+recipe-swin", "swin"),
        ("swin+recipe-vit", "swin"),
    }
    assert not [f for f in judged if "not trained alike" in f.text]  # every compared pair shares a recipe or a model


def test_a_ranking_that_reverses_with_the_recipe_is_said_to_be_the_recipes() -> None:
    # swin ahead by 6 points under vit's recipe, vit ahead by 6 under swin's: the recipe decides.
    judged = findings(design(0.8, architecture=0.06, recipe=0.0, interaction=-0.12))
    statement = text(judged, "Test accuracy, architecture by recipe")
    assert "the gap depends on the recipe" in statement
    assert "Verdict: the ranking reverses with the recipe (swin ahead under recipe vit, vit under recipe swin)" in statement
    assert "the recipe, not the architecture alone, decides which is ahead" in statement


def test_no_difference_is_not_decided() -> None:
    statement = text(findings(design(0.8, 0.0, 0.0, 0.0)), "Test accuracy, architecture by recipe")
    assert "Verdict: not decided: vit and swin are not shown to differ under recipe vit or under recipe swin." in statement


def test_a_swap_design_expands_into_cells_whose_own_recipe_keeps_the_model_key() -> None:
    config = load_config(overrides=["recipes=swap"])
    assert config.design() == {
        "vit": {"vit": {"recipe": "vit"}, "vit+recipe-swin": {"recipe": "swin"}},
        "swin": {"swin+recipe-vit": {"recipe": "vit"}, "swin": {"recipe": "swin"}},
    }
    cells = config.cells
    assert cells["vit"] == config.models["vit"] and cells["swin"] == config.models["swin"]
    assert cells["vit+recipe-swin"].train == config.models["swin"].train
    assert cells["vit+recipe-swin"].options["global_pool"] == "max" and cells["vit+recipe-swin"].options["depth"] == 4
    assert cells["swin+recipe-vit"].recipe() == config.models["vit"].recipe()
    plain = cell("vit", "vit", [0.8], 0)
    assert compared(replace(plain, coordinates={}), replace(plain, name="swin", architecture="swin", coordinates={}))


@pytest.mark.slow
def test_a_recipe_swap_added_to_a_study_trains_only_the_new_cells_and_reports_the_interaction(tmp_path) -> None:
    root = make_two_colour_folder(tmp_path / "colours", per_class=150)
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root), test_size=100)
    raw["seeds"] = [0, 1, 2]
    for model in raw["models"].values():
        model["train"] = {**model["train"], "max_epochs": 2}
    config = validate_config(raw)
    run_study(config, explain=False)
    study = config.study_dir
    trained = {path: path.stat().st_mtime_ns for path in study.glob("*/seed-*/best.safetensors")}
    assert len(trained) == 6
    report = (study / "report.md").read_text()
    assert "vit and swin were not trained alike (augment.hflip True vs False)" in report

    swap = validate_config({**raw, "recipes": "swap"})
    run_study(swap, explain=False)
    assert {path: path.stat().st_mtime_ns for path in trained} == trained  # the own-recipe cells are reused
    assert sorted(path.parent.parent.name for path in study.glob("*/seed-*/best.safetensors")) == sorted(
        ["vit", "swin", "vit+recipe-swin", "swin+recipe-vit"] * 3
    )
    assert StudyFolder(study).read_config().recipes == "swap"
    report = (study / "report.md").read_text()
    assert "Test accuracy, architecture by recipe (vit and swin): the gap vit - swin is " in report
    assert "not trained alike" not in report  # every compared pair shares an architecture or a recipe
    # Going back to the smaller design trains nothing and keeps the study's design.
    run_study(config, explain=False)
    assert StudyFolder(study).read_config().recipes == "swap"


def test_nested_subsets_are_stratified_and_each_part_of_every_larger_one() -> None:
    labels = torch.arange(300) % 3
    small, large = nested_subset(labels, 30, 0), nested_subset(labels, 150, 0)
    assert set(small.tolist()) <= set(large.tolist())
    assert torch.bincount(labels[small]).tolist() == [10, 10, 10] and torch.bincount(labels[large]).tolist() == [50] * 3
    assert torch.equal(nested_subset(labels, 30, 0), small) and not torch.equal(nested_subset(labels, 30, 1), small)


def test_a_training_size_the_data_cannot_give_is_refused_before_anything_is_written(tmp_path) -> None:
    raw = {**tiny_study(tmp_path), "train_sizes": [5, "all"]}  # fewer images than the 10 classes
    with pytest.raises(VitswinError, match=r"run vit\+train-5 asks for 5 training images, but the training split has"):
        train_models(validate_config(raw))
    assert not (tmp_path / "runs").exists()
    with pytest.raises(VitswinError, match="config key 'train_sizes' has bad value"):
        validate_config({**raw, "train_sizes": [0.5, 2.0]})


@pytest.mark.slow
def test_a_train_size_design_reports_data_efficiency_and_the_gap_at_each_size(tmp_path) -> None:
    root = make_two_colour_folder(tmp_path / "colours", per_class=150)
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root), test_size=100)
    raw["seeds"] = [0, 1, 2]
    raw["train_sizes"] = [20, 60, "all"]
    for model in raw["models"].values():
        model["train"] = {**model["train"], "max_epochs": 2}
    config = validate_config(raw)
    run_study(config, explain=False)
    study = StudyFolder(config.study_dir)
    assert json.loads((study.path / "vit+train-20" / "seed-0" / "train.json").read_text())["train_images"] == 20
    assert json.loads((study.path / "vit" / "seed-0" / "train.json").read_text())["train_images"] == 270
    report = study.report_markdown.read_text()
    assert "## Data efficiency" in report and "data_efficiency.png" in report
    assert "| model | 20 training images | 60 training images | 270 training images |" in report
    assert "Test accuracy, architecture by training-set size (vit and swin): the gap vit - swin is " in report
    assert "with 60 training images and " in report and "with all training images" in report


def test_a_design_grows_by_new_values_and_refuses_a_changed_or_incomparable_one(tmp_path) -> None:
    raw = {**tiny_study(tmp_path), "train_sizes": [20, "all"]}
    study = StudyFolder.of(validate_config(raw))
    study.register(validate_config(raw))
    grown = study.register(validate_config({**raw, "train_sizes": [20, 60, "all"], "seeds": [0, 1]}))
    assert grown.train_sizes == (20, 60, "all") and grown.seeds == (0, 1)
    assert study.read_config().train_sizes == (20, 60, "all")
    assert study.register(validate_config(raw)).train_sizes == (20, 60, "all")  # a smaller design keeps the study's
    with pytest.raises(VitswinError, match=r"holds a study whose design has runs this one lacks \(swin, vit\)"):
        study.register(validate_config({**raw, "train_sizes": [20, 60, 80]}))
    fast = {"train": {"lr": 1e-3, "max_epochs": 1}}
    named = StudyFolder.of(validate_config({**raw, "name": "named", "train_sizes": None, "recipes": {"fast": fast}}))
    named.register(validate_config({**raw, "name": "named", "train_sizes": None, "recipes": {"fast": fast}}))
    changed = {"fast": {"train": {"lr": 2e-3, "max_epochs": 1}}}
    with pytest.raises(VitswinError, match=r"holds the run swin\+recipe-fast trained differently"):
        named.register(validate_config({**raw, "name": "named", "train_sizes": None, "recipes": changed}))


def test_input_sizes_and_weights_are_axes_whose_own_values_keep_the_model_key(tmp_path) -> None:
    weights = tmp_path / "my weights.safetensors"
    weights.write_bytes(b"")
    raw = {**tiny_study(tmp_path), "input_sizes": [16, 24], "weights": ["none", str(weights)]}
    config = validate_config(raw)
    assert list(config.design()["vit"]) == ["vit", "vit+weights-my-weights", "vit+input-24", "vit+input-24+weights-my-weights"]
    assert config.design()["vit"]["vit+input-24+weights-my-weights"] == {"input size": "24", "weights": "my-weights"}
    assert config.cells["vit+input-24"].input_size == 24 and config.cells["vit+weights-my-weights"].pretrained == str(weights)
    assert config.cells["vit"] == config.models["vit"]


@pytest.mark.parametrize(
    ("design", "sentence"),
    [
        ({"recipes": {"r": "resnet"}}, "recipe 'r' names 'resnet', which is not a model of the study"),
        ({"recipes": {"r": {"options": {"depth": 2}}}}, "a recipe may set only global_pool of a model's options, not depth"),
        ({"recipes": {}}, "recipes must name at least one recipe"),
        ({"input_sizes": []}, "must name at least one input size"),
        ({"input_sizes": [16, 16]}, "must not repeat a value"),
        ({"weights": ["nowhere.safetensors"]}, "must be 'hub', 'none' or the path of an existing weights file"),
        ({"train_sizes": [100, 100]}, "must not repeat a value"),
        ({"axes": {"depth": [2, 4]}}, "unknown config key 'axes'"),
    ],
)
def test_a_bad_design_is_one_sentence(tmp_path, design: dict, sentence: str) -> None:
    with pytest.raises(VitswinError, match=re.escape(sentence)):
        validate_config({**tiny_study(tmp_path), **design})


@pytest.mark.slow
def test_an_input_size_design_reports_resolution_curves_and_hypotheses_come_first(tmp_path) -> None:
    root = make_two_colour_folder(tmp_path / "colours", per_class=100)
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root), test_size=60)
    raw["seeds"] = [0, 1, 2]
    raw["input_sizes"] = [16, 24]
    raw["hypotheses"] = [
        {
            "claim": "ViT is more accurate at every size",
            "metric": "accuracy",
            "higher": "vit",
            "than": "swin",
            "within": "input size",
        },
        {"metric": "best_epoch", "lower": "vit", "than": "swin"},
    ]
    for model in raw["models"].values():
        model["train"] = {**model["train"], "max_epochs": 1}
    run_study(validate_config(raw), explain=False)
    study = StudyFolder(validate_config(raw).study_dir)
    assert study.run("vit+input-24", 0).read_config().models["vit+input-24"].input_size == 24
    report = study.report_markdown.read_text()
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Hypotheses", "## Findings"]
    assert "| 1 | ViT is more accurate at every size | Test accuracy: vit higher than swin, within each input size |" in report
    assert "## Resolution" in report and "resolution.png" in report and "| model | 16 px | 24 px |" in report
    assert "Test accuracy, architecture by input size (vit and swin): the gap vit - swin is " in report
    assert " at 16 px and " in report and "GFLOPs" in report
