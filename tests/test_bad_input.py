"""Bad input found by hand (issue 17): each gets one sentence and exit code 2, is refused before anything is
written, or is handled by a clear rule (a damaged cache is rebuilt); anything unexpected goes through the error
boundary: one sentence naming a log file that holds the traceback, exit code 1."""

import errno
import json
import logging
import os
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_image_folder, run_cli, tiny_study, write_config
from test_data import folder_config
from vitswin.cli import main
from vitswin.data import load_data, read_source
from vitswin.errors import VitswinError


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def assert_refused(capsys: pytest.CaptureFixture, tmp_path: Path, raw: dict, expected: str, *extra: str) -> None:
    """The study is refused with one sentence containing `expected`, and nothing appears under its output folder."""
    code, err = run_cli(capsys, "study", write_config(tmp_path, raw), "--no-explain", *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vitswin: error: "), err
    assert expected in lines[0], lines[0]
    assert not Path(raw["out_dir"]).exists()


def test_one_class_is_refused_before_anything_is_written(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images", ("cat",))
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root))
    assert_refused(capsys, tmp_path, raw, "the data has a single class ('cat'); a classifier needs images of at least two")


def test_too_few_training_images_for_a_validation_split(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert_refused(
        capsys,
        tmp_path,
        tiny_study(tmp_path, train_size=3),
        "the validation split is empty (3 training, 0 validation, 100 test images); raise data.train_size",
    )


def test_an_input_smaller_than_a_patch_names_the_valid_sizes(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["vit"]["input_size"] = 3
    assert_refused(
        capsys,
        tmp_path,
        raw,
        "models.vit.input_size 3 is too small for vit_tiny_patch16_224 with these options (one position of its last "
        "feature map spans 4 pixels); use a multiple of 4, e.g. 4.",
    )


@pytest.mark.parametrize("setting", ["data", "model"])
def test_a_training_step_too_large_for_memory_is_refused(capsys: pytest.CaptureFixture, tmp_path: Path, setting: str) -> None:
    raw = tiny_study(tmp_path)
    if setting == "data":
        raw["data"]["image_size"] = 100_000
    else:
        raw["models"]["swin"]["input_size"] = 65_536
    expected = {
        "data": "32 images of data.image_size 100000 at models.",  # whichever model is checked first
        "model": "one training step of swin (32 images of data.image_size 16 at models.swin.input_size 65536) needs about",
    }
    assert_refused(capsys, tmp_path, raw, expected[setting])


def test_images_too_many_for_memory_or_disk_are_refused_before_they_are_made(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tiny_study(tmp_path, train_size=10**9)  # the built-in shapes are made in memory
    assert_refused(capsys, tmp_path, raw, "making the built-in shapes (1,000,000,100 images at data.image_size 16) needs about")
    code, err = run_cli(capsys, "study", write_config(tmp_path, raw), "--no-explain")
    assert code == 2 and "GB free; lower data.image_size (the models resize the stored images on the device)" in err
    full = types.SimpleNamespace(disk_usage=lambda _: shutil._ntuple_diskusage(10**12, 10**12, 1000), rmtree=shutil.rmtree)
    monkeypatch.setattr("vitswin.data.store.shutil", full)  # the store's disk alone: the checkpoints' has room
    raw = tiny_study(tmp_path, source="imagefolder", root=str(make_image_folder(tmp_path / "images")))
    assert_refused(
        capsys,
        tmp_path,
        raw,
        f"decoding images needs about 6,144 bytes of disk in {tmp_path / 'cache'}, but it has 1,000 bytes free",
    )


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("name", "../escaped", "config key 'name' has bad value '../escaped': it is not a plain folder name"),
        ("name", "/tmp/absolute", "config key 'name' has bad value '/tmp/absolute': it is not a plain folder name"),
        ("model", "../../evilkey", "model key '../../evilkey' is not a plain folder name"),
    ],
)
def test_names_that_would_leave_the_output_folder_are_refused(
    capsys: pytest.CaptureFixture, tmp_path: Path, where: str, value: str, expected: str
) -> None:
    raw = tiny_study(tmp_path)
    if where == "name":
        raw["name"] = value
    else:
        raw["models"][value] = raw["models"].pop("vit")
    assert_refused(capsys, tmp_path, raw, expected)
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "evilkey").exists()


def test_an_unbalanced_override_names_the_override_and_the_yaml_problem(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert_refused(
        capsys,
        tmp_path,
        tiny_study(tmp_path),
        "override 'models.swin.augment.scale=[0.9,': the value is not valid YAML (expected the node content, but found "
        "'<stream end>'); quote it or close its brackets.",
        "--set",
        "models.swin.augment.scale=[0.9,",
    )


def test_a_bad_weights_file_for_the_second_model_is_found_before_the_first_trains(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    (tmp_path / "bad.safetensors").write_bytes(b"not weights at all")
    raw = tiny_study(tmp_path)
    raw["models"]["swin"]["pretrained"] = str(tmp_path / "bad.safetensors")  # vit comes first and would train
    assert_refused(capsys, tmp_path, raw, "bad.safetensors could not be read")
    torch.save({"patch_embed.proj.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "wrong.pt")
    raw["models"]["swin"]["pretrained"] = str(tmp_path / "wrong.pt")
    assert_refused(capsys, tmp_path, raw, "wrong.pt does not fit model swin_tiny_patch4_window7_224")


def test_undecodable_file_names_are_read_and_class_names_must_be_text(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images")
    os.rename(root / "cat" / "0.png", os.fsencode(root / "cat") + b"/\xff\xfe.png")
    train, test = read_source(folder_config(root, tmp_path, test_split=0.5))
    assert len(train) + len(test) == 8  # the image with the undecodable name is read like the others
    os.rename(root / "dog", os.fsencode(root) + b"/d\xffg")
    with pytest.raises(VitswinError, match=r"class folder 'd\\udcffg' in .* has a name that is not printable text; rename it"):
        read_source(folder_config(root, tmp_path, test_split=0.5))


def test_a_damaged_store_is_reported_and_decoded_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_image_folder(tmp_path / "images")
    config = folder_config(root, tmp_path, test_split=0.5)
    first = read_source(config)[0].images  # gathered before the file is damaged in place
    (store,) = (tmp_path / "cache").glob("store-*[!k]")
    images = store / "images.npy"
    images.write_bytes(images.read_bytes()[:200])  # truncated, as by a full disk or a killed copy
    with caplog.at_level(logging.WARNING):
        again = read_source(config)[0]
    assert torch.equal(first, again.images)
    assert f"the decoded image store {store} is damaged; decoding the images again." in caplog.text
    assert np.load(images, mmap_mode="r").shape == (8, 3, 8, 8)  # written again, whole


@pytest.mark.parametrize("problem", ["read-only", "full"])
def test_a_cache_folder_that_cannot_be_written_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, problem: str
) -> None:
    code = errno.EROFS if problem == "read-only" else errno.ENOSPC

    def refuse(*_: object, **__: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("vitswin.data.store.np.lib.format.open_memmap", refuse)
    root = make_image_folder(tmp_path / "images")
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root))
    code_, err = run_cli(capsys, "study", write_config(tmp_path, raw), "--no-explain")
    assert code_ == 2 and len(err.strip().splitlines()) == 1, err
    if problem == "read-only":
        assert f"cannot write the decoded image store to {tmp_path / 'cache'} (Read-only file system); set data.cache_dir" in err
    else:
        assert "No space left on device" in err or "full" in err


def test_skipped_images_are_counted_once(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images", per_class=6)
    (root / "cat" / "broken.png").write_bytes(b"garbage")
    splits = load_data(folder_config(root, tmp_path, test_split=0.5, val_split=0.25, bad_images="skip"))
    assert splits.skipped_images == 1
    assert load_data(folder_config(root, tmp_path, test_split=0.5, val_split=0.25, bad_images="skip")).skipped_images == 1


def test_an_unexpected_error_is_one_sentence_naming_a_log_with_the_traceback(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_stage(*_: object, **__: object) -> None:
        raise RuntimeError("a bug deep inside\nwith a second line")

    monkeypatch.setattr("vitswin.study.train_models", broken_stage)
    config = write_config(tmp_path, tiny_study(tmp_path))
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    code, err = run_cli(capsys, "train", config, "--model", "vit")
    log_file = tmp_path / "runs" / "tiny" / "vitswin-error.log"
    assert code == 1
    assert err.strip() == (
        f"vitswin: error: 'train' stopped on an unexpected RuntimeError (a bug deep inside); the details are in {log_file} "
        f"(rerun with --debug to see them here; please report it if the cause is not your input)."
    )
    details = log_file.read_text()
    assert details.startswith(f"vitswin train {config} --model vit\n")
    assert "Traceback (most recent call last)" in details and "in broken_stage" in details and "a bug deep inside" in details
    with pytest.raises(RuntimeError, match="a bug deep inside"):
        main(["--debug", "train", config, "--model", "vit"])


def test_without_a_study_folder_the_log_is_a_temporary_file(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_stage(*_: object, **__: object) -> None:
        raise KeyError("missing")

    monkeypatch.setattr("vitswin.bench.runner.bench_scaling", broken_stage)
    code, err = run_cli(capsys, "bench", "scaling")
    assert code == 1 and len(err.strip().splitlines()) == 1
    log_file = Path(err.split("the details are in ")[1].split(" (rerun")[0])
    assert log_file.name.startswith("vitswin-error-") and "KeyError: 'missing'" in log_file.read_text()
    log_file.unlink()


def test_skipped_images_are_recorded_in_train_json(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images", per_class=20)
    (root / "dog" / "broken.png").write_bytes(b"garbage")
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root), bad_images="skip", test_split=0.25, val_split=0.2)
    for key in ("train_size", "test_size"):
        raw["data"].pop(key)
    raw["models"]["vit"]["train"]["max_epochs"] = 1
    assert main(["train", write_config(tmp_path, raw), "--model", "vit"]) == 0
    train = json.loads((tmp_path / "runs" / "tiny" / "vit" / "seed-0" / "train.json").read_text())
    assert train["skipped_images"] == 1 and train["train_images"] + train["val_images"] + train["test_images"] == 40
