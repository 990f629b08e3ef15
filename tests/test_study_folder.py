"""The study folder: where each artifact lives, when a run is finished, and artifacts read back as written."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_study
from vitswin.artifacts import write_json
from vitswin.config import validate_config
from vitswin.errors import VitswinError
from vitswin.study import run_config
from vitswin.study_folder import ExplanationSummary, Predictions, RunFolder, StudyFolder, run_names, same_study


def test_a_run_is_finished_only_with_every_artifact(tmp_path: Path) -> None:
    config = validate_config(tiny_study(tmp_path))
    study = StudyFolder.of(config)
    run = study.run("vit", 0)
    assert study.path == tmp_path / "runs" / "tiny" and run.path == study.path / "vit" / "seed-0"
    assert (run.key, run.seed, run.label) == ("vit", 0, "vit seed 0")
    assert [r.key for r in study.runs(config)] == ["vit", "swin"]
    several = config.model_copy(update={"seeds": (3, 4)})
    assert [(r.key, r.seed) for r in study.runs(several)] == [("vit", 3), ("vit", 4), ("swin", 3), ("swin", 4)]
    assert [(r.key, r.seed) for r in study.runs(several, seed=4)] == [("vit", 4), ("swin", 4)]
    assert not run.is_trained() and not run.is_finished()
    run.write_config(run_config(config, "vit", 0))
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
    run = StudyFolder.of(config).run("vit", 0)
    with pytest.raises(VitswinError, match="is not a finished run folder"):
        run.trained_config()
    run.check_config(run_config(config, "vit", 0))  # no config yet: nothing to refuse
    run.write_config(run_config(config, "vit", 0))
    run.check_config(run_config(config, "vit", 0))
    # The output folder spelled another way is the same study.
    run.check_config(run_config(config.model_copy(update={"out_dir": config.out_dir + "/"}), "vit", 0))
    changed = config.model_copy(update={"data": config.data.model_copy(update={"seed": 1})})
    with pytest.raises(VitswinError, match="holds a run with a different config"):
        run.check_config(run_config(changed, "vit", 0))
    with pytest.raises(VitswinError, match="holds a run with a different config"):
        run.check_config(run_config(config, "vit", 1))
    with pytest.raises(VitswinError, match="is not a run folder: run folders are <study>/<model>/seed-<k>"):
        _ = RunFolder(tmp_path / "vit").seed


def test_seeds_trained_into_a_study_join_its_config(tmp_path: Path) -> None:
    config = validate_config(tiny_study(tmp_path))
    study = StudyFolder.of(config)
    assert study.register(config.model_copy(update={"seeds": (0, 1)})).seeds == (0, 1)
    assert study.register(config.model_copy(update={"seeds": (2, 1)})).seeds == (0, 1, 2)
    assert study.read_config().seeds == (0, 1, 2)
    other = config.model_copy(update={"data": config.data.model_copy(update={"train_size": 99})})
    before = study.config_file.read_bytes()
    with pytest.raises(VitswinError, match="holds a study with a different config"):
        study.register(other)
    assert study.config_file.read_bytes() == before  # a refused study changes nothing


def test_where_files_go_how_many_train_at_once_and_how_a_study_explains_do_not_make_a_different_study(tmp_path: Path) -> None:
    config = validate_config(tiny_study(tmp_path))
    moved = validate_config(
        {**tiny_study(tmp_path / "elsewhere"), "logger": "csv", "jobs": "auto", "explain": {"images": 8, "road": False}}
    )
    assert same_study(config, moved)
    assert not same_study(config, config.model_copy(update={"seeds": (0, 1)}))


def test_a_run_folder_is_trained_by_one_process_at_a_time(tmp_path: Path) -> None:
    run = StudyFolder(tmp_path).run("vit", 0)
    script = f"""
import sys, time
from pathlib import Path
from vitswin.study_folder import RunFolder
with RunFolder(Path({str(run.path)!r})).claimed():
    print("held", flush=True)
    time.sleep(30)
"""
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = rf"{run.path} is being trained by process {holder.pid} on "
        with pytest.raises(VitswinError, match=busy), run.claimed():
            pass
    finally:
        holder.kill()
        holder.wait()
    with run.claimed():  # the kernel released the killed holder's lock
        pass


def test_history_and_stages_round_trip(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "vit" / "seed-0")
    rows = [{"epoch": 1.0, "val_acc": 0.5}, {"epoch": 2.0, "val_acc": 0.75}]
    run.write_history(rows)
    assert run.read_history() == rows
    study = StudyFolder(tmp_path)
    study.record_stage("train/vit")
    study.record_stage("report")
    assert list(json.loads(study.stages_file.read_text())) == ["train/vit", "report"]
    with pytest.raises(VitswinError, match="is not a study folder"):
        study.read_config()


def test_an_explanation_holds_until_the_weights_or_the_options_change(tmp_path: Path) -> None:
    study = StudyFolder(tmp_path)
    run = study.run("vit", 2)
    run.path.mkdir(parents=True)
    run.weights_file.write_bytes(b"")
    explanation = study.explanation("gradcam", 2)
    assert explanation.path == tmp_path / "explain" / "gradcam" / "seed-2"
    assert (explanation.method, explanation.seed) == ("gradcam", 2)
    options = {"images": 2, "road": False}
    assert not explanation.holds([run], options) and study.explanations() == []
    explanation.write_rows([{"model": "vit", "x": 1}, {"model": "swin", "x": 2}], [])
    explanation.write_summary(ExplanationSummary(options, 2, {}, {}, {}, {}, {}))
    assert explanation.holds([run], options) and [(e.method, e.seed) for e in study.explanations()] == [("gradcam", 2)]
    assert not explanation.holds([run], {**options, "road": True})  # asked for more than it measured
    assert explanation.read_rows() == {"vit": [{"model": "vit", "x": "1"}], "swin": [{"model": "swin", "x": "2"}]}
    explanation.summary_file.write_text('{"options": {}, "images": 2}')  # written by something else
    with pytest.raises(VitswinError, match=r"attention.json is not as vitswin writes it \(its keys differ\); delete it"):
        explanation.read_summary()
    explanation.write_summary(ExplanationSummary(options, 2, {}, {}, {}, {}, {}))
    later = explanation.summary_file.stat().st_mtime + 10
    os.utime(run.weights_file, (later, later))  # retrained after the explanation was made
    assert not explanation.holds([run], options)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_permissions_the_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        write_json({"a": 1}, tmp_path / "a.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    assert [path.name for path in tmp_path.iterdir()] == ["a.json"]  # no temporary left beside it


def test_runs_shown_side_by_side_are_named_apart_by_as_much_of_their_path_as_it_takes(tmp_path: Path) -> None:
    a, b = (tmp_path / study / "vit" / "seed-0" for study in ("study-a", "study-b"))
    assert run_names([RunFolder(a), RunFolder(a.parent.parent / "swin" / "seed-0")]) == ["vit", "swin"]
    assert run_names([RunFolder(a), RunFolder(a.parent / "seed-1")]) == ["vit seed 0", "vit seed 1"]
    assert run_names([RunFolder(a), RunFolder(b)]) == ["study-a/vit seed 0", "study-b/vit seed 0"]
    c = tmp_path / "elsewhere" / "study-a" / "vit" / "seed-0"
    assert run_names([RunFolder(a), RunFolder(c)]) == [str(a), str(c)]
    with pytest.raises(VitswinError, match="is given twice"):
        run_names([RunFolder(a), RunFolder(tmp_path / "study-a" / "vit" / ".." / "vit" / "seed-0")])
