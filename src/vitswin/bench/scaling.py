"""How cost grows with input resolution, to test the published claim that Swin scales linearly with the number
of pixels and ViT quadratically.

For each model and size: forward FLOPs per image (counted, one image), activation memory per image (bytes
kept for the backward pass) and inference images/s (timed). The growth exponent is the slope of a
least-squares line through log(cost) against log(pixels): 1 is linear, 2 quadratic.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from vitswin.bench import SCALING_MODELS, SCALING_SIZES
from vitswin.bench.measure import activation_bytes_per_image, flops_per_image, inference_throughput
from vitswin.config import ModelConfig
from vitswin.model.architecture import takes_size, window_padding
from vitswin.model.network import build_network

CPU = torch.device("cpu")


@dataclass(frozen=True)
class ScalingRow:
    model: str
    image_size: int
    tokens: int  # positions of the first feature map: ViT patches, Swin first-stage tokens, a CNN's stem output
    padded: bool  # Swin: some stage's feature map is padded up to a multiple of the window (computed, wasted)
    gflops: float
    activation_mb: float
    images_per_s: float


def valid_size(name: str, size: int) -> bool:
    """Whether timm model `name` takes `size`-pixel input: a whole number of positions of its last feature map."""
    with torch.device("meta"):  # shapes only: nothing allocated
        return takes_size(build_network(ModelConfig(name=name), 10, weights="random"), size)


def _tokens(network: torch.nn.Module, size: int) -> int:
    """Positions of the first feature map: ViT's patches, Swin's first-stage tokens (before patch merging), a
    CNN's stem output."""
    return (size // network.feature_info[0]["reduction"]) ** 2


def measure_scaling(
    models: tuple[str, ...] = SCALING_MODELS, sizes: tuple[int, ...] = SCALING_SIZES, batch: int = 4, device: torch.device = CPU
) -> list[ScalingRow]:
    """One row per model and valid size (random weights: cost does not depend on their values)."""
    rows = []
    work = [(name, size) for name in models for size in sizes if valid_size(name, size)]
    for name, size in tqdm(work, desc="scaling", unit="size", disable=None):
        network = build_network(ModelConfig(name=name, input_size=size), 10, weights="random").to(device)
        rows.append(
            ScalingRow(
                model=name,
                image_size=size,
                tokens=_tokens(network, size),
                padded=window_padding(network),
                gflops=flops_per_image(network, size) / 1e9,
                activation_mb=activation_bytes_per_image(network, size) / 2**20,
                images_per_s=inference_throughput(network, size, batch=batch, repeats=2),
            )
        )
    return rows


def growth_exponents(rows: list[ScalingRow], smallest: int = 64) -> dict[str, dict[str, float]]:
    """Per model, the fitted exponent of FLOPs, activation memory and time per image against pixels, over the
    sizes from `smallest` on (below it fixed costs such as the classifier dominate)."""
    exponents = {}
    for model in dict.fromkeys(row.model for row in rows):
        own = [row for row in rows if row.model == model and row.image_size >= smallest]
        pixels = np.log([row.image_size**2 for row in own])
        exponents[model] = {
            "gflops": _slope(pixels, [row.gflops for row in own]),
            "activation_mb": _slope(pixels, [row.activation_mb for row in own]),
            "seconds_per_image": _slope(pixels, [1 / row.images_per_s for row in own]),
        }
    return exponents


def _slope(log_x: np.ndarray, values: list[float]) -> float:
    return float(np.polyfit(log_x, np.log(values), 1)[0]) if len(values) > 1 else math.nan
