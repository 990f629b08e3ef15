"""Slow end-to-end runs of the shipped configs: the default study and the 224-pixel published recipe."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vitswin.config import load_config
from vitswin.study import run_study, train_models

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.slow
def test_seed_recipe_runs_at_224_pixels_when_shrunk(tmp_path: Path) -> None:
    """The published recipe, shrunk from the command line: random init, one step of a few images, one epoch."""
    overrides = [
        f"out_dir={tmp_path}",
        "data.source=shapes",
        "data.train_size=8",
        "data.test_size=4",
        "data.val_split=test",
        "seeds=[0]",  # one of the config's three seeds: the paths are the same for each
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


@pytest.mark.slow
def test_default_study_learns_explains_and_reports(tmp_path: Path) -> None:
    """The default study as `vitswin study` runs it, called from Python: both models learn, their Grad-CAM maps
    pass the sanity checks, and the report has every section."""
    # One seed of the three the default trains (the suite's time); `vitswin study` runs all of them.
    run_study(load_config(None, [f"out_dir={tmp_path}", f"data.cache_dir={tmp_path / 'cache'}", "seeds=[0]"]))
    study_dir = tmp_path / "default"
    summaries = json.loads((study_dir / "summary.json").read_text())["runs"]
    assert {s["model"]: s["test_acc"] > 0.85 for s in summaries} == {"vit": True, "swin": True}, summaries

    sanity = json.loads((study_dir / "explain" / "gradcam" / "seed-0" / "attention.json").read_text())["sanity"]
    for checks in sanity.values():
        assert checks["pointing_game"] >= 2 * checks["pointing_random"], sanity  # at the objects, not anywhere
        assert checks["deletion_auc"] < checks["random_deletion_auc"], sanity  # faithful to the model
        assert checks["randomisation_rank_corr"] < 0.5, sanity  # depends on the learned weights

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
    assert "gradcam on 64 test images" in markdown and (study_dir / "report.html").stat().st_size > 100_000
