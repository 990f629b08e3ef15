"""The study folder: where each artifact lives, when a run is finished, and artifacts read back as written."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_study
from vitswin.config import validate_config
from vitswin.errors import VitswinError
from vitswin.study import single_model_config
from vitswin.study_folder import ExplanationFolder, Predictions, RunFolder, StudyFolder


def test_a_run_is_finished_only_with_every_artifact(tmp_path: Path) -> None:
    config = validate_config(tiny_study(tmp_path))
    study = StudyFolder.of(config)
    run = study.run("vit")
    assert study.path == tmp_path / "runs" / "tiny" and run.path == study.path / "vit" and run.key == "vit"
    assert [r.key for r in study.runs(config)] == ["vit", "swin"]
    assert not run.is_trained() and not run.is_finished()
    run.write_config(single_model_config(config, "vit"))
    run.write_fit({"history": [], "best_epoch": 1, "best_val_acc": 0.5, "train_time_s": 1.0})
    run.weights_file.write_bytes(b"")
    assert run.is_trained() and not run.is_finished()
    assert run.missing() == ["train.json", "metrics.json", "predictions.npz"]
    run.write_train({"model": "vit"})
    predictions = Predictions(np.eye(3, dtype=np.float32)[[0, 1, 1]], np.array([0, 1, 2]), ["a", "b", "c"])
    run.write_evaluation({"accuracy": 2 / 3}, predictions)
    assert run.is_finished() and run.read_metrics() == {"accuracy": 2 / 3}
    again = run.read_predictions()
    np.testing.assert_array_equal(again.probabilities, predictions.probabilities)
    assert again.class_names == ["a", "b", "c"] and again.correct.tolist() == [True, True, False]


def test_a_run_folder_keeps_its_config(tmp_path: Path) -> None:
    config = validate_config(tiny_study(tmp_path))
    run = StudyFolder.of(config).run("vit")
    with pytest.raises(VitswinError, match="is not a finished run folder"):
        run.trained_config()
    run.check_config(single_model_config(config, "vit"))  # no config yet: nothing to refuse
    run.write_config(single_model_config(config, "vit"))
    run.check_config(single_model_config(config, "vit"))
    changed = config.model_copy(update={"seed": 1})
    with pytest.raises(VitswinError, match="holds a run with a different config"):
        run.check_config(single_model_config(changed, "vit"))


def test_history_and_stages_round_trip(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "vit")
    rows = [{"epoch": 1.0, "val_acc": 0.5}, {"epoch": 2.0, "val_acc": 0.75}]
    run.write_history(rows)
    assert run.read_history() == rows
    study = StudyFolder(tmp_path)
    study.record_stage("train/vit")
    study.record_stage("report")
    assert list(json.loads(study.stages_file.read_text())) == ["train/vit", "report"]
    with pytest.raises(VitswinError, match="is not a study folder"):
        study.read_config()


def test_an_explanation_holds_until_the_weights_change(tmp_path: Path) -> None:
    study = StudyFolder(tmp_path)
    run = study.run("vit")
    run.path.mkdir()
    run.weights_file.write_bytes(b"")
    explanation = study.explanation("gradcam")
    assert explanation.path == tmp_path / "explain" / "gradcam" and study.owns(explanation)
    assert not study.owns(ExplanationFolder(tmp_path / "elsewhere" / "gradcam"))
    assert not explanation.is_newer_than([run]) and study.explanations() == []
    explanation.write_rows([{"model": "vit", "x": 1}, {"model": "swin", "x": 2}], [])
    explanation.write_summary({"images": 2})
    assert explanation.is_newer_than([run]) and [e.method for e in study.explanations()] == ["gradcam"]
    assert explanation.read_rows() == {"vit": [{"model": "vit", "x": "1"}], "swin": [{"model": "swin", "x": "2"}]}
    later = explanation.summary_file.stat().st_mtime + 10
    os.utime(run.weights_file, (later, later))  # retrained after the explanation was made
    assert not explanation.is_newer_than([run])
