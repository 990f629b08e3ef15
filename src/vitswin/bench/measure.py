"""What a model costs on this machine: FLOPs, memory, training and inference speed, and the matrix-multiply
peak they are compared with. Every speed is the median of repeated timed runs after warm-up."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vitswin.model.network import unfused_attention

THROUGHPUT_BATCH = 32


def median_seconds(run: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of `run` over `repeats` timed calls after `warmup` untimed ones (first-call allocations,
    kernel selection, compilation). CUDA work is waited for, so the time is the device's, not the launch's."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of the fastest of a few large square matrix multiplications: the machine's practical peak."""
    # CPUs without bfloat16 instructions emulate it at a small fraction of the speed: keep those sizes small.
    cpu_sizes = (1024, 2048, 3072) if dtype == torch.float32 else (512, 1024)
    sizes = (4096, 8192) if device.type == "cuda" else cpu_sizes
    best = 0.0
    for size in sizes:
        a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
        seconds = median_seconds(lambda a=a, b=b: torch.mm(a, b), device, repeats=5)
        best = max(best, 2 * size**3 / seconds)
    return best


def flops_per_image(network: nn.Module, image_size: int, train: bool = False) -> float:
    """Floating-point operations (multiply and add counted separately) of one forward pass on one image, and of
    its backward pass too when `train`."""
    device = _device(network)
    # Two images, halved: batch norm in training mode needs more than one value per channel (a CNN's 1x1 map).
    images = torch.zeros(2, 3, image_size, image_size, device=device)
    # The fused attention kernels are invisible to the FLOP counter; the plain attention they replace is not.
    with unfused_attention(network), FlopCounterMode(display=False) as counter, torch.set_grad_enabled(train):
        logits = network.train(train)(images)
        if train:
            logits.sum().backward()
    network.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def activation_bytes_per_image(network: nn.Module, image_size: int) -> int:
    """Bytes of the tensors one training forward pass keeps for the backward pass, per image: the memory that
    grows with batch size and input size (weights, gradients and optimizer state do not)."""
    storages: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device.type != "meta":
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()  # views of one storage count once
        return tensor

    images = torch.zeros(2, 3, image_size, image_size, device=_device(network))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        network.train()(images)
    parameters = {parameter.untyped_storage().data_ptr() for parameter in network.parameters()}
    return sum(size for pointer, size in storages.items() if pointer not in parameters) // 2


@dataclass(frozen=True)
class TrainSettings:
    """How a training step runs: the options users expect from a fast trainer."""

    batch: int = 16
    precision: str = "32"  # "32" or "bf16-mixed" (autocast to bfloat16)
    channels_last: bool = False  # NHWC memory layout for the convolutional patch embedding
    compile: bool = False  # torch.compile the network
    fused_optimizer: bool = False  # AdamW's fused kernel, where the device has one

    def label(self) -> str:
        options = [name for name in ("channels_last", "compile", "fused_optimizer") if getattr(self, name)]
        return "+".join([self.precision, *options])


def training_step(network: nn.Module, image_size: int, settings: TrainSettings) -> Callable[[], None]:
    """One AdamW step of `network` on a fixed random batch, with the settings applied."""
    device = _device(network)
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    network = network.to(memory_format=memory_format).train()
    model = torch.compile(network) if settings.compile else network
    images = torch.randn(settings.batch, 3, image_size, image_size, device=device).to(memory_format=memory_format)
    labels = torch.randint(0, _outputs(network), (settings.batch,), device=device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-5, fused=settings.fused_optimizer or None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16-mixed")

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def train_throughput(network: nn.Module, image_size: int, settings: TrainSettings, repeats: int = 3) -> float:
    """Training images per second (forward, backward, AdamW step) on model-ready random batches."""
    step = training_step(network, image_size, settings)
    warmup = 3 if settings.compile else 1  # compilation happens in the first calls
    return settings.batch / median_seconds(step, _device(network), repeats, warmup)


@torch.no_grad()
def inference_throughput(
    network: nn.Module, image_size: int, batch: int = THROUGHPUT_BATCH, repeats: int = 3, precision: str = "32"
) -> float:
    """Images per second of eval-mode forward passes on batches of `batch` random images."""
    device = _device(network)
    images = torch.randn(batch, 3, image_size, image_size, device=device)
    network.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
        return batch / median_seconds(lambda: network(images), device, repeats)


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak memory PyTorch allocated on a CUDA device since the last reset; None elsewhere."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def _outputs(network: nn.Module) -> int:
    return network.get_classifier().out_features if hasattr(network, "get_classifier") else 10


def _device(network: nn.Module) -> torch.device:
    return next(network.parameters()).device
