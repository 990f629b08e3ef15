"""What a model costs: parameters, FLOPs per image and inference throughput, measured on this machine."""

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vitswin.models import unfused_attention

THROUGHPUT_BATCH = 32
THROUGHPUT_SECONDS = 1.0  # timed forward passes after one warm-up pass


def parameter_count(network: nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())


def flops_per_image(network: nn.Module, image_size: int) -> float:
    """Floating-point operations (multiply and add counted separately) of one forward pass on one image."""
    # The fused attention kernel of PyTorch's CPU backend is invisible to the FLOP counter; the plain
    # attention it replaces is not.
    with unfused_attention(network), torch.no_grad(), FlopCounterMode(display=False) as counter:
        network.eval()(torch.zeros(1, 3, image_size, image_size, device=_device(network)))
    return float(counter.get_total_flops())


@torch.no_grad()
def inference_throughput(network: nn.Module, image_size: int, batch: int = THROUGHPUT_BATCH,
                         seconds: float = THROUGHPUT_SECONDS) -> float:
    """Images per second of eval-mode forward passes on batches of `batch` random images."""
    device = _device(network)
    images = torch.randn(batch, 3, image_size, image_size, device=device)
    network.eval()(images)  # warm-up: first-call allocations and kernel selection
    passes, start = 0, time.perf_counter()
    while passes == 0 or time.perf_counter() - start < seconds:
        network(images)
        passes += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return passes * batch / (time.perf_counter() - start)


def _device(network: nn.Module) -> torch.device:
    return next(network.parameters()).device
