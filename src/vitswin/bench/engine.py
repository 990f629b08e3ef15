"""The training engine's overhead: the project's Lightning loop against a bare PyTorch loop doing the same
work (same network, data, augmentation, loss, AdamW, schedule and gradient clipping), in one run.

The two alternate in rounds and each reports its median, so slow drift of a shared machine hits both alike.
"""

import copy
import statistics
import time
import warnings
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from vitswin.batching import TrainingBatches, resident_loader
from vitswin.config import StudyConfig
from vitswin.data.imageset import ImageSet
from vitswin.models import build_network
from vitswin.training import ImageClassifier
from vitswin.transforms import BatchTransform


@dataclass(frozen=True)
class EngineResult:
    lightning_images_per_s: float
    bare_images_per_s: float

    @property
    def overhead(self) -> float:
        """How much slower the Lightning loop is, as a fraction of the bare loop's speed."""
        return 1 - self.lightning_images_per_s / self.bare_images_per_s


class _Clock(pl.Callback):
    """Times the training batches after the first `skip` (warm-up)."""

    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.end, self.images = skip, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: tuple, index: int) -> None:
        if index == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: object, batch: tuple, index: int
    ) -> None:
        if index >= self.skip:
            self.end, self.images = time.perf_counter(), self.images + len(batch[1])


def random_images(count: int, size: int, classes: int) -> ImageSet:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator)
    return ImageSet(images, torch.randint(0, classes, (count,), generator=generator), [str(c) for c in range(classes)])


def compare_engines(config: StudyConfig, key: str, steps: int = 30, skip: int = 3, rounds: int = 3) -> EngineResult:
    """Training images/s of model `key` of `config` (CPU, its recipe and batch size) in both loops."""
    model = config.models[key]
    recipe = model.train.model_copy(update={"max_epochs": 1, "patience": 0})
    classes = 10
    data = random_images(recipe.batch_size * (steps + skip), config.data.image_size, classes)
    transform = BatchTransform(model.image_size, config.data.mean, config.data.std, model.augment)
    network = build_network(model.model_copy(update={"pretrained": "none"}), classes)
    lightning, bare = [], []
    for _ in range(rounds):
        lightning.append(_lightning_rate(copy.deepcopy(network), recipe, transform, data, classes, skip))
        bare.append(_bare_rate(copy.deepcopy(network), recipe, transform, data, skip))
    return EngineResult(statistics.median(lightning), statistics.median(bare))


def _lightning_rate(
    network: torch.nn.Module, recipe, transform: BatchTransform, data: ImageSet, classes: int, skip: int
) -> float:
    clock = _Clock(skip)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        precision=recipe.precision,
        gradient_clip_val=recipe.grad_clip or None,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    loader = resident_loader(data, TrainingBatches(len(data), recipe.batch_size, seed=0))
    with warnings.catch_warnings():  # only training is timed, so there is no validation set
        warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
        trainer.fit(ImageClassifier(network, recipe, transform, classes), loader)
    return clock.images / (clock.end - clock.start)


def _bare_rate(network: torch.nn.Module, recipe, transform: BatchTransform, data: ImageSet, skip: int) -> float:
    """The same step as `ImageClassifier`'s, written as a plain loop."""
    optimizer = torch.optim.AdamW(network.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    network.train()
    images_seen, start = 0, 0.0
    for index, (images, labels) in enumerate(resident_loader(data, TrainingBatches(len(data), recipe.batch_size))):
        if index == skip:
            start = time.perf_counter()
        loss = F.cross_entropy(network(transform(images, train=True)), labels, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip:
            torch.nn.utils.clip_grad_norm_(network.parameters(), recipe.grad_clip)
        optimizer.step()
        scheduler.step()
        if index >= skip:
            images_seen += len(labels)
    return images_seen / (time.perf_counter() - start)
