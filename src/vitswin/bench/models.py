"""`vitswin bench models`: the cost of each model of a study on this machine, and the effect of each speed option.

Per model and input size: parameters, FLOPs per image (forward, and forward plus backward), training and
inference images/s, activation memory per image, peak GPU memory, and the training FLOP rate as a share
of the matrix-multiply peak measured in the same run (in the same number format).
"""

import copy
from dataclasses import asdict, dataclass, replace

import torch

from vitswin.bench.measure import (
    TrainSettings,
    activation_bytes_per_image,
    flops_per_image,
    inference_throughput,
    matmul_peak,
    parameter_count,
    peak_memory_mb,
    train_throughput,
)
from vitswin.config import ModelConfig
from vitswin.models import build_network

OPTIONS = ("channels_last", "compile", "fused_optimizer")


@dataclass(frozen=True)
class ModelBench:
    model: str
    architecture: str
    image_size: int
    settings: str
    batch: int
    parameters_m: float
    forward_gflops: float  # per image
    train_gflops: float  # per image, forward and backward
    train_images_per_s: float
    inference_images_per_s: float
    activation_mb: float  # per image, kept for the backward pass
    peak_gpu_memory_mb: float | None
    train_gflops_per_s: float
    matmul_peak_gflops_per_s: float
    peak_share: float  # training FLOP rate / matmul peak


def option_variants(settings: TrainSettings, compare: bool) -> list[TrainSettings]:
    """The settings asked for, and with `compare` each speed option switched on alone as well."""
    if not compare:
        return [settings]
    variants = [settings, replace(settings, precision="bf16-mixed" if settings.precision == "32" else "32")]
    variants += [replace(settings, **{option: True}) for option in OPTIONS if not getattr(settings, option)]
    return variants


def bench_model(key: str, model: ModelConfig, variants: list[TrainSettings], device: torch.device,
                repeats: int = 3) -> list[ModelBench]:
    """Measure one model under each of `variants` (its FLOPs and activation memory once: they do not depend on them)."""
    network = build_network(model.model_copy(update={"pretrained": "none"}), num_classes=10).to(device)
    size = model.image_size
    forward, train = flops_per_image(network, size), flops_per_image(network, size, train=True)
    activation = activation_bytes_per_image(network, size)
    rows = []
    for settings in variants:
        # The peak is measured right before the model it is compared with: a shared machine's speed drifts.
        peak = matmul_peak(device, torch.bfloat16 if settings.precision == "bf16-mixed" else torch.float32)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        training = train_throughput(copy.deepcopy(network), size, settings, repeats)
        inference = inference_throughput(network, size, settings.batch, repeats, settings.precision)
        rows.append(ModelBench(
            model=key, architecture=model.name, image_size=size, settings=settings.label(), batch=settings.batch,
            parameters_m=parameter_count(network) / 1e6, forward_gflops=forward / 1e9, train_gflops=train / 1e9,
            train_images_per_s=training, inference_images_per_s=inference, activation_mb=activation / 2**20,
            peak_gpu_memory_mb=peak_memory_mb(device), train_gflops_per_s=training * train / 1e9,
            matmul_peak_gflops_per_s=peak / 1e9, peak_share=training * train / peak,
        ))
    return rows


def as_dicts(rows: list[ModelBench]) -> list[dict]:
    return [asdict(row) for row in rows]
