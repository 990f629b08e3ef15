"""Training and evaluation end to end on tiny models: learning, artifacts, metrics, selection."""

import csv
import importlib.util
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import make_two_colour_folder, tiny_study
from vitswin.config import ExplainConfig, validate_config
from vitswin.data import load_data
from vitswin.errors import VitswinError
from vitswin.evaluation import Evaluation, evaluate_run
from vitswin.explain.runner import explain_runs
from vitswin.study import report_study, run_study, train_model, train_models
from vitswin.study_folder import StudyFolder
from vitswin.training.loggers import run_logger


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    tmp_path = tmp_path_factory.mktemp("study")
    root = make_two_colour_folder(tmp_path / "colours")
    config = validate_config(tiny_study(tmp_path, source="imagefolder", root=str(root)))
    logger = logging.getLogger("vitswin")
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        summaries = train_models(config)
    finally:
        logger.removeHandler(handler)
    return config, summaries, lines


def test_both_models_learn_above_chance(finished_study: tuple) -> None:
    _, summaries, _ = finished_study
    assert [s.model for s in summaries] == ["vit", "swin"]
    for summary in summaries:
        assert summary.test_acc > 0.8, summary  # two classes: chance is 0.5
        assert summary.epochs_run == 3 and 1 <= summary.best_epoch <= 3
        assert summary.train_time_s > 0 and summary.time_per_epoch_s > 0


def test_run_folders_hold_every_artifact(finished_study: tuple) -> None:
    config, summaries, _ = finished_study
    study_dir = config.study_dir
    assert json.loads((study_dir / "summary.json").read_text())["validation"] == "held-out"
    for summary in summaries:
        run_dir = Path(summary.run_dir)
        for name in (
            "config.yaml",
            "history.csv",
            "best.safetensors",
            "train.json",
            "metrics.json",
            "predictions.npz",
            "checkpoints/best.ckpt",
            "checkpoints/last.ckpt",
        ):
            assert (run_dir / name).is_file(), name
        with open(run_dir / "history.csv") as handle:
            history = list(csv.DictReader(handle))
        assert [int(row["epoch"]) for row in history] == [1, 2, 3]
        assert set(history[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time_s"}
        best = max(history, key=lambda row: float(row["val_acc"]))
        assert int(best["epoch"]) == summary.best_epoch
        assert float(best["val_acc"]) == pytest.approx(summary.best_val_acc)


def test_published_epoch_lines_are_logged(finished_study: tuple) -> None:
    _, _, lines = finished_study
    epoch_lines = [line for line in lines if line.startswith("Epoch ")]
    assert len(epoch_lines) == 6
    assert all(
        re.fullmatch(r"Epoch \d+/3, Loss: \d+\.\d{4}, Train Acc: \d+\.\d{2}%, Val Acc: \d+\.\d{2}%", line) for line in epoch_lines
    )
    assert sum(line.startswith("Total training time: ") for line in lines) == 2
    assert sum(line.startswith("Best model found at epoch ") for line in lines) == 2


def test_metrics_agree_with_an_independent_computation(finished_study: tuple) -> None:
    _, summaries, _ = finished_study
    run_dir = Path(summaries[0].run_dir)
    saved = np.load(run_dir / "predictions.npz")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    preds, labels = saved["probabilities"].argmax(1), saved["labels"]
    assert saved["probabilities"].shape == (100, 2)
    assert np.allclose(saved["probabilities"].sum(1), 1, atol=1e-5)
    assert metrics["accuracy"] == pytest.approx((preds == labels).mean())
    confusion = np.zeros((2, 2), dtype=int)
    np.add.at(confusion, (labels, preds), 1)
    assert metrics["confusion_matrix"] == confusion.tolist()
    for index, name in enumerate(metrics["class_names"]):
        per_class = metrics["per_class"][name]
        assert per_class["recall"] == pytest.approx(confusion[index, index] / confusion[index].sum())
        column = confusion[:, index].sum()
        assert per_class["precision"] == pytest.approx(confusion[index, index] / column if column else 0.0)


def test_best_weights_are_the_selected_checkpoint(finished_study: tuple) -> None:
    _, summaries, _ = finished_study
    run_dir = Path(summaries[1].run_dir)
    exported = load_file(str(run_dir / "best.safetensors"))
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    for key, value in exported.items():
        assert torch.equal(checkpoint["state_dict"][f"network.{key}"], value)


def test_evaluate_run_reproduces_the_test_metrics(finished_study: tuple) -> None:
    _, summaries, _ = finished_study
    run_dir = Path(summaries[0].run_dir)
    before = json.loads((run_dir / "metrics.json").read_text())
    again = evaluate_run(run_dir)
    assert again["accuracy"] == pytest.approx(before["accuracy"])
    assert again["confusion_matrix"] == before["confusion_matrix"]


def test_evaluate_run_needs_a_finished_run(tmp_path: Path) -> None:
    with pytest.raises(VitswinError, match="is not a finished run folder"):
        evaluate_run(tmp_path)


def test_test_as_validation_protocol_and_plateau_schedule(tmp_path: Path) -> None:
    raw = tiny_study(tmp_path, val_split="test")
    raw["models"]["vit"]["train"] = {"max_epochs": 1, "batch_size": 64, "scheduler": "plateau", "lr": 1e-3}
    config = validate_config(raw)
    splits = load_data(config.data)
    summary = train_model(config, "vit", 0, splits)
    train = json.loads((Path(summary.run_dir) / "train.json").read_text())
    assert train["validation"] == "test"
    assert summary.best_val_acc == pytest.approx(summary.test_acc, abs=1e-6)  # the same test images


def test_evaluation_metrics_on_a_hand_made_case() -> None:
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    metrics = Evaluation(probabilities, torch.tensor([0, 1, 1, 1]), ["a", "b"]).metrics()
    assert metrics["accuracy"] == 0.75
    assert metrics["confusion_matrix"] == [[1, 0], [1, 2]]
    assert metrics["per_class"]["a"] == {"precision": 0.5, "recall": 1.0, "accuracy": 1.0, "support": 1}
    assert metrics["per_class"]["b"]["recall"] == pytest.approx(2 / 3)


def test_run_study_trains_measures_explains_and_reports(tmp_path: Path) -> None:
    """The whole pipeline from Python, as `vitswin study` runs it."""
    config = validate_config(tiny_study(tmp_path))
    previous = os.umask(0o022)
    try:
        summaries = run_study(config).runs
    finally:
        os.umask(previous)
    study_dir = config.study_dir
    # A colleague in the group, or a web server showing runs/, can read every file (0644 under umask 022).
    unreadable = [path for path in study_dir.rglob("*") if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o044 != 0o044]
    assert not unreadable
    assert [summary.model for summary in summaries] == ["vit", "swin"]
    for key in ("vit", "swin"):
        cost = json.loads((study_dir / key / "seed-0" / "cost.json").read_text())
        assert cost["parameters"] > 0 and cost["flops_per_image"] > 0
    speed = json.loads((study_dir / "speed.json").read_text())
    for key in ("vit", "swin"):  # every network timed in the same rounds, each round a value
        timed = speed["models"][key]
        assert len(timed["train_images_per_s"]) == len(timed["inference_images_per_s"]) == speed["rounds"] == 5
        assert min(timed["train_images_per_s"]) > 0
    assert speed["models"]["vit"]["network"] != speed["models"]["swin"]["network"]
    assert (study_dir / "explain" / "gradcam" / "seed-0" / "attention.json").is_file()
    markdown = (study_dir / "report.md").read_text()
    assert "## Explanations" in markdown and "gradcam on 64 test images" in markdown
    # timm's own defaults differ by family: Swin trains with stochastic depth, ViT without; the report says so.
    assert "| stochastic depth (highest drop-path rate) | 0 | 0.1 |" in markdown
    assert json.loads((study_dir / "swin" / "seed-0" / "train.json").read_text())["network"]["head"] == "linear 32 -> 10"
    stages = json.loads((study_dir / "stages.json").read_text())
    assert set(stages) == {"train/vit/seed-0", "train/swin/seed-0", "explain/gradcam/seed-0", "report"}
    assert run_study(config, explain=False).runs == summaries  # everything finished is reused


def test_a_model_that_cannot_be_explained_is_left_out_and_the_report_says_so(finished_study: tuple, tmp_path: Path) -> None:
    config, _, _ = finished_study
    study_dir = tmp_path / "copy"
    shutil.copytree(config.study_dir, study_dir)
    # Point swin's explanation at its classifier, whose output is class scores, not a map.
    run_config = yaml.safe_load((study_dir / "swin" / "seed-0" / "config.yaml").read_text())
    run_config["models"]["swin"]["explain_layer"] = "head"
    (study_dir / "swin" / "seed-0" / "config.yaml").write_text(yaml.safe_dump(run_config, sort_keys=False))

    out = explain_runs(
        [study_dir / "vit" / "seed-0", study_dir / "swin" / "seed-0"], ExplainConfig(images=8, batch_size=8, road=False)
    )
    summary = json.loads((out / "attention.json").read_text())
    assert list(summary["per_model"]) == ["vit"]
    assert summary["skipped"]["swin"].startswith("cannot read module 'head' of SwinTransformer as a spatial map")
    markdown = report_study(study_dir)[1].read_text()
    assert "swin is not explained by gradcam: cannot read module 'head' of SwinTransformer" in markdown


@pytest.mark.slow
def test_separate_processes_train_a_grid_into_one_study_folder(tmp_path: Path) -> None:
    """docs/distributed.md: one `vitswin train --model M --set seeds=[K]` per job, all at once, into one folder; a
    duplicate job is refused while the first holds its run; `vitswin report` then collects every run."""
    raw = tiny_study(tmp_path, train_size=300, test_size=60)
    for model in raw["models"].values():
        model["train"].update(max_epochs=2, patience=0)
    raw["models"]["vit"]["train"]["max_epochs"] = 8  # long enough for the twin job to find it in training
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "shared"
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # five jobs on a few cores, as docs/distributed.md advises

    def job(model: str, seed: int) -> subprocess.Popen:
        command = [sys.executable, "-m", "vitswin.cli", "train", str(path), "--model", model, "--set", f"seeds=[{seed}]"]
        return subprocess.Popen(
            [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=one_thread
        )

    # Two identical jobs at once: one trains the run, the other is refused while the first holds it.
    twins = [job("vit", 0), job("vit", 0)]
    others = [job(model, seed) for model, seed in (("vit", 1), ("swin", 0), ("swin", 1))]
    errors = [process.communicate(timeout=600)[1] for process in (*twins, *others)]
    outcomes = sorted((process.returncode, err) for process, err in zip((*twins, *others), errors, strict=True))
    assert [code for code, _ in outcomes] == [0, 0, 0, 0, 2], outcomes
    refused = outcomes[-1][1]
    assert "vit/seed-0 is being trained by process" in refused and len(refused.strip().splitlines()) == 1, refused

    study = StudyFolder(out / "tiny")
    assert sorted(study.read_config().seeds) == [0, 1]
    rows = json.loads(study.summary_json.read_text())["runs"]
    assert sorted((row["model"], row["seed"]) for row in rows) == [("swin", 0), ("swin", 1), ("vit", 0), ("vit", 1)]
    for json_file in study.path.rglob("*.json"):
        json.loads(json_file.read_text())  # every file whole
    assert not list(study.path.rglob(".*.tmp"))
    markdown = report_study(study.path)[1].read_text()
    assert "each trained with 2 seeds" in markdown


def test_tensorboard_finds_every_epoch_of_every_run(finished_study: tuple) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config, summaries, _ = finished_study
    assert config.logger == "tensorboard"  # Lightning's own default
    for summary in summaries:
        events = EventAccumulator(str(Path(summary.run_dir) / "logs"))
        events.Reload()
        assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "hp/test_acc"} <= set(events.Tags()["scalars"])
        history = list(csv.DictReader((Path(summary.run_dir) / "history.csv").read_text().splitlines()))
        for tag, column in (("train/loss", "train_loss"), ("val/acc", "val_acc"), ("lr", "lr")):
            # One point per epoch, the epoch as the step: runs with other batch sizes line up.
            assert [event.step for event in events.Scalars(tag)] == [int(row["epoch"]) for row in history]
            assert [event.value for event in events.Scalars(tag)] == pytest.approx([float(row[column]) for row in history])
        assert events.Scalars("hp/test_acc")[-1].value == pytest.approx(summary.test_acc)
        hparams = yaml.safe_load((Path(summary.run_dir) / "logs" / "hparams.yaml").read_text())
        assert hparams["train.lr"] == pytest.approx(3e-3) and "augment.mixup" in hparams


def test_the_csv_logger_and_no_logger(tmp_path: Path) -> None:
    raw = tiny_study(tmp_path, train_size=120, test_size=20)
    raw["models"]["vit"]["train"]["max_epochs"] = 2
    train_models(validate_config({**raw, "logger": "csv"}), ["vit"])
    run = StudyFolder(tmp_path / "runs" / "tiny").run("vit", 0)
    rows = list(csv.DictReader((run.logs / "metrics.csv").read_text().splitlines()))
    assert [float(row["val/acc"]) for row in rows if row.get("val/acc")] == pytest.approx(
        [r["val_acc"] for r in run.read_history()]
    )
    assert run_logger("none", run) is False
    if importlib.util.find_spec("mlflow") is None:
        with pytest.raises(VitswinError, match="logger 'mlflow' needs the mlflow package"):
            run_logger("mlflow", run)


def test_every_file_of_a_finished_study_is_readable_by_group_and_others(finished_study: tuple) -> None:
    config = finished_study[0]
    umask = os.umask(0o022)
    os.umask(umask)
    if umask & 0o044:
        pytest.skip(f"this process's umask {umask:03o} keeps files from group or others")
    files = [path for path in config.study_dir.rglob("*") if path.is_file()]
    assert len(files) > 20
    unreadable = [str(path) for path in files if stat.S_IMODE(path.stat().st_mode) & 0o044 != 0o044]
    assert not unreadable
