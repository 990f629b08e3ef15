"""The command line: help texts, and every bad input as one line on stderr with a non-zero exit."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_image_folder, run_cli, tiny_study, write_config
from vitswin.cli import main


@pytest.mark.parametrize("command", [[], ["study"], ["train"], ["evaluate"], ["explain"], ["report"], ["predict"], ["export"]])
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_code:
        main([*command, "--help"])
    assert exit_code.value.code == 0 and "usage: vitswin" in capsys.readouterr().out


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    """`vitswin --help` answers at once: importing the CLI and building its parser loads neither PyTorch, Lightning
    nor timm (they load once a command runs)."""
    probe = (
        "import sys; from vitswin.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'lightning', 'timm', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def assert_one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vitswin: error: "), err
    assert expected in lines[0]
    assert "Traceback" not in err


def test_missing_data_folder(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    config = write_config(tmp_path, tiny_study(tmp_path, source="imagefolder", root=str(tmp_path / "nowhere")))
    assert_one_line_error(*run_cli(capsys, "study", config), "nowhere does not exist; set data.root")


def test_empty_class_folder(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images")
    (root / "empty").mkdir()
    config = write_config(tmp_path, tiny_study(tmp_path, source="imagefolder", root=str(root)))
    assert_one_line_error(*run_cli(capsys, "study", config), "empty holds no images")


def test_class_mismatch(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    make_image_folder(tmp_path / "set" / "train", ("a", "b"))
    make_image_folder(tmp_path / "set" / "test", ("a", "c"))
    config = write_config(tmp_path, tiny_study(tmp_path, source="imagefolder", root=str(tmp_path / "set")))
    assert_one_line_error(*run_cli(capsys, "study", config), "class folders differ between train and test")


def test_corrupt_image(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images")
    (root / "cat" / "bad.png").write_bytes(b"garbage")
    config = write_config(tmp_path, tiny_study(tmp_path, source="imagefolder", root=str(root)))
    assert_one_line_error(*run_cli(capsys, "study", config), "bad.png is not a readable image")


def test_unknown_model_name(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["vit"]["name"] = "swin_tiny_patch4_window7_244"
    assert_one_line_error(
        *run_cli(capsys, "study", write_config(tmp_path, raw)),
        "'swin_tiny_patch4_window7_244' is not a timm model name; did you mean swin_tiny_patch4_window7_224",
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("models.vit.train.lrr=1", "unknown config key 'models.vit.train.lrr'; did you mean 'lr'?"),
        ("models.vit.train.lr=-1", "config key 'models.vit.train.lr' has bad value -1"),
        ("models.swin.train.scheduler=linear", "config key 'models.swin.train.scheduler' has bad value 'linear'"),
    ],
)
def test_bad_config_values(capsys: pytest.CaptureFixture, override: str, expected: str) -> None:
    assert_one_line_error(*run_cli(capsys, "study", "--set", override), expected)


def test_hub_offline(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    config = write_config(tmp_path, tiny_study(tmp_path))
    assert_one_line_error(
        *run_cli(capsys, "train", config, "--model", "vit", "--set", "models.vit.pretrained=hub"),
        "could not be fetched from the Hugging Face hub",
    )


def test_unknown_model_key_and_unfinished_run(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert_one_line_error(*run_cli(capsys, "train", "--model", "resnet"), "the config has no model 'resnet'")
    assert_one_line_error(*run_cli(capsys, "evaluate", str(tmp_path)), "is not a finished run folder")
    assert_one_line_error(*run_cli(capsys, "explain", str(tmp_path)), "is not a finished run folder")
    assert_one_line_error(*run_cli(capsys, "report", str(tmp_path)), "is not a study folder (it has no config.yaml)")


def test_errors_from_the_installed_command_have_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vitswin.cli", "study", str(tmp_path / "absent.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"vitswin: error: config file {tmp_path / 'absent.yaml'} does not exist; "
        f"pass the path of a YAML study config."
    )


def test_train_then_evaluate_from_the_command_line(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["vit"]["train"]["max_epochs"] = 1
    config = write_config(tmp_path, raw)
    assert main(["train", config, "--model", "vit", "--out", str(tmp_path / "out")]) == 0
    run_dir = tmp_path / "out" / "tiny" / "vit" / "seed-0"
    assert (run_dir / "metrics.json").is_file()
    assert main(["evaluate", str(run_dir)]) == 0
    assert main(["explain", str(run_dir), "--images", "3", "--method", "eigencam", "--no-road"]) == 0
    assert (run_dir.parent.parent / "explain" / "eigencam" / "seed-0" / "overlay.png").is_file()
    assert_one_line_error(*run_cli(capsys, "explain", str(run_dir), "--images", "0"), "--images must be at least 1, got 0.")
    assert_one_line_error(*run_cli(capsys, "explain", str(run_dir), "--show", "-2"), "--show must be at least 1, got -2.")
    assert_one_line_error(
        *run_cli(capsys, "explain", str(run_dir), str(run_dir)), f"the run folder {run_dir.resolve()} is given twice"
    )


def test_preflight_refuses_unwritable_folders_and_full_disks(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, tiny_study(tmp_path))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = run_cli(capsys, "study", config, "--out", str(blocker / "runs"))
    assert_one_line_error(
        code, err, f"cannot write to {blocker / 'runs' / 'tiny'} (Not a directory); choose a writable folder with --out."
    )
    monkeypatch.setattr("shutil.disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20))
    code, err = run_cli(capsys, "train", config, "--model", "vit", "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "has 1 MB free but the checkpoints need about")


def test_a_diverging_run_stops_with_one_sentence_and_keeps_its_checkpoints(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["vit"]["train"].update(lr=1.0e30, grad_clip=0.0, warmup_epochs=0, max_epochs=2)
    code, err = run_cli(capsys, "train", write_config(tmp_path, raw), "--model", "vit", "--out", str(tmp_path / "out"))
    assert_one_line_error(
        code,
        err,
        "the training loss became nan at epoch 1, batch 2; training stopped, the checkpoints of the epochs before are kept in",
    )


def test_main_run_twice_in_one_process_prints_each_line_once() -> None:
    from vitswin import cli

    cli._configure_logging()
    cli._configure_logging()
    assert sum(isinstance(handler, cli._TqdmHandler) for handler in cli.log.handlers) == 1
