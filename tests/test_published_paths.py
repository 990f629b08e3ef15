"""Slow end-to-end runs of the shipped configs: the default study and the 224-pixel published recipe."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CONFIGS
from vitswin.config import load_config
from vitswin.study import run_study, train_models


@pytest.mark.slow
def test_seed_recipe_runs_at_224_pixels_when_shrunk(tmp_path: Path) -> None:
    """The published recipe, shrunk from the command line: random init, one step of a few images, one epoch."""
    overrides = [
        f"out_dir={tmp_path}",
        "data.source=shapes",
        "data.train_size=4",
        "data.test_size=4",
        "data.val_split=test",
        "seeds=[0]",  # one of the config's three seeds: the paths are the same for each
        "recipes=own",  # the two published runs; the swap's cells run the same code with the other's recipe
    ]
    for key in ("vit", "swin"):
        overrides += [f"models.{key}.pretrained=none", f"models.{key}.train.max_epochs=1"]
    config = load_config(CONFIGS / "seed-cifar10.yaml", overrides)
    summaries = train_models(config)
    assert [s.epochs_run for s in summaries] == [1, 1]
    for summary in summaries:
        predictions = torch.from_numpy(np.load(Path(summary.run_dir) / "predictions.npz")["probabilities"])
        assert predictions.shape == (4, 10) and torch.isfinite(predictions).all()
    assert config.models["swin"].input_size == 224 and config.models["swin"].augment.affine


# A CNN beside the default's ViT and Swin, in the default's recipe: output stride 8, so the last feature map is
# 4x4 at 32 px and Grad-CAM has something to localise.
RESNET = (
    "models.resnet={name: resnet18, input_size: 32, augment: {hflip: true}, options: {output_stride: 8,"
    " layers: [1, 1, 1, 1], channels: [16, 32, 64, 128]}, train: {batch_size: 64, max_epochs: 4, lr: 2.0e-3,"
    " weight_decay: 0.05, label_smoothing: 0.1, warmup_epochs: 1, patience: 0}}"
)


@pytest.mark.slow
def test_default_study_learns_explains_and_reports(tmp_path: Path) -> None:
    """The default study as `vitswin study` runs it, called from Python, with a ResNet beside its ViT and Swin: the
    default's models learn and their Grad-CAM maps pass the sanity checks, the CNN's maps point at the objects, and
    the report compares the three pair by pair in every section."""
    # One seed of the three the default trains (the suite's time); `vitswin study` runs all of them.
    run_study(load_config(None, [f"out_dir={tmp_path}", f"data.cache_dir={tmp_path / 'cache'}", "seeds=[0]", RESNET]))
    study_dir = tmp_path / "default"
    summaries = json.loads((study_dir / "summary.json").read_text())["runs"]
    assert {s["model"]: s["test_acc"] > 0.85 for s in summaries if s["model"] in ("vit", "swin")} == {"vit": True, "swin": True}

    explained = json.loads((study_dir / "explain" / "gradcam" / "seed-0" / "attention.json").read_text())
    assert list(explained["per_model"]) == ["vit", "swin", "resnet"] and not explained["skipped"]
    for model, checks in explained["sanity"].items():
        assert checks["pointing_game"] > checks["pointing_random"], (model, checks)  # at the objects
        if model in ("vit", "swin"):
            assert checks["pointing_game"] >= 2 * checks["pointing_random"], (model, checks)
            assert checks["deletion_auc"] < checks["random_deletion_auc"], (model, checks)  # faithful to the model
            assert checks["randomisation_rank_corr"] < 0.5, (model, checks)  # depends on the learned weights
    assert "road" not in explained["per_model"]["vit"]  # the default's explain section

    markdown = (study_dir / "report.md").read_text()
    for section in (
        "Findings",
        "Set-up",
        "Results",
        "Paired comparison",
        "Training curves",
        "Per class",
        "Calibration",
        "Cost",
        "Explanations",
    ):
        assert f"## {section}" in markdown
    assert len(re.findall(r"\(Holm [\d.e-]+\)", markdown)) == 3 and "### swin vs resnet" in markdown  # McNemar per pair
    assert "gradcam on 64 test images" in markdown and (study_dir / "report.html").stat().st_size > 100_000
