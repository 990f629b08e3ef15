"""Generated bad input (Hypothesis): config overrides, data folders and damaged run folders that nobody wrote by
hand. For every case the command ends with exit code 0 or 2 (or 1 through the error boundary, with its log), no
traceback on stderr, and at most two lines there. The default run tries a few dozen cases per property; set
HYPOTHESIS_PROFILE=thorough (or run the slow-marked test) for hundreds."""

import os
import shutil
import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny_study, write_image
from vitswin.cli import main
from vitswin.errors import VitswinError

settings.register_profile(
    "default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def assert_handled(code: int, err: str) -> None:
    """The boundary's promise: a known exit code, no traceback, one or two lines; exit 1 names a log that exists."""
    lines = err.strip().splitlines()
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err, err
    assert len(lines) <= 2, err
    if code == 1:
        log_file = Path(lines[-1].split("the details are in ")[1].split(" (rerun")[0])
        assert "Traceback" in log_file.read_text()
    elif code == 2:
        assert lines and lines[-1].startswith("vitswin: error: "), err


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


# --- config overrides -------------------------------------------------------------------------------------------

KEYS = [
    "name",
    "seeds",
    "seed",
    "out_dir",
    "devices",
    "accelerator",
    "data",
    "data.val_split",
    "data.train_size",
    "data.image_size",
    "data.bad_images",
    "data.mean",
    "data.seed",
    "models",
    "models.vit",
    "models.vit.name",
    "models.vit.pretrained",
    "models.vit.input_size",
    "models.vit.options",
    "models.vit.options.patch_size",
    "models.vit.augment.scale",
    "models.vit.augment.translate",
    "models.vit.train.lr",
    "models.vit.train.batch_size",
    "models.vit.train.scheduler",
    "models.vit.train.warmup_epochs",
    "models.vit.train.precision",
    "models.vit.explain_layer",
]
YAML_FRAGMENTS = ["[", "]", "{", "}", ":", "- ", "[0.9,", "{a: 1", "!!python/object:os.system", "&a", "*a", "~", "null", "'", '"']
VALUES = st.one_of(
    st.integers(-5, 100_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(YAML_FRAGMENTS),
    st.lists(st.sampled_from([*YAML_FRAGMENTS, "0", "1.5", "x", "é", " "]), max_size=5).map("".join),
    st.text(max_size=12),
)
OVERRIDES = st.tuples(st.one_of(st.sampled_from(KEYS), st.text(string.ascii_letters + "._", min_size=1, max_size=12)), VALUES)


@given(overrides=st.lists(OVERRIDES, min_size=1, max_size=3))
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_generated_overrides_are_refused_in_one_sentence(capsys: pytest.CaptureFixture, overrides: list) -> None:
    check_overrides(capsys, overrides)


@pytest.mark.slow
@given(overrides=st.lists(OVERRIDES, min_size=1, max_size=4))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_many_generated_overrides(capsys: pytest.CaptureFixture, overrides: list) -> None:
    check_overrides(capsys, overrides)


def check_overrides(capsys: pytest.CaptureFixture, overrides: list) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp_path = Path(folder)
        raw = tiny_study(tmp_path, source="imagefolder", root=str(tmp_path / "no-images-here"))
        config = tmp_path / "study.yaml"
        config.write_text(yaml.safe_dump(raw))
        sets = [argument for key, value in overrides for argument in ("--set", f"{key}={value}")]
        # The data folder does not exist, so whatever the overrides, no model trains: the run ends in a check.
        code, err = run_cli(capsys, "train", str(config), "--model", "vit", "--out", str(tmp_path / "out"), *sets)
        assert_handled(code, err)
        assert code != 0
        written = {path.name for path in tmp_path.iterdir()}
        assert written <= {"study.yaml", "out", "cache", "runs"}, written  # nothing outside the study's folders


# --- data folders -----------------------------------------------------------------------------------------------

NAME_BYTES = st.one_of(
    st.text(string.ascii_letters + string.digits + "_-. éß中", min_size=1, max_size=8).map(str.encode),
    st.binary(min_size=1, max_size=6),
).filter(lambda name: b"/" not in name and b"\0" not in name and name not in (b".", b".."))
FILE_KINDS = st.sampled_from(["png", "jpg-gray", "empty", "garbage", "text-as-png", "symlink-missing", "nested", "unreadable"])


def make_entry(folder: Path, name: bytes, kind: str, index: int) -> None:
    stem = os.fsencode(folder) + b"/" + name
    if kind == "png":
        write_image(Path(os.fsdecode(stem + b".png")), seed=index)
    elif kind == "jpg-gray":
        write_image(Path(os.fsdecode(stem + b".jpg")), mode="L", seed=index)
    elif kind == "empty":
        Path(os.fsdecode(stem + b".png")).write_bytes(b"")
    elif kind == "garbage":
        Path(os.fsdecode(stem + b".jpeg")).write_bytes(bytes(range(index % 200, 256)))
    elif kind == "text-as-png":
        Path(os.fsdecode(stem + b".png")).write_text("not an image")
    elif kind == "symlink-missing":
        os.symlink(b"/nonexistent/target.png", stem + b".png")
    elif kind == "nested":
        write_image(Path(os.fsdecode(stem)) / "deeper" / "image.png", seed=index)
    else:
        path = write_image(Path(os.fsdecode(stem + b".png")), seed=index)
        path.chmod(0)


FOLDERS = st.lists(
    st.tuples(NAME_BYTES, st.lists(st.tuples(NAME_BYTES, FILE_KINDS), max_size=4)), max_size=3, unique_by=lambda c: c[0]
)


@given(classes=FOLDERS, skip_bad=st.booleans())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_generated_data_folders_load_or_are_refused_in_one_sentence(
    capsys: pytest.CaptureFixture, classes: list, skip_bad: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        tmp_path = Path(folder)
        root = tmp_path / "images"
        root.mkdir()
        for class_index, (class_name, entries) in enumerate(classes):
            class_dir = Path(os.fsdecode(os.fsencode(root) + b"/" + class_name))
            class_dir.mkdir(exist_ok=True)
            for index, (name, kind) in enumerate(entries):
                if not os.path.lexists(os.fsencode(class_dir) + b"/" + name + b".png"):
                    make_entry(class_dir, name, kind, 10 * class_index + index)
        raw = tiny_study(tmp_path, source="imagefolder", root=str(root), bad_images="skip" if skip_bad else "fail")
        for key in ("train_size", "test_size"):
            raw["data"].pop(key)
        config = tmp_path / "study.yaml"
        config.write_text(yaml.safe_dump(raw))

        def data_loaded(*_: object) -> None:
            raise VitswinError("stop here: the data loaded.")  # training is tested elsewhere; this is about the data

        patch.setattr("vitswin.study.train_model", data_loaded)
        code, err = run_cli(capsys, "train", str(config), "--model", "vit")
        assert_handled(code, err)
        assert code == 2  # a known problem with the data, or the stop after it loaded


# --- damaged run and study folders ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("finished")
    raw = tiny_study(tmp_path, train_size=200, test_size=40)
    raw["models"]["vit"]["train"]["max_epochs"] = 1
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config), "--model", "vit"]) == 0
    return tmp_path / "runs" / "tiny"


RUN_FILES = ["config.yaml", "fit.json", "best.safetensors", "train.json", "metrics.json", "predictions.npz", "history.csv"]
DAMAGE = st.sampled_from(["delete", "truncate", "garbage", "empty", "folder"])


def damage(path: Path, how: str, cut: float) -> None:
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[: int(cut * path.stat().st_size)])
    elif how == "garbage":
        path.write_bytes(b"\x00\xff garbage {[" * 3)
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
        path.mkdir()


@given(
    damages=st.lists(st.tuples(st.sampled_from(RUN_FILES), DAMAGE, st.floats(0, 1)), min_size=1, max_size=2),
    command=st.sampled_from(["evaluate", "explain", "report"]),
)
@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_generated_damaged_run_folders_give_one_sentence(
    capsys: pytest.CaptureFixture, finished_run: Path, damages: list, command: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder) / "tiny"
        shutil.copytree(finished_run, study)
        run_dir = study / "vit" / "seed-0"
        for name, how, cut in damages:
            if (run_dir / name).is_file():
                damage(run_dir / name, how, cut)
        arguments = {
            "evaluate": ["evaluate", str(run_dir)],
            "explain": ["explain", str(run_dir), "--images", "2", "--method", "eigencam", "--no-road"],
            "report": ["report", str(study)],
        }[command]
        assert_handled(*run_cli(capsys, *arguments))
