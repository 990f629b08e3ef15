"""The cost stage's timing: one measurement per distinct network, in rounds taking turns."""

from pathlib import Path

from conftest import tiny_study
from vitswin.config import validate_config
from vitswin.cost import measure_speed, network_identity
from vitswin.study_folder import StudyFolder


def test_identical_model_configs_are_one_network_timed_once(tmp_path: Path) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["vit_again"] = {**raw["models"]["vit"], "train": {**raw["models"]["vit"]["train"], "lr": 1e-3}}
    config = validate_config(raw)
    models = config.models
    assert network_identity(models["vit"]) == network_identity(models["vit_again"]) != network_identity(models["swin"])
    speed = measure_speed(StudyFolder(tmp_path / "study"), config, classes=10, rounds=2)
    timed = speed.models
    assert timed["vit"] == timed["vit_again"]  # the same network: one timing serves both, nothing to compare
    assert len(timed["swin"].train_images_per_s) == 2 and min(timed["swin"].inference_images_per_s) > 0
    assert StudyFolder(tmp_path / "study").read_speed() == speed
