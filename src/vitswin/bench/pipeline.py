"""The input pipeline measured against the classic one: model-ready 224-pixel batches per second.

Classic: PIL images and torchvision transforms, one image at a time, in DataLoader worker processes (as
torchvision's CIFAR-10 dataset serves them). vitswin: the dataset resident as one uint8 tensor, a batch
gathered by index and transformed as a whole (`BatchTransform`) on the training device.
"""

import statistics
import time
from dataclasses import dataclass
from functools import partial

import torch
from PIL import Image
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from vitswin.config import AugmentConfig
from vitswin.data.imageset import ImageSet
from vitswin.model.transforms import BatchTransform
from vitswin.training.batching import TrainingBatches, resident_loader

CPU = torch.device("cpu")


class _PILImages(Dataset):
    """Images kept as uint8 arrays and turned into PIL images per sample, as torchvision's CIFAR10 does."""

    def __init__(self, image_set: ImageSet, transform: T.Compose) -> None:
        self.arrays = image_set.images.permute(0, 2, 3, 1).numpy()
        self.labels = image_set.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.arrays[index])), self.labels[index]


def classic_transform(augment: AugmentConfig, size: int, mean: tuple, std: tuple, resize_first: bool) -> T.Compose:
    """torchvision's and timm's per-image equivalent of `BatchTransform` (with its RandAugment and random erasing):
    resize to `size` before or after augmenting."""
    rand_augment = f"rand-m{augment.randaugment_magnitude:g}-n{augment.randaugment}-mstd{augment.randaugment_std:g}-inc1"
    grey = {"img_mean": (128, 128, 128)}
    augmentation = [
        T.RandomHorizontalFlip() if augment.hflip else None,
        T.ColorJitter(augment.brightness, augment.contrast, augment.saturation) if augment.colour_jitter else None,
        rand_augment_transform(rand_augment, grey) if augment.randaugment else None,
        T.RandomAffine(augment.degrees, (augment.translate,) * 2, augment.scale) if augment.affine else None,
    ]
    resize = T.Resize(size, interpolation=T.InterpolationMode.BILINEAR)
    steps = [resize, *augmentation] if resize_first else [*augmentation, resize]
    erase = [RandomErasing(augment.erase_prob, mode="pixel", device="cpu")] if augment.erase_prob else []
    return T.Compose([step for step in steps if step is not None] + [T.ToTensor(), T.Normalize(mean, std), *erase])


@dataclass(frozen=True)
class PipelineResult:
    name: str
    images_per_s: float


def _images_per_s(batches: object, count: int, transform: object = None, device: torch.device | None = None) -> float:
    """Images per second of drawing `count` batches (and transforming them when `transform` is given)."""
    iterator = iter(batches)
    next(iterator)  # warm-up: worker start-up, first allocations
    images, start = 0, time.perf_counter()
    for _ in range(count):
        batch, _labels = next(iterator)
        if transform is not None:
            batch = transform(batch.to(device), train=True)
        images += len(batch)
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return images / (time.perf_counter() - start)


@dataclass(frozen=True)
class BatchSpec:
    """What a model-ready training batch is: its size in images, the input size, normalisation and augmentation."""

    augment: AugmentConfig
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    batch: int = 64


def classic_images_per_s(image_set: ImageSet, spec: BatchSpec, batches: int, workers: int, resize_first: bool) -> float:
    """Model-ready training batches per second from PIL images and torchvision transforms in worker processes."""
    dataset = _PILImages(image_set, classic_transform(spec.augment, spec.size, spec.mean, spec.std, resize_first))
    loader = DataLoader(dataset, batch_size=spec.batch, shuffle=True, num_workers=workers, prefetch_factor=4 if workers else None)
    return _images_per_s(loader, batches)


def batched_images_per_s(image_set: ImageSet, spec: BatchSpec, batches: int, device: torch.device) -> float:
    """Model-ready training batches per second from the resident uint8 set, transformed whole on `device`."""
    resident = ImageSet(image_set.images.to(device), image_set.labels.to(device), image_set.class_names)
    loader = resident_loader(resident, TrainingBatches(len(resident), spec.batch, seed=0))
    return _images_per_s(loader, batches, BatchTransform(spec.size, spec.mean, spec.std, spec.augment), device)


def compare_pipelines(
    image_set: ImageSet, spec: BatchSpec, batches: int = 20, workers: int = 2, device: torch.device = CPU, rounds: int = 3
) -> list[PipelineResult]:
    """Images per second of model-ready training batches from each pipeline, in one run. The pipelines take turns
    for `rounds` rounds and each reports its median, so a shared machine's drifting speed hits them alike."""
    pipelines = {
        f"classic: PIL + torchvision, {workers} workers, resize {'first' if first else 'last'}": partial(
            classic_images_per_s, image_set, spec, batches, workers, first
        )
        for first in (True, False)
    }
    pipelines[f"vitswin: resident uint8, batched on {device.type}"] = partial(
        batched_images_per_s, image_set, spec, batches, device
    )
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(rounds):
        for name, measure in pipelines.items():
            rates[name].append(measure())
    return [PipelineResult(name, statistics.median(values)) for name, values in rates.items()]
