"""Distributed training through Lightning: sharding, batch splitting, one set of artifacts, and results equal
to a single process's (2 CPU processes, gloo)."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import tiny_study
from vitswin.cli import main
from vitswin.config import load_config
from vitswin.errors import VitswinError
from vitswin.evaluation import evaluate_run
from vitswin.model.network import build_network
from vitswin.training import batching
from vitswin.training.batching import ShardBatches, TrainingBatches
from vitswin.training.distributed import is_main_process, split_batch

TORCHRUN = Path(sys.executable).parent / "torchrun"


def batches_per_rank(sampler: torch.utils.data.Sampler, world: int, monkeypatch: pytest.MonkeyPatch) -> list[list]:
    """The batches each of `world` processes would draw from `sampler`, and checks they agree on the count."""
    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(batching, "process_group", lambda rank=rank: (rank, world))
        per_rank.append(list(sampler))
        assert len(sampler) == len(per_rank[-1])
    assert len({len(batches) for batches in per_rank}) == 1  # DDP needs the same number of steps everywhere
    return per_rank


@pytest.mark.parametrize(("world", "accumulate"), [(2, 1), (4, 1), (2, 2), (3, 2)])
def test_training_batches_split_each_step_of_the_single_process_order(
    world: int, accumulate: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    size, batch_size = 100, 12
    single = batches_per_rank(TrainingBatches(size, batch_size, seed=3), 1, monkeypatch)[0]
    sampler = TrainingBatches(size, batch_size, accumulate, seed=3)
    sampler.set_epoch(0)
    per_rank = batches_per_rank(sampler, world, monkeypatch)
    for step, whole in enumerate(single[: len(per_rank[0]) // accumulate]):
        parts = [batch for rank in per_rank for batch in rank[step * accumulate : (step + 1) * accumulate]]
        assert sorted(index for part in parts for index in part) == sorted(whole)
        if len(whole) == batch_size:  # full steps: every micro-batch holds the same number of images
            assert {len(part) for part in parts} == {batch_size // (world * accumulate)}
    # The last step of 100 = 8 x 12 + 4 images: kept when every micro-batch gets an image, dropped otherwise.
    assert len(per_rank[0]) == accumulate * (9 if world * accumulate <= 4 else 8)
    seen = [index for rank in per_rank for batch in rank for index in batch]
    assert len(seen) == len(set(seen))


def test_training_batches_differ_between_epochs_and_repeat_within_one(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = TrainingBatches(50, 10, seed=1)
    first = batches_per_rank(sampler, 2, monkeypatch)
    assert batches_per_rank(sampler, 2, monkeypatch) == first
    sampler.set_epoch(1)
    assert batches_per_rank(sampler, 2, monkeypatch) != first


@pytest.mark.parametrize(("size", "world"), [(7, 3), (100, 2), (2, 4), (64, 8)])
def test_shards_cover_the_set_once_in_order(size: int, world: int, monkeypatch: pytest.MonkeyPatch) -> None:
    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(batching, "process_group", lambda rank=rank: (rank, world))
        sampler = ShardBatches(size, batch_size=3)
        per_rank.append([index for batch in sampler for index in batch])
        assert len(sampler) == -(-len(per_rank[-1]) // 3)
    assert [index for share in per_rank for index in share] == list(range(size))  # no padding, nothing dropped
    assert max(map(len, per_rank)) - min(map(len, per_rank)) <= 1


def test_split_batch() -> None:
    assert split_batch(64, None, 1) == (64, 1)
    assert split_batch(64, None, 4) == (16, 1)
    assert split_batch(64, 8, 4) == (8, 2)
    assert split_batch(64, 32, 1) == (32, 2)
    with pytest.raises(
        VitswinError,
        match=r"^train.batch_size 30 cannot be split evenly between 4 processes; "
        r"choose a batch size that is a multiple of 4.$",
    ):
        split_batch(30, None, 4)
    with pytest.raises(
        VitswinError,
        match=r"^train.micro_batch_size 5 does not divide the 16 images each of the 4 "
        r"processes gets per step \(train.batch_size 64\); choose a divisor of 16.$",
    ):
        split_batch(64, 5, 4)


@pytest.mark.parametrize(
    ("env", "is_main"),
    [
        ({}, True),
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),
        ({"RANK": "3", "LOCAL_RANK": "1"}, False),  # torchrun
        ({"LOCAL_RANK": "1"}, False),  # a process started by Lightning's launcher
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),
        ({"SLURM_PROCID": "2"}, False),
        ({"SLURM_PROCID": "0"}, True),
        ({"SLURM_PROCID": "0", "LOCAL_RANK": "1"}, False),  # Lightning's launcher inside a SLURM job
    ],
)
def test_main_process_from_the_launchers_environment(env: dict, is_main: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert is_main_process() is is_main


def test_hardware_the_machine_lacks_is_one_sentence(tmp_path: Path) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tiny_study(tmp_path)))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vitswin.cli",
            "train",
            str(config),
            "--model",
            "vit",
            "--accelerator",
            "cpu",
            "--devices",
            "2",
            "--strategy",
            "fsdp",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vitswin: error: the hardware settings (accelerator cpu, devices 2, num_nodes 1, strategy fsdp) cannot be "
        "used here: The strategy `fsdp` requires a GPU accelerator, but received `accelerator='cpu'`. Please set "
        "`accelerator='cuda'`, `accelerator='gpu'`, or pass a `CUDAAccelerator()` instance to use FSDP."
    ]
    assert main(["train", str(config), "--model", "vit", "--devices", "0"]) == 2


# --- two real processes (gloo on CPU) ---------------------------------------------------------------------------


def cli(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "vitswin.cli", *arguments]


def files_under(folder: Path) -> list[str]:
    """Every file's path; TensorBoard event files are named by time, host and process, so by their kind alone."""
    names = (str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    return sorted(re.sub(r"events\.out\.tfevents\..*", "events.out.tfevents", name) for name in names)


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [{key: value for key, value in row.items() if key != "epoch_time_s"} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def two_process_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs' single-machine command: `vitswin study CONFIG --accelerator cpu --devices 2`."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    raw = tiny_study(tmp_path, train_size=600, test_size=101)  # 101: the two test shards differ in length
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(raw))
    subprocess.run(
        cli("study", str(config), "--no-explain", "--accelerator", "cpu", "--devices", "2", "--out", str(tmp_path / "two")),
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert main(["study", str(config), "--no-explain", "--accelerator", "cpu", "--out", str(tmp_path / "one")]) == 0
    return tmp_path


@pytest.mark.slow
def test_two_processes_evaluate_the_whole_test_set_once(two_process_study: Path) -> None:
    study = two_process_study / "two" / "tiny"
    for key in ("vit", "swin"):
        run_dir = study / key / "seed-0"
        written = json.loads((run_dir / "metrics.json").read_text())
        assert json.loads((run_dir / "train.json").read_text())["processes"] == 2
        single = two_process_study / "single" / key / "seed-0"
        shutil.copytree(run_dir, single)
        again = evaluate_run(single)  # one process, the saved weights
        assert written["num_images"] == again["num_images"] == 101
        assert written["accuracy"] == again["accuracy"]
        assert written["confusion_matrix"] == again["confusion_matrix"]
        assert sum(map(sum, written["confusion_matrix"])) == 101
        assert len(read_history(run_dir)) == json.loads((run_dir / "train.json").read_text())["epochs_run"]


@pytest.mark.slow
def test_two_processes_write_one_set_of_artifacts(two_process_study: Path) -> None:
    assert files_under(two_process_study / "two") == files_under(two_process_study / "one")
    assert not list((two_process_study / "two").rglob("*.tmp"))


def step_config(tmp_path: Path, **train: object) -> Path:
    """One model, one optimizer step of 32 images, nothing random but the initialisation."""
    raw = tiny_study(tmp_path, train_size=40, test_size=20, val_split=0.2)
    del raw["models"]["swin"]
    raw["models"]["vit"]["augment"] = {}
    raw["models"]["vit"]["train"] = {"batch_size": 32, "max_epochs": 1, "lr": 1e-3, "scheduler": "none", "patience": 0, **train}
    path = tmp_path / f"step{len(list(tmp_path.glob('step*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_one_step_on_two_processes_equals_one_step_on_one(tmp_path: Path) -> None:
    """2 processes x 16 images == 1 process x 32 images == 1 process x 2 accumulated micro-batches of 16."""
    runs = {
        "two processes": ("--devices", "2"),
        "one process": ("--devices", "1"),
        "accumulated": ("--devices", "1", "--set", "models.vit.train.micro_batch_size=16"),
    }
    weights = {}
    for name, options in runs.items():
        command = ["train", str(step_config(tmp_path)), "--model", "vit", "--accelerator", "cpu", "--out", str(tmp_path / name)]
        if "2" in options:  # two processes need a process of their own to launch them
            subprocess.run(cli(*command, *options), check=True, capture_output=True, timeout=300)
        else:
            assert main([*command, *options]) == 0
        weights[name] = load_file(tmp_path / name / "tiny" / "vit" / "seed-0" / "best.safetensors")
    pl.seed_everything(0, verbose=False)  # the initialisation every run started from
    config = load_config(step_config(tmp_path))
    initial = build_network(
        config.models["vit"],
        len(json.loads((tmp_path / "one process" / "tiny" / "vit" / "seed-0" / "metrics.json").read_text())["class_names"]),
    ).state_dict()
    assert max(float((weights["one process"][key] - value).abs().max()) for key, value in initial.items()) > 1e-4
    for name in ("two processes", "accumulated"):
        for key, value in weights["one process"].items():
            torch.testing.assert_close(weights[name][key], value, rtol=1e-4, atol=1e-6, msg=f"{name}: {key}")


# The docs' torchrun command on one machine, up to the vitswin command line.
TWO_TORCHRUN_PROCESSES = (str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "-m", "vitswin")


@pytest.mark.slow
def test_torchrun_runs_the_same_study(two_process_study: Path) -> None:
    """The docs' torchrun command on one machine: the same processes, started by torchrun instead of Lightning."""
    out = two_process_study / "torchrun"
    subprocess.run(
        [
            *TWO_TORCHRUN_PROCESSES,
            "study",
            str(two_process_study / "study.yaml"),
            "--no-explain",
            "--accelerator",
            "cpu",
            "--devices",
            "2",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert files_under(out) == files_under(two_process_study / "two")
    for key in ("vit", "swin"):
        assert json.loads((out / "tiny" / key / "seed-0" / "train.json").read_text())["processes"] == 2
        assert json.loads((out / "tiny" / key / "seed-0" / "metrics.json").read_text())["num_images"] == 101
    # Launched as 2 processes but configured for 1: refused, rather than training twice side by side.
    refused = subprocess.run(
        [
            *TWO_TORCHRUN_PROCESSES,
            "train",
            str(two_process_study / "study.yaml"),
            "--model",
            "vit",
            "--accelerator",
            "cpu",
            "--out",
            str(two_process_study / "refused"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode != 0
    assert (
        "vitswin: error: this command runs as one of 2 processes started by torchrun or SLURM, but the config "
        "trains with 1 (devices 1 x num_nodes 1)"
    ) in refused.stderr
    assert not (two_process_study / "refused" / "tiny" / "vit").exists()


@pytest.mark.slow
def test_a_killed_distributed_run_resumes_to_the_uninterrupted_result(two_process_study: Path) -> None:
    """Killed after its first epoch, a two-process run resumes to what the uninterrupted two-process study trained."""
    out = two_process_study / "killed"
    command = cli("train", str(two_process_study / "study.yaml"), "--model", "vit", "--accelerator", "cpu", "--devices", "2")
    run_dir = out / "tiny" / "vit" / "seed-0"
    # A new session, so that one signal reaches the launcher and the process it started.
    process = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not ((run_dir / "history.csv").is_file() and len(read_history(run_dir)) >= 1):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (run_dir / "metrics.json").exists()

    subprocess.run([*command, "--out", str(out)], check=True, capture_output=True, timeout=300)
    whole = two_process_study / "two" / "tiny" / "vit" / "seed-0"
    assert read_history(run_dir) == read_history(whole)
    for key in ("accuracy", "confusion_matrix"):
        assert json.loads((run_dir / "metrics.json").read_text())[key] == json.loads((whole / "metrics.json").read_text())[key]
