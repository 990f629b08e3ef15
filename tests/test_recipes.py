"""The fine-tuning regularisers and schedules of timm's recipes: Mixup / CutMix, random erasing, EMA of the weights,
layer-wise lr decay, timm's optimizers; each a recipe key, off by default."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_two_colour_folder, run_cli, tiny_study, write_config
from vitswin.config import AugmentConfig, TrainConfig, validate_config
from vitswin.errors import VitswinError
from vitswin.model.classifier import ImageClassifier, build_classifier
from vitswin.model.regularisers import BatchRegularisers
from vitswin.study import report_study

MODERN = {
    "augment": {"hflip": True, "erase_prob": 0.25, "mixup": 0.8, "cutmix": 1.0},
    "train": {"optimizer": "adamw", "exclude_from_decay": True, "layer_decay": 0.75, "ema_decay": 0.9},
}


def test_mixed_targets_are_smoothed_class_shares_and_an_odd_image_keeps_its_label() -> None:
    torch.manual_seed(0)
    regularisers = BatchRegularisers(AugmentConfig(mixup=0.8, cutmix=1.0), num_classes=4, label_smoothing=0.1)
    images, labels = torch.rand(7, 3, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1, 2])
    mixed, targets = regularisers(images.clone(), labels)
    assert mixed.shape == images.shape and targets.shape == (7, 4)
    assert torch.allclose(targets.sum(1), torch.ones(7))
    assert torch.allclose(targets[6], torch.tensor([0.025, 0.025, 0.925, 0.025]))  # the seventh: its own, smoothed
    assert torch.equal(mixed[6], images[6])
    # Each of the six mixed images is a blend of itself and its partner in the reversed batch.
    assert all(
        targets[i, labels[i]] > 0.025 and targets[i, labels[5 - i]] > 0.025 for i in range(6) if labels[i] != labels[5 - i]
    )


def test_random_erasing_changes_some_images_and_leaves_the_labels() -> None:
    torch.manual_seed(0)
    regularisers = BatchRegularisers(AugmentConfig(erase_prob=0.5), num_classes=4, label_smoothing=0.0)
    images, labels = torch.zeros(64, 3, 16, 16), torch.arange(64) % 4
    erased, same = regularisers(images.clone(), labels)
    changed = (erased != 0).flatten(1).any(1)
    assert torch.equal(same, labels) and 16 < int(changed.sum()) < 48  # about half, noise-filled
    assert not BatchRegularisers(AugmentConfig(), 4, 0.1).active


def _classifier(train: dict) -> ImageClassifier:
    raw = tiny_study(Path("/nonexistent"))
    raw["models"]["vit"]["train"] = {**raw["models"]["vit"]["train"], **train}
    return build_classifier(validate_config(raw), "vit", num_classes=10)


def test_the_default_optimizer_decays_every_parameter_and_layer_decay_scales_by_depth() -> None:
    plain = _classifier({})
    made = _optimizer(plain)  # as before these keys: torch's AdamW, one group, every parameter decayed
    assert type(made) is torch.optim.AdamW and len(made.param_groups) == 1
    assert made.param_groups[0]["weight_decay"] == 0.05 and made.param_groups[0]["lr"] == 3e-3
    assert len(made.param_groups[0]["params"]) == len(list(plain.network.parameters()))
    layered = _optimizer(_classifier({"layer_decay": 0.5}))
    scales = sorted({group["lr_scale"] for group in layered.param_groups})
    assert scales[-1] == 1.0 and scales[0] == pytest.approx(0.5**3)  # 2 blocks: embeddings, 2 blocks, head
    assert {group["weight_decay"] for group in layered.param_groups} == {0.0, 0.05}
    excluded = _optimizer(_classifier({"exclude_from_decay": True}))
    no_decay = next(group for group in excluded.param_groups if group["weight_decay"] == 0.0)
    assert all(param.ndim <= 1 or param.shape[:2] == (1, 1) or param.ndim == 3 for param in no_decay["params"])
    sgd = _optimizer(_classifier({"optimizer": "sgd"}))
    assert isinstance(sgd, torch.optim.SGD)


def _optimizer(module: ImageClassifier) -> torch.optim.Optimizer:
    module.recipe = module.recipe.model_copy(update={"scheduler": "none"})
    return module.configure_optimizers()["optimizer"]


def test_an_unknown_optimizer_is_one_sentence_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["vit"]["train"] = {**raw["models"]["vit"]["train"], "optimizer": "adamx"}
    code, err = run_cli(capsys, "study", write_config(tmp_path, raw), "--no-explain")
    assert code == 2 and err.strip() == (
        "vitswin: error: models.vit.train.optimizer 'adamx' is not a timm optimizer; did you mean adamax, adam, radam?"
    )
    assert not (tmp_path / "runs").exists()
    raw["models"]["vit"]["train"] = {**raw["models"]["vit"]["train"], "optimizer": "adamw", "ema_decay": 0.99}
    code, err = run_cli(capsys, "study", write_config(tmp_path, {**raw, "strategy": "fsdp"}), "--no-explain")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "models.vit.train.ema_decay cannot be combined with strategy fsdp; use ddp, or drop ema_decay" in err
    with pytest.raises(ValueError, match="less than 1"):
        TrainConfig(ema_decay=1.0)


@pytest.mark.slow
def test_a_study_with_every_regulariser_trains_resumes_alike_and_reports_each(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = make_two_colour_folder(tmp_path / "colours", per_class=150)
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root), train_size=None, test_size=None)
    raw["models"] = {"vit": raw["models"]["vit"]}
    raw["models"]["vit"]["augment"] |= MODERN["augment"]
    raw["models"]["vit"]["train"] |= MODERN["train"] | {"max_epochs": 4, "patience": 0}
    config = write_config(tmp_path, raw)
    assert run_cli(capsys, "study", config, "--no-explain", "--out", str(tmp_path / "whole"))[0] == 0
    run = tmp_path / "whole" / "tiny" / "vit" / "seed-0"
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0.75  # chance is 0.5
    # The run keeps the moving average: its selected weights are the EMA's of the best epoch, not the network's.
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    kept = load_file(str(run / "best.safetensors"))
    assert all(torch.equal(kept[name], best[f"ema.module.{name}"]) for name in kept)
    assert not all(torch.equal(kept[name], best[f"network.{name}"]) for name in kept)
    assert json.loads((run / "train.json").read_text())["weights_kept"] == "the moving average of the weights"
    # Killed after its second epoch and run again: the same weights and predictions as the uninterrupted run.
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "vitswin.cli", "train", config, "--model", "vit", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history, deadline = out / "tiny" / "vit" / "seed-0" / "history.csv", time.monotonic() + 300
    while not (history.is_file() and len(history.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the planned kill"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert run_cli(capsys, "train", config, "--model", "vit", "--out", str(out))[0] == 0
    for name in ("best.safetensors", "predictions.npz"):
        assert (out / "tiny" / "vit" / "seed-0" / name).read_bytes() == (run / name).read_bytes()
    _, markdown = report_study(run.parent.parent)
    text = markdown.read_text()
    for row in ("| optimizer | adamw |", "| exclude_from_decay | True |", "| layer_decay | 0.75 |", "| ema_decay | 0.9 |"):
        assert row in text, row
    assert "random erasing p 0.25, Mixup alpha 0.8, CutMix alpha 1.0, mixed batches p 1.0, CutMix share 0.5" in text


def test_an_unknown_recipe_key_is_still_refused() -> None:
    with pytest.raises(VitswinError, match="mixupp"):
        raw = tiny_study(Path("/nonexistent"))
        raw["models"]["vit"]["augment"]["mixupp"] = 0.8
        validate_config(raw)
