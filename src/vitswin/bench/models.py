"""`vitswin bench models`: the cost of each model of a study on this machine, and the effect of each speed option.

Per model and input size: parameters, FLOPs per image (forward, and forward plus backward), training and
inference images/s, activation memory per image, peak GPU memory, and the training FLOP rate as a share
of the matrix-multiply peak measured in the same run (in the same number format).
"""

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


def bench_model(key: str, model: ModelConfig, settings: TrainSettings, device: torch.device,
                peaks: dict[str, float], repeats: int = 3) -> ModelBench:
    """Measure one model under one setting; `peaks` caches the matmul peak per number format."""
    dtype = torch.bfloat16 if settings.precision == "bf16-mixed" else torch.float32
    if str(dtype) not in peaks:
        peaks[str(dtype)] = matmul_peak(device, dtype)
    network = build_network(model.model_copy(update={"pretrained": "none"}), num_classes=10).to(device)
    size = model.image_size
    forward, train = flops_per_image(network, size), flops_per_image(network, size, train=True)
    activation = activation_bytes_per_image(network, size)
    inference = inference_throughput(network, size, batch=settings.batch, repeats=repeats, precision=settings.precision)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    training = train_throughput(network, size, settings, repeats)
    achieved = training * train
    return ModelBench(
        model=key, architecture=model.name, image_size=size, settings=settings.label(), batch=settings.batch,
        parameters_m=parameter_count(network) / 1e6, forward_gflops=forward / 1e9, train_gflops=train / 1e9,
        train_images_per_s=training, inference_images_per_s=inference, activation_mb=activation / 2**20,
        peak_gpu_memory_mb=peak_memory_mb(device), train_gflops_per_s=achieved / 1e9,
        matmul_peak_gflops_per_s=peaks[str(dtype)] / 1e9, peak_share=achieved / peaks[str(dtype)],
    )


def as_dicts(rows: list[ModelBench]) -> list[dict]:
    return [asdict(row) for row in rows]
