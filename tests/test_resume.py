"""Reliability: a training run killed with SIGKILL resumes to exactly the uninterrupted result, artifacts are
never half-written, and checkpoints that would run code are refused without running it."""

import contextlib
import csv
import json
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from conftest import tiny_study, write_vit_study
from vitswin.artifacts import remove_stale_temporaries
from vitswin.cli import main
from vitswin.config import load_config, to_yaml
from vitswin.errors import VitswinError
from vitswin.model.network import build_network
from vitswin.study import run_config


def train_arguments(config: Path, out: Path) -> list[str]:
    return ["train", str(config), "--model", "vit", "--out", str(out)]


def train_command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "vitswin.cli", *train_arguments(config, out)]


def resume(config: Path, out: Path, capfd: pytest.CaptureFixture) -> str:
    """Run the interrupted command again, in this process (no second start-up); what it printed."""
    capfd.readouterr()
    assert main(train_arguments(config, out)) == 0, capfd.readouterr().err[-2000:]
    return capfd.readouterr().out


def read_history(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [{key: value for key, value in row.items() if key != "epoch_time_s"} for row in csv.DictReader(handle)]


def outcome(run_dir: Path) -> tuple:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return read_history(run_dir), metrics["accuracy"], metrics["confusion_matrix"]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_vit_study(tmp_path_factory.mktemp("resume"), max_epochs=4, train_size=1500)


@pytest.fixture(scope="module")
def uninterrupted(config: Path) -> tuple:
    out = config.parent / "uninterrupted"
    subprocess.run(train_command(config, out), check=True, capture_output=True)
    return outcome(out / "tiny" / "vit" / "seed-0")


def wait_for(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the planned kill"
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_at_a_random_point_then_resume_matches_an_uninterrupted_run(
    config: Path, uninterrupted: tuple, capfd: pytest.CaptureFixture
) -> None:
    rng = random.Random(1)  # with the kill in epoch 3 below, two kill points per run of the suite
    epochs_done, delay = rng.randint(0, 3), rng.uniform(0, 0.5)  # the kill point: this far into that epoch
    out = config.parent / "killed-at-random"
    run_dir = out / "tiny" / "vit" / "seed-0"
    process = subprocess.Popen(train_command(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(
        lambda: (
            len(read_history(run_dir)) >= epochs_done
            if (run_dir / "history.csv").exists()
            else epochs_done == 0 and (run_dir / "config.yaml").exists()
        ),
        process,
    )
    time.sleep(delay)
    assert process.poll() is None, "the run ended before the planned kill"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "metrics.json").exists()

    printed = resume(config, out, capfd)
    assert outcome(run_dir) == uninterrupted
    if epochs_done > 0:
        assert "Resuming from" in printed


def default_ctrl_c() -> None:
    """In the child before it starts: Ctrl-C handled normally, even where the test process ignores it (a process
    started with SIGINT ignored keeps ignoring it, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_run_resumes(config: Path, uninterrupted: tuple, capfd: pytest.CaptureFixture) -> None:
    out = config.parent / "interrupted"
    run_dir = out / "tiny" / "vit" / "seed-0"
    for _attempt in range(3):  # on a busy machine the short run may finish before the signal reaches it
        shutil.rmtree(out, ignore_errors=True)
        process = subprocess.Popen(
            train_command(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=default_ctrl_c
        )
        wait_for(lambda: (run_dir / "history.csv").exists() and len(read_history(run_dir)) >= 1, process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
        if not (run_dir / "train.json").exists():
            break
    assert process.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "vitswin: interrupted; finished runs and the last epoch's checkpoint are kept: run the same command again to resume."
    )
    assert "Traceback" not in err
    resume(config, out, capfd)
    assert outcome(run_dir) == uninterrupted


def files_with_times(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_a_finished_run_is_reused_and_a_changed_config_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["vit"]["train"]["max_epochs"] = 1
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    assert main(["train", str(path), "--model", "vit", "--out", str(out)]) == 0
    assert set(json.loads((out / "tiny" / "stages.json").read_text())) == {"train/vit/seed-0"}
    weights = out / "tiny" / "vit" / "seed-0" / "best.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert main(["train", str(path), "--model", "vit", "--out", str(out)]) == 0
    assert weights.stat().st_mtime_ns == stamp  # not retrained
    before = files_with_times(out)
    assert main(["train", str(path), "--model", "vit", "--out", str(out), "--set", "models.vit.train.lr=0.1"]) == 2
    assert "holds a study with a different config; choose another --out" in capsys.readouterr().err
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    assert main(["study", str(path), "--out", str(out), "--set", f"models.swin.pretrained={tmp_path / 'bad.safetensors'}"]) == 2
    assert "bad.safetensors could not be read" in capsys.readouterr().err
    assert main(["train", str(path), "--model", "vit", "--out", str(out), "--set", "data.train_size=2"]) == 2
    assert files_with_times(out) == before  # refused runs change nothing, not even a timestamp
    # The same study with its output folder spelled another way is the same study: reused, not refused.
    assert main(["train", str(path), "--model", "vit", "--out", f"{out}/"]) == 0
    assert weights.stat().st_mtime_ns == stamp


WRITER = """
import sys, numpy as np, torch
from matplotlib.figure import Figure
from pathlib import Path
from safetensors.torch import save
from vitswin.artifacts import atomic_write_bytes, atomic_write_text, write_csv, write_json, write_npz, write_png
from vitswin.training.fit import AtomicCheckpointIO
folder, round_ = Path(sys.argv[1]), 0
big = np.arange(2_000_000, dtype=np.float32)
figure = Figure(figsize=(12, 12))
figure.subplots().imshow(np.random.default_rng(0).random((400, 400)))
while True:
    round_ += 1
    write_json({"round": round_, "values": big[:200_000].tolist()}, folder / "a.json")
    write_csv([{"round": round_, "value": float(v)} for v in big[:100_000]], folder / "a.csv")
    write_npz(folder / "a.npz", values=big + round_)
    write_png(figure, folder / "a.png")
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.from_numpy(big)}, "round": round_}, folder / "a.ckpt")
    atomic_write_bytes(save({"w": torch.from_numpy(big)}), folder / "a.safetensors")
    atomic_write_text("x" * 5_000_000 + str(round_), folder / "a.md")
    print(round_, flush=True)
"""


def check_complete(folder: Path) -> None:
    """Every artifact present reads back whole."""
    readers = {
        "a.json": lambda p: len(json.loads(p.read_text())["values"]) == 200_000,
        "a.csv": lambda p: len(p.read_text().splitlines()) == 100_001,
        "a.npz": lambda p: np.load(p)["values"].shape == (2_000_000,),
        "a.png": lambda p: Image.open(p).load() is not None or True,
        "a.ckpt": lambda p: torch.load(p, weights_only=True)["state_dict"]["w"].shape == (2_000_000,),
        "a.safetensors": lambda p: load_file(str(p))["w"].shape == (2_000_000,),
        "a.md": lambda p: len(p.read_text()) > 5_000_000,
    }
    for name, read in readers.items():
        if (folder / name).exists():
            assert read(folder / name), name


@pytest.mark.slow
def test_killing_a_writer_never_leaves_a_partial_artifact(tmp_path: Path) -> None:
    rng = random.Random(0)
    for _attempt in range(2):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        process.stdout.readline()  # imported and one full round written: the kill comes while files are replaced
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait()
        check_complete(tmp_path)
    remove_stale_temporaries(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["a.json", "a.csv", "a.npz", "a.png", "a.ckpt", "a.safetensors", "a.md"]
    )


class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_a_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The payload is live: unpickling it without the weights_only guard creates its marker.
    probe = tmp_path / "probe-ran"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()

    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"head.weight": torch.zeros(3, 3)}, "extra": Payload(marker)}, evil)
    model = load_config(None).models["vit"].model_copy(update={"pretrained": str(evil)})
    with pytest.raises(VitswinError, match="was refused: it holds pickled objects other than tensors"):
        build_network(model, 10)
    assert not marker.exists()

    # The same file as a run folder's last checkpoint: resuming refuses it too.
    raw = tiny_study(tmp_path)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    run_dir = tmp_path / "out" / "tiny" / "vit" / "seed-0"
    (run_dir / "checkpoints").mkdir(parents=True)
    config_of_run = run_config(load_config(path, [f"out_dir={tmp_path / 'out'}"]), "vit", 0)
    (run_dir / "config.yaml").write_text(to_yaml(config_of_run))
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(evil.read_bytes())
    code = main(["train", str(path), "--model", "vit", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "last.ckpt was refused: it holds pickled objects other than tensors" in err, err
    assert not marker.exists()


@pytest.mark.slow
def test_a_run_killed_in_epoch_3_trains_only_epochs_3_and_4_again(
    config: Path, uninterrupted: tuple, capfd: pytest.CaptureFixture
) -> None:
    """last.ckpt is rewritten after every epoch, so a resume repeats no finished epoch, and ends where an
    uninterrupted run ends."""
    out = config.parent / "killed-in-epoch-3"
    run_dir = out / "tiny" / "vit" / "seed-0"
    last = run_dir / "checkpoints" / "last.ckpt"

    def last_epoch() -> int:  # 1-based; 0 before the first checkpoint (files are replaced whole)
        return torch.load(last, map_location="cpu", weights_only=True)["epoch"] + 1 if last.is_file() else 0

    process = subprocess.Popen(train_command(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: last_epoch() >= 2, process)
    assert process.poll() is None and last_epoch() == 2, "the run was not killed in epoch 3"
    process.send_signal(signal.SIGKILL)
    process.wait()

    trained = [line.split(",")[0] for line in resume(config, out, capfd).splitlines() if line.startswith("Epoch ")]
    assert trained == ["Epoch 3/4", "Epoch 4/4"]
    assert last_epoch() == 4 and outcome(run_dir) == uninterrupted


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A 4 MB tmpfs to fill up; skipped where this process may not mount one (not root, no mount namespace)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here to fill up")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_training_stops_with_one_sentence_and_resumes(
    config: Path, uninterrupted: tuple, small_disk: Path, capfd: pytest.CaptureFixture
) -> None:
    out = small_disk / "runs"
    run_dir = out / "tiny" / "vit" / "seed-0"
    filler = small_disk / "filler"
    process = subprocess.Popen(train_command(config, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (run_dir / "history.csv").exists() and len(read_history(run_dir)) >= 1, process)
    # Leave too little for the next epoch's checkpoint (about 150 kB here); if training took some of it meanwhile,
    # the filler takes the rest.
    with contextlib.suppress(OSError):
        filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 16 * 1024))
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2, err[-2000:]
    assert err.strip().splitlines() == [
        f"vitswin: error: the disk holding {out / 'tiny'} is full (No space left on device); free some space and run the "
        f"same command again to resume: finished files and the last complete checkpoint are kept."
    ]
    assert not list(run_dir.rglob("*.tmp"))  # no partial file left behind
    for path in run_dir.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".ckpt":
            assert torch.load(path, weights_only=True)["epoch"] >= 0
    assert len(read_history(run_dir)) >= 1
    filler.unlink()
    resume(config, out, capfd)
    assert outcome(run_dir) == uninterrupted
