"""`data.source: hf`: Hugging Face datasets saved locally (save_to_disk, parquet), read into resident ImageSets."""

import io
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import tiny_study
from vitswin.cli import main
from vitswin.config import DataConfig
from vitswin.data import load_data, read_source
from vitswin.errors import VitswinError

datasets = pytest.importorskip("datasets")


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def two_colour_split(count: int, seed: int) -> "datasets.Dataset":
    """The easy warm/cool task as a Hugging Face dataset with an Image and a ClassLabel column."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(count):
        label = i % 2
        pixels = rng.integers(0, 120, (16, 16, 3))
        pixels[..., 2 if label == 0 else 0] += 120
        image = Image.fromarray(pixels.astype(np.uint8))
        images.append(image)
        labels.append(label)
    features = datasets.Features({"picture": datasets.Image(), "kind": datasets.ClassLabel(names=["cool", "warm"])})
    return datasets.Dataset.from_dict({"picture": images, "kind": labels}, features=features)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hf") / "colours"
    datasets.DatasetDict({"train": two_colour_split(300, 0), "test": two_colour_split(80, 1)}).save_to_disk(str(path))
    return path


def hf_config(tmp_path: Path, **hf: object) -> DataConfig:
    return DataConfig(source="hf", hf=hf, image_size=16, cache_dir=str(tmp_path / "cache"))


def test_a_save_to_disk_folder_is_read_with_detected_columns(saved: Path, tmp_path: Path) -> None:
    train, test = read_source(hf_config(tmp_path, path=str(saved)))
    assert (len(train), len(test)) == (300, 80) and train.class_names == ["cool", "warm"]
    assert train.images.shape == (300, 3, 16, 16) and test.images.dtype.is_floating_point is False
    warm = train.images[train.labels == 1].float().mean((0, 2, 3))
    assert warm[0] > warm[2]  # warm images are red, read in the right channel order
    again, _ = read_source(hf_config(tmp_path, path=str(saved)))  # from the cache now
    assert (again.images == train.images).all()


def test_parquet_files_and_a_missing_test_split(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dataset = two_colour_split(100, 2)
    dataset.to_parquet(str(tmp_path / "colours.parquet"))
    splits = load_data(hf_config(tmp_path, path=str(tmp_path / "colours.parquet")).model_copy(update={"test_split": 0.25}))
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (75, 25)


def test_an_unreadable_image_row_is_named_or_skipped(tmp_path: Path) -> None:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    good = png(np.zeros((8, 8, 3)))
    rows = {"image": [{"bytes": good, "path": None}, {"bytes": b"broken", "path": None}] * 4, "label": [0, 1] * 4}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "broken"))
    with pytest.raises(VitswinError, match=r"train row 1 is not a readable image .*set data.bad_images=skip"):
        read_source(hf_config(tmp_path, path=str(tmp_path / "broken"), test=None))
    train, test = read_source(
        hf_config(tmp_path, path=str(tmp_path / "broken"), test=None).model_copy(update={"bad_images": "skip", "test_split": 0.5})
    )
    assert len(train) + len(test) == 4 and train.skipped == 4


def test_bad_hf_settings_give_one_sentence(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(VitswinError, match=r"has no split 'training' \(it has: train, test\); set data.hf.train."):
        read_source(hf_config(tmp_path, path=str(saved), train="training"))
    with pytest.raises(VitswinError, match=r"has no column 'img' \(its columns: picture, kind\); set data.hf.image_column."):
        read_source(hf_config(tmp_path, path=str(saved), image_column="img"))
    with pytest.raises(VitswinError, match="could not be found in the local cache or downloaded .*save_to_disk"):
        read_source(hf_config(tmp_path, path="someone/no-such-dataset-offline"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VitswinError, match="holds no dataset vitswin can read"):
        read_source(hf_config(tmp_path, path=str(tmp_path / "empty")))


@pytest.mark.parametrize("kind", ["string", "class"])
def test_rows_without_a_label_are_named(tmp_path: Path, kind: str) -> None:
    labels = ["a", None, "b", None, "a", None, "b", None] if kind == "string" else [0, -1, 1, -1, 0, -1, 1, -1]
    column = datasets.Value("string") if kind == "string" else datasets.ClassLabel(names=["a", "b"])
    rows = {"image": [{"bytes": png(np.zeros((8, 8, 3))), "path": None}] * 8, "label": labels}
    features = datasets.Features({"image": datasets.Image(), "label": column})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "labels"))
    sentence = "the train split has no label in column 'label' for rows 1, 3, 5, 7; label them"
    with pytest.raises(VitswinError, match=re.escape(sentence)):
        read_source(hf_config(tmp_path, path=str(tmp_path / "labels"), test=None))


def test_labels_of_two_types_are_named_with_their_rows(tmp_path: Path) -> None:
    image = [{"bytes": png(np.zeros((8, 8, 3))), "path": None}] * 4
    features = {
        label: datasets.Features({"image": datasets.Image(), "label": datasets.Value(label)}) for label in ("int64", "string")
    }
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"image": image, "label": [0, 1, 0, 1]}, features=features["int64"]),
            "test": datasets.Dataset.from_dict({"image": image, "label": ["0", "1", "0", "1"]}, features=features["string"]),
        }
    ).save_to_disk(str(tmp_path / "mixed"))
    sentence = "the labels in column 'label' are of more than one type (int from train row 0; str from test row 0); make"
    with pytest.raises(VitswinError, match=re.escape(sentence)):
        read_source(hf_config(tmp_path, path=str(tmp_path / "mixed")))


def test_a_raw_bytes_image_column_is_found_and_no_split_bars_are_printed(tmp_path: Path, capsys) -> None:
    pyarrow, parquet = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    pixels = [np.full((8, 8, 3), (200 * (i % 2), 0, 200 * (1 - i % 2))) for i in range(12)]
    table = pyarrow.table({"jpeg": [png(each) for each in pixels], "label": [i % 2 for i in range(12)]})
    parquet.write_table(table, tmp_path / "raw.parquet")  # written by pyarrow: a binary column, no image feature
    train, _ = read_source(hf_config(tmp_path, path=str(tmp_path / "raw.parquet")).model_copy(update={"test_split": 0.5}))
    assert train.class_names == ["0", "1"] and train.images.shape[1:] == (3, 16, 16)
    red = train.images[train.labels == 1].float().mean((0, 2, 3))
    assert red[0] > 150 > red[2]
    parquet.write_table(pyarrow.table({"jpeg": [b"x"] * 4, "name": ["a"] * 4}), tmp_path / "nolabel.parquet")
    capsys.readouterr()
    with pytest.raises(VitswinError, match="has no label column vitswin recognises"):
        read_source(hf_config(tmp_path, path=str(tmp_path / "nolabel.parquet")))
    assert "Generating" not in capsys.readouterr().err


def test_a_study_on_a_saved_hugging_face_dataset_runs_end_to_end(
    saved: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = tiny_study(tmp_path)
    raw["data"] = {"source": "hf", "hf": {"path": str(saved)}, "image_size": 16, "cache_dir": str(tmp_path / "cache")}
    for model in raw["models"].values():
        model["train"]["max_epochs"] = 2
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.INFO):
        assert main(["study", str(tmp_path / "study.yaml"), "--no-explain"]) == 0
    study = tmp_path / "runs" / "tiny"
    markdown = (study / "report.md").read_text()
    assert f"Hugging Face dataset {saved}" in markdown
    summary = yaml.safe_load((study / "summary.json").read_text())
    assert all(row["test_acc"] > 0.6 for row in summary["runs"])  # the easy task is learned, well above chance
