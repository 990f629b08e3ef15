"""`vitswin predict`: new images classified by trained runs, side by side, equal to the runs' own test predictions."""

import csv
import json
from pathlib import Path

import pytest

from conftest import write_image
from vitswin.cli import main
from vitswin.predict import classify
from vitswin.study_folder import RunFolder


def test_predictions_equal_the_runs_test_predictions(colour_study: tuple) -> None:
    _, runs, test_files = colour_study
    classified = classify(runs, [str(path) for path in test_files], top_k=2)
    assert classified.images == test_files and not classified.problems
    for run_dir, name in zip(runs, classified.runs, strict=True):
        saved = RunFolder(run_dir).read_predictions()
        top1 = [guesses[0] for guesses in classified.top[name]]
        assert [saved.class_names[c] for c in saved.probabilities.argmax(1)] == [label for label, _ in top1]
        assert [p for _, p in top1] == pytest.approx(saved.probabilities.max(1).tolist(), abs=1e-5)
        assert all(len(guesses) == 2 and guesses[0][1] >= guesses[1][1] for guesses in classified.top[name])


def test_mixed_folder_with_a_corrupt_file_from_the_command_line(
    colour_study: tuple, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, runs, test_files = colour_study
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "warm.png").write_bytes(test_files[-1].read_bytes())
    write_image(photos / "grey.jpg", mode="L", size=(40, 30))
    write_image(photos / "nested" / "rgba.png", mode="RGBA", size=(20, 20))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "predictions.csv"
    code = main(["predict", *map(str, runs), str(photos), "--out", str(out), "--cam", str(tmp_path / "cams"), "--top-k", "1"])
    captured = capsys.readouterr()
    assert code == 2  # one input failed; the others are classified
    assert captured.err.strip().splitlines() == [
        f"vitswin: error: {photos / 'broken.jpg'} is not a readable image (cannot identify image file "
        f"'{photos / 'broken.jpg'}'); it was left out."
    ]
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(row["image"]).name for row in rows] == ["grey.jpg", "rgba.png", "warm.png"]
    assert set(rows[0]) == {"image", "vit class 1", "vit probability 1", "swin class 1", "swin probability 1"}
    assert all(row["vit class 1"] in ("cool", "warm") and 0 <= float(row["vit probability 1"]) <= 1 for row in rows)
    assert len(list((tmp_path / "cams").glob("*.png"))) == 3
    assert main(["predict", str(runs[0]), str(photos / "warm.png"), "--out", str(tmp_path / "p.json")]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["runs"] == ["vit"] and record["images"][0]["predictions"]["vit"][0]["class"] in ("cool", "warm")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["nowhere"], "nowhere is not a finished run folder; start with one or more"),
        (["RUN"], "no images given after the run folders"),
        (["RUN", "IMAGE", "--out", "x.txt"], "--out x.txt must end in .csv or .json"),
        (["RUN", "IMAGE", "--top-k", "0"], "--top-k must be at least 1, got 0."),
        (["RUN", "missing/*.png"], "missing/*.png does not exist and matches no file; pass image files"),
    ],
)
def test_bad_predict_arguments(colour_study: tuple, capsys: pytest.CaptureFixture, arguments: list[str], expected: str) -> None:
    _, runs, test_files = colour_study
    arguments = [{"RUN": str(runs[0]), "IMAGE": str(test_files[0])}.get(a, a) for a in arguments]
    assert main(["predict", *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
