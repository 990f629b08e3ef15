"""Benchmarks: the measurements are right on networks whose cost is known by hand, and every benchmark command
writes its tables. Speeds are only checked for being measured (positive, finite), never against a time."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from conftest import tiny_study
from vitswin.bench.measure import (
    TrainSettings,
    activation_bytes_per_image,
    flops_per_image,
    matmul_peak,
    median_seconds,
    train_throughput,
)
from vitswin.bench.models import option_variants
from vitswin.bench.pipeline import classic_transform
from vitswin.bench.scaling import ScalingRow, growth_exponents, measure_scaling, valid_size
from vitswin.cli import main
from vitswin.config import AugmentConfig
from vitswin.model.transforms import BatchTransform
from vitswin.report.bench import bench_blocks
from vitswin.report.document import Heading, Table
from vitswin.study_folder import StudyFolder


class TwoLayers(nn.Module):
    """Flatten a 3 x 4 x 4 image, then 48 -> 20 -> 5: forward FLOPs 2 x (48 x 20 + 20 x 5) per image."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(48, 20), nn.Linear(20, 5)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(images.flatten(1))))


def test_flops_of_a_known_network() -> None:
    network = TwoLayers()
    assert flops_per_image(network, 4) == 2 * (48 * 20 + 20 * 5)
    # Backward: the gradients of both weights, and of the hidden activations (not of the input image).
    assert flops_per_image(network, 4, train=True) == 2 * (48 * 20 + 20 * 5) * 2 + 2 * 20 * 5
    assert all(parameter.grad is None for parameter in network.parameters())


def test_activation_memory_counts_what_backward_keeps() -> None:
    # Kept per image: the flattened input (48 floats) for the first layer's weight gradient, and the relu output
    # (20), which relu's backward and the second layer's weight gradient share; the weights are not counted.
    assert activation_bytes_per_image(TwoLayers(), 4) == 4 * (48 + 20)


def test_matmul_peak_and_median_timing() -> None:
    calls = []
    seconds = median_seconds(lambda: calls.append(1), torch.device("cpu"), repeats=5, warmup=2)
    assert len(calls) == 7 and 0 <= seconds < 1
    assert 1e8 < matmul_peak(torch.device("cpu")) < 1e14  # between 0.1 GFLOP/s and 100 TFLOP/s


@pytest.mark.parametrize(
    "settings",
    [
        TrainSettings(batch=4),
        TrainSettings(batch=4, precision="bf16-mixed"),
        TrainSettings(batch=4, channels_last=True, fused_optimizer=True),
    ],
)
def test_training_throughput_trains(settings: TrainSettings) -> None:
    network = nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    before = [parameter.detach().clone() for parameter in network.parameters()]
    rate = train_throughput(network, 16, settings, repeats=2)
    assert math.isfinite(rate) and rate > 0
    assert all(not torch.equal(old, new) for old, new in zip(before, network.parameters(), strict=True))


def test_option_variants_switch_each_option_on_alone() -> None:
    base = TrainSettings(batch=8)
    labels = [variant.label() for variant in option_variants(base, True, torch.device("cuda"))]
    assert labels == ["32", "bf16-mixed", "32+channels_last", "32+compile", "32+fused_optimizer"]
    labels = [variant.label() for variant in option_variants(base, True, torch.device("cpu"))]
    assert labels == ["32", "32+channels_last", "32+compile", "32+fused_optimizer"]
    assert option_variants(base, False, torch.device("cpu")) == [base]


def test_classic_transform_matches_the_batched_one_without_augmentation() -> None:
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    batched = BatchTransform(32, mean, std)(images)
    from PIL import Image

    classic = classic_transform(AugmentConfig(), 32, mean, std, resize_first=True)
    per_image = torch.stack([classic(Image.fromarray(image.permute(1, 2, 0).numpy())) for image in images])
    assert per_image.shape == batched.shape == (4, 3, 32, 32)
    # The same resize and normalisation; PIL rounds to uint8 after resizing, hence the tolerance.
    assert (per_image - batched).abs().mean() < 0.02
    steps = [
        type(step).__name__
        for step in classic_transform(
            AugmentConfig(hflip=True, brightness=0.2, degrees=10), 32, mean, std, resize_first=False
        ).transforms
    ]
    assert steps == ["RandomHorizontalFlip", "ColorJitter", "RandomAffine", "Resize", "ToTensor", "Normalize"]


def test_growth_exponents_recover_known_powers() -> None:
    rows = [ScalingRow("linear", size, 0, False, size**2 * 1e-3, size**3 * 1e-4, 1e6 / size**2) for size in (64, 128, 256)] + [
        ScalingRow("quadratic", size, 0, False, size**4 * 1e-9, 1.0, 1.0) for size in (32, 64, 128, 256)
    ]
    exponents = growth_exponents(rows)
    assert exponents["linear"] == pytest.approx({"gflops": 1.0, "activation_mb": 1.5, "seconds_per_image": 1.0})
    assert exponents["quadratic"]["gflops"] == pytest.approx(2.0)  # 32 px is left out of the fit by default


def test_valid_sizes() -> None:
    assert valid_size("vit_base_patch16_224", 48) and not valid_size("vit_base_patch16_224", 40)
    assert valid_size("swin_base_patch4_window7_224", 64) and not valid_size("swin_base_patch4_window7_224", 48)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "study.yaml"
    raw = tiny_study(tmp_path)
    raw["models"]["swin"]["augment"] = {"hflip": True, "brightness": 0.2, "degrees": 10}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_bench_models_writes_its_table(config: Path, tmp_path: Path) -> None:
    assert main(["bench", "models", str(config), "--batch", "4", "--repeats", "1", "--fused-optimizer"]) == 0
    saved = json.loads((tmp_path / "runs" / "tiny" / "bench" / "models.json").read_text())
    assert [row["model"] for row in saved["rows"]] == ["vit", "swin"]
    for row in saved["rows"]:
        assert row["settings"] == "32+fused_optimizer" and row["image_size"] == 16
        assert row["train_gflops"] > 2 * row["forward_gflops"] > 0
        assert 0 < row["peak_share"] < 1.5 and row["train_images_per_s"] > 0
    assert (tmp_path / "runs" / "tiny" / "bench" / "models.csv").read_text().startswith("model,architecture,")
    assert main(["bench", "models", str(config), "--model", "resnet"]) == 2


def test_bench_pipeline_and_engine(config: Path, tmp_path: Path) -> None:
    assert main(["bench", "pipeline", str(config), "--batches", "2", "--workers", "0", "--rounds", "1"]) == 0
    saved = json.loads((tmp_path / "runs" / "tiny" / "bench" / "pipeline.json").read_text())
    assert [row["name"].split(":")[0] for row in saved["rows"]] == ["classic", "classic", "vitswin"]
    assert [row["model"] for row in saved["models"]] == ["vit", "swin"]
    assert all(row["headroom"] > 0 for row in saved["models"])
    assert main(["bench", "engine", str(config), "--steps", "3", "--rounds", "1"]) == 0
    engine = json.loads((tmp_path / "runs" / "tiny" / "bench" / "engine.json").read_text())["rows"][0]
    assert engine["lightning_images_per_s"] > 0 and engine["bare_images_per_s"] > 0
    blocks = bench_blocks(StudyFolder(tmp_path / "runs" / "tiny"))  # what the report shows
    assert blocks[0] == Heading("Benchmarks")
    assert [len(block.rows) for block in blocks if isinstance(block, Table)] == [3, 2]
    assert "overhead" in blocks[-1].text
    assert bench_blocks(StudyFolder(tmp_path)) == []


def test_bench_scaling_writes_table_and_plot(tmp_path: Path) -> None:
    assert (
        main(
            [
                "bench",
                "scaling",
                "--models",
                "vit_tiny_patch16_224",
                "swin_tiny_patch4_window7_224",
                "--sizes",
                "32",
                "64",
                "96",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "bench" / "scaling.json").read_text())
    sizes = {
        model: [row["image_size"] for row in saved["rows"] if row["model"] == model]
        for model in ("vit_tiny_patch16_224", "swin_tiny_patch4_window7_224")
    }
    assert sizes == {"vit_tiny_patch16_224": [32, 64, 96], "swin_tiny_patch4_window7_224": [32, 64, 96]}
    vit = [row for row in saved["rows"] if row["model"] == "vit_tiny_patch16_224"]
    assert [row["tokens"] for row in vit] == [4, 16, 36]
    assert vit[0]["gflops"] < vit[1]["gflops"] < vit[2]["gflops"]
    assert set(saved["exponents"]) == set(sizes)
    assert (tmp_path / "bench" / "scaling.png").stat().st_size > 10_000


def test_bench_epoch_times_one_epoch_of_the_recipe(config: Path, tmp_path: Path) -> None:
    assert main(["bench", "epoch", str(config), "--model", "vit", "--images", "96"]) == 0
    row = json.loads((tmp_path / "runs" / "tiny" / "bench" / "epoch.json").read_text())["rows"][0]
    assert (row["model"], row["images"], row["batch"], row["precision"]) == ("vit", 96, 32, "32")
    assert row["epoch_s"] > 0 and row["images_per_s"] == pytest.approx(96 / row["epoch_s"])
    assert (row["micro_batch"], row["optimizer_steps"], row["forward_passes"]) == (32, 3, 3)


def test_bench_epoch_accumulates_micro_batches_as_fit_does(config: Path, tmp_path: Path) -> None:
    """With train.micro_batch_size, the timed epoch takes the same optimizer steps in 4x as many forward passes."""
    arguments = ["bench", "epoch", str(config), "--model", "vit", "--images", "96"]
    assert main([*arguments, "--set", "models.vit.train.micro_batch_size=8"]) == 0
    row = json.loads((tmp_path / "runs" / "tiny" / "bench" / "epoch.json").read_text())["rows"][0]
    assert (row["batch"], row["micro_batch"], row["optimizer_steps"], row["forward_passes"]) == (32, 8, 3, 12)
    assert main([*arguments, "--set", "models.vit.train.micro_batch_size=5"]) == 2  # does not divide the batch


def test_bench_models_and_scaling_take_a_cnn(tmp_path: Path) -> None:
    raw = tiny_study(tmp_path)
    raw["models"]["cnn"] = {"name": "resnet18", "input_size": 32, "options": {"channels": [16, 32, 64, 128]}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["bench", "models", str(path), "--model", "cnn", "--batch", "4", "--repeats", "1"]) == 0
    row = json.loads((tmp_path / "runs" / "tiny" / "bench" / "models.json").read_text())["rows"][0]
    assert row["architecture"] == "resnet18" and row["image_size"] == 32 and row["train_images_per_s"] > 0
    rows = measure_scaling(("resnet18",), (32, 48, 64), batch=2)
    assert [r.image_size for r in rows] == [32, 64]  # 48 is not a whole number of stride-32 positions
    assert rows[1].tokens == 4 * rows[0].tokens and rows[1].gflops > 3 * rows[0].gflops
