"""`vitswin bench models`: the cost of each model of a study on this machine, and the effect of each speed option.

Per model and input size: parameters, FLOPs per image (forward, and forward plus backward), training and
inference images/s, activation memory per image, peak GPU memory, and the training FLOP rate as a share
of the matrix-multiply peak measured in the same run (in the same number format).
"""

import copy
import statistics
from dataclasses import dataclass, replace

import torch

from vitswin.bench.measure import (
    TrainSettings,
    activation_bytes_per_image,
    flops_per_image,
    inference_throughput,
    matmul_peak,
    median_seconds,
    peak_memory_mb,
    training_step,
)
from vitswin.config import ModelConfig
from vitswin.model.architecture import parameter_count
from vitswin.model.network import build_network

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


def option_variants(settings: TrainSettings, compare: bool, device: torch.device) -> list[TrainSettings]:
    """The settings asked for, and with `compare` each speed option switched on alone as well. The other
    precision is compared on GPUs only: CPUs without bfloat16 instructions emulate it, many times slower."""
    if not compare:
        return [settings]
    variants = [settings]
    if device.type == "cuda":
        variants.append(replace(settings, precision="bf16-mixed" if settings.precision == "32" else "32"))
    variants += [replace(settings, **{option: True}) for option in OPTIONS if not getattr(settings, option)]
    return variants


def bench_model(
    key: str, model: ModelConfig, variants: list[TrainSettings], device: torch.device, repeats: int = 3
) -> list[ModelBench]:
    """Measure one model under each of `variants`. The variants take turns, one timed step each per round, with
    the matrix-multiply peak measured in every round too: a shared machine's speed drifts over minutes, and
    taking turns lets the drift hit every variant and the peak alike. Medians over the rounds are reported."""
    network = build_network(model, num_classes=10, weights="random").to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # the reported peak covers this model's variants
    size = model.input_size
    forward, train = flops_per_image(network, size), flops_per_image(network, size, train=True)
    activation = activation_bytes_per_image(network, size)
    steps = [training_step(copy.deepcopy(network), size, settings) for settings in variants]
    for settings, step in zip(variants, steps, strict=True):
        for _ in range(3 if settings.compile else 1):  # compilation happens in the first calls; first allocations
            step()
    seconds: list[list[float]] = [[] for _ in variants]
    peaks: dict[str, list[float]] = {}
    for _ in range(repeats):
        for settings in variants:
            dtype = torch.bfloat16 if settings.precision == "bf16-mixed" else torch.float32
            peaks.setdefault(settings.precision, []).append(matmul_peak(device, dtype))
        for times, step in zip(seconds, steps, strict=True):
            times.append(median_seconds(step, device, repeats=1, warmup=0))
    inference = {
        precision: inference_throughput(network, size, variants[0].batch, repeats, precision)
        for precision in dict.fromkeys(settings.precision for settings in variants)
    }
    rows = []
    for settings, times in zip(variants, seconds, strict=True):
        training, peak = settings.batch / statistics.median(times), statistics.median(peaks[settings.precision])
        rows.append(
            ModelBench(
                model=key,
                architecture=model.name,
                image_size=size,
                settings=settings.label(),
                batch=settings.batch,
                parameters_m=parameter_count(network) / 1e6,
                forward_gflops=forward / 1e9,
                train_gflops=train / 1e9,
                train_images_per_s=training,
                inference_images_per_s=inference[settings.precision],
                activation_mb=activation / 2**20,
                peak_gpu_memory_mb=peak_memory_mb(device),
                train_gflops_per_s=training * train / 1e9,
                matmul_peak_gflops_per_s=peak / 1e9,
                peak_share=training * train / peak,
            )
        )
    return rows
