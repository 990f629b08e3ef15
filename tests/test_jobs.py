"""Runs side by side: how many train at once, equal results to one after another, and a failed run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import run_cli, session_processes, tiny_study
from vitswin.cli import main
from vitswin.config import Hardware, StudyConfig, validate_config
from vitswin.errors import VitswinError
from vitswin.training.jobs import job_count, run_threads, train_side_by_side


@pytest.fixture
def one_thread():
    """PyTorch at one thread in this process, as each of two workers gets on 2 cores: runs compute alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_auto_is_one_job_per_cpu_thread_and_never_more_than_the_runs() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert job_count("auto", Hardware("cpu"), 6) == 4
        assert job_count("auto", Hardware("cpu"), 3) == 3
        assert job_count("auto", Hardware("cpu"), 0) == 1
    finally:
        torch.set_num_threads(before)
    assert job_count(3, Hardware("cpu"), 2) == 2
    assert job_count(1, Hardware("cpu"), 6) == 1


def test_runs_side_by_side_do_not_mix_with_distributed_training() -> None:
    assert job_count("auto", Hardware("cpu", devices=2), 6) == 1
    with pytest.raises(VitswinError) as error:
        job_count(2, Hardware("cpu", devices=2), 6)
    assert str(error.value) == (
        "jobs 2 cannot be combined with training in several processes (devices 2, num_nodes 1); set jobs to 1, "
        "or start one 'vitswin train' per run instead."
    )


def test_jobs_with_several_devices_are_refused_before_anything_is_written(tmp_path: Path, capsys) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tiny_study(tmp_path)))
    code, err = run_cli(capsys, "study", str(config), "--jobs", "2", "--devices", "2", "--accelerator", "cpu")
    assert code == 2 and "jobs 2 cannot be combined with training in several processes" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_runs_side_by_side_equal_runs_one_after_another(tmp_path: Path, capfd: pytest.CaptureFixture, one_thread) -> None:
    raw = {**tiny_study(tmp_path), "seeds": [0, 1]}
    raw["models"]["vit"]["train"]["max_epochs"] = 2
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config), "--model", "vit", "--out", str(tmp_path / "apart"), "--jobs", "2"]) == 0
    out = capfd.readouterr().out
    assert "Training 2 runs, 2 at a time (1 CPU thread(s) each)" in out
    assert "[vit seed 0] Epoch 2/2" in out and "[vit seed 1] Epoch 2/2" in out  # each worker's lines named
    assert main(["train", str(config), "--model", "vit", "--out", str(tmp_path / "serial"), "--jobs", "1"]) == 0
    assert "at a time" not in capfd.readouterr().out
    for seed in (0, 1):
        apart, serial = (tmp_path / way / "tiny" / "vit" / f"seed-{seed}" for way in ("apart", "serial"))
        assert (apart / "predictions.npz").read_bytes() == (serial / "predictions.npz").read_bytes()
        assert (apart / "best.safetensors").read_bytes() == (serial / "best.safetensors").read_bytes()
        recorded = [json.loads((folder / "train.json").read_text()) for folder in (apart, serial)]
        assert [r["cpu_threads"] for r in recorded] == [1, 1]
        assert all(r["started_at"] < r["finished_at"] and r["host"] for r in recorded)
    # One after another, the recorded spans do not overlap (side by side they overlap only if the second worker
    # started in time: on a loaded machine one worker may train both, and the spans say so).
    serial = [json.loads((tmp_path / "serial" / "tiny" / "vit" / f"seed-{seed}" / "train.json").read_text()) for seed in (0, 1)]
    assert serial[0]["finished_at"] <= serial[1]["started_at"]
    summary = json.loads((tmp_path / "apart" / "tiny" / "summary.json").read_text())
    assert [(row["model"], row["seed"]) for row in summary["runs"]] == [("vit", 0), ("vit", 1)]
    # Finished runs are reused in this process: no workers to start for nothing.
    assert main(["train", str(config), "--model", "vit", "--out", str(tmp_path / "apart"), "--jobs", "2"]) == 0
    out = capfd.readouterr().out
    assert "at a time" not in out and out.count("already trained and evaluated") == 2


def _train_or_fail(config: StudyConfig, key: str, seed: int, splits: object) -> int:
    """A stand-in for training, run in a worker: seed 0 fails at once, seed 1 takes a while and leaves a file."""
    if seed == 0:
        raise VitswinError("seed 0 cannot be trained.")
    time.sleep(2)
    (Path(config.out_dir) / f"{key}-{seed}").write_text("trained")
    return seed


@pytest.mark.slow
def test_a_failed_run_lets_the_started_ones_finish_and_is_raised(tmp_path: Path) -> None:
    config = validate_config({**tiny_study(tmp_path), "out_dir": str(tmp_path)})
    with pytest.raises(VitswinError, match="^seed 0 cannot be trained.$"):
        train_side_by_side(_train_or_fail, config, [("vit", 0), ("vit", 1)], splits=None, jobs=2, threads=1)
    assert (tmp_path / "vit-1").read_text() == "trained"


@pytest.fixture(scope="module")
def killable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A study of two ViT runs trained side by side, and its uninterrupted result folder."""
    folder = tmp_path_factory.mktemp("killable")
    raw = {**tiny_study(folder), "seeds": [0, 1]}
    raw["models"] = {"vit": {**raw["models"]["vit"], "train": {**raw["models"]["vit"]["train"], "max_epochs": 3}}}
    config = folder / "study.yaml"
    config.write_text(yaml.safe_dump(raw))
    subprocess.run(_train(config, folder / "uninterrupted"), check=True, capture_output=True)
    return config, folder / "uninterrupted" / "tiny" / "vit"


def _train(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "vitswin.cli", "train", str(config), "--model", "vit", "--out", str(out), "--jobs", "2"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("victim", ["parent", "worker"])
def test_a_killed_study_leaves_no_process_and_its_rerun_equals_an_uninterrupted_one(killable, victim: str) -> None:
    config, uninterrupted = killable
    out = config.parent / f"killed-{victim}"
    runs = [out / "tiny" / "vit" / f"seed-{seed}" for seed in (0, 1)]
    process = subprocess.Popen(
        _train(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not all((run / "history.csv").is_file() for run in runs):  # both workers past their first epoch
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    worker = int((runs[1] / ".lock").read_text().split()[1])
    os.kill(process.pid if victim == "parent" else worker, signal.SIGKILL)
    if victim == "worker":
        code = process.wait(timeout=60)
        error = process.stderr.read().strip()
        assert code != 0 and len(error.splitlines()) == 1, error
        assert error.startswith("vitswin: error: the worker process training run vit seed 1 was killed by SIGKILL"), error
    stopped = time.monotonic() + 10
    while session_processes(process.pid) and time.monotonic() < stopped:
        time.sleep(0.1)
    assert not session_processes(process.pid), f"left running after 10 s: {session_processes(process.pid)}"
    process.wait(timeout=10)
    subprocess.run(_train(config, out), check=True, capture_output=True)
    for seed, run in enumerate(runs):
        for name in ("best.safetensors", "predictions.npz"):
            assert (run / name).read_bytes() == (uninterrupted / f"seed-{seed}" / name).read_bytes()


def test_threads_per_run_follow_jobs_not_the_runs_left() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert run_threads("auto", Hardware("cpu")) == 1 and run_threads(2, Hardware("cpu")) == 2
        assert run_threads(1, Hardware("cpu")) == 4 and run_threads(8, Hardware("cpu")) == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_a_run_with_another_thread_count_than_the_studys_is_refused(tmp_path: Path, capsys) -> None:
    raw = tiny_study(tmp_path)
    raw["models"] = {"vit": {**raw["models"]["vit"], "train": {**raw["models"]["vit"]["train"], "max_epochs": 1}}}
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config), "--model", "vit"]) == 0
    train_file = tmp_path / "runs" / "tiny" / "vit" / "seed-0" / "train.json"
    recorded = json.loads(train_file.read_text())
    threads = recorded["cpu_threads"]
    train_file.write_text(json.dumps({**recorded, "cpu_threads": threads + 1}))  # as if trained with another share
    code, err = run_cli(capsys, "train", str(config), "--model", "vit", "--set", "seeds=[1]")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"were trained with {threads + 1} CPU thread(s) each and these would get {threads}" in err
    assert not (tmp_path / "runs" / "tiny" / "vit" / "seed-1").exists()
