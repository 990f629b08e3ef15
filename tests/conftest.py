"""Shared fixtures: offline hub, a private cache, small configs and image folders made on the fly."""

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

# Read by huggingface_hub when it is imported, so set before any test imports timm: hub look-ups
# fail at once instead of retrying for a minute, and nothing reaches the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="vitswin-hf-")
# Tests run in parallel workers (pytest-xdist, pyproject's addopts): each gets its share of the cores for PyTorch's
# threads rather than all of them, and the processes its tests start inherit the same share, so a run trained in
# this process and one trained in a child compute alike.
if workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(workers)))

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

atexit.register(shutil.rmtree, os.environ["HF_HOME"], ignore_errors=True)  # set above, before the imports

CIFAR10_JPG = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpg"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def tiny_study(tmp_path: Path, **data: object) -> dict:
    """A raw config for a fast study: two very small models at 16 pixels (on synthetic shapes by default)."""
    recipe = {"batch_size": 32, "max_epochs": 3, "lr": 3e-3, "weight_decay": 0.05, "warmup_epochs": 0.5}
    return {
        "name": "tiny",
        "out_dir": str(tmp_path / "runs"),
        "seeds": [0],
        "data": {
            "source": "shapes",
            "image_size": 16,
            "train_size": 500,
            "test_size": 100,
            "cache_dir": str(tmp_path / "cache"),
            **data,
        },
        "models": {
            "vit": {
                "name": "vit_tiny_patch16_224",
                "input_size": 16,
                "options": {"patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2},
                "augment": {"hflip": True},
                "train": recipe,
            },
            "swin": {
                "name": "swin_tiny_patch4_window7_224",
                "input_size": 16,
                "options": {"patch_size": 2, "window_size": 4, "embed_dim": 16, "depths": [2, 2], "num_heads": [1, 2]},
                "train": recipe,
            },
        },
    }


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run the `vitswin` command in this process; its exit code and what it wrote to stderr."""
    from vitswin.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err


def write_config(tmp_path: Path, raw: dict) -> str:
    """Save a raw config as `tmp_path/study.yaml`; its path."""
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def write_vit_study(tmp_path: Path, max_epochs: int, train_size: int = 500) -> Path:
    """A tiny study's config file in `tmp_path`, its ViT set to train exactly `max_epochs` epochs."""
    raw = tiny_study(tmp_path, train_size=train_size)
    raw["models"]["vit"]["train"].update(max_epochs=max_epochs, patience=0)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (12, 10), seed: int = 0) -> Path:
    """Save a random image of the given PIL mode and size (format from the suffix)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16)).save(path)
    elif mode == "P":
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert("P").save(path)
    else:
        channels = len(mode)
        shape = size[::-1] if channels == 1 else (*size[::-1], channels)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path)  # mode from the shape
    return path


def make_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 4) -> Path:
    for index, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.png", seed=10 * index + i)
    return root


def make_two_colour_folder(root: Path, per_class: int = 600, size: int = 16) -> Path:
    """An easy two-class task: noisy images that are mostly red ("warm") or mostly blue ("cool")."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 3)):
        for label, channel in (("cool", 2), ("warm", 0)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (size, size, 3))
                pixels[..., channel] += 120
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def colour_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[Path]]:
    """A finished two-model study (ViT and Swin, 2 epochs) on the easy two-colour task, shared by the tests that use
    trained runs; returns the data root, the run folders and the test image files in the order of the runs'
    predictions.npz."""
    from vitswin.config import validate_config
    from vitswin.data.imagefolder import IMAGE_SUFFIXES
    from vitswin.data.splits import stratified_split
    from vitswin.study import train_models

    tmp_path = tmp_path_factory.mktemp("colour-study")
    root = make_two_colour_folder(tmp_path / "colours", per_class=150)
    raw = tiny_study(tmp_path, source="imagefolder", root=str(root), test_size=40)
    for model in raw["models"].values():
        model["train"]["max_epochs"] = 2
    config = validate_config(raw)
    summaries = train_models(config)
    classes = sorted(p.name for p in (root / "test").iterdir())
    files = [f for c in classes for f in sorted((root / "test" / c).rglob("*")) if f.suffix in IMAGE_SUFFIXES]
    labels = np.repeat(np.arange(len(classes)), [len(list((root / "test" / c).iterdir())) for c in classes])
    chosen = stratified_split(torch.from_numpy(labels), 40, config.data.seed)[1]
    return root, [Path(s.run_dir) for s in summaries], [files[i] for i in chosen.tolist()]


def session_processes(sid: int) -> list[int]:
    """The live (not zombie) processes of session `sid`: a study started in a session of its own and all it started."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found
