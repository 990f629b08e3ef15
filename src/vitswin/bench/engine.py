"""The training engine's overhead: the project's Lightning loop against a bare PyTorch loop doing the same
work (same network, data, augmentation, loss, AdamW, schedule and gradient clipping), in one run.

The two alternate in rounds and each reports its median, so slow drift of a shared machine hits both alike.
"""

import copy
import statistics
import time
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from vitswin.bench.epoch import one_epoch_classifier, random_images, train_one_epoch
from vitswin.config import Hardware, StudyConfig
from vitswin.data.imageset import ImageSet
from vitswin.model.classifier import ImageClassifier
from vitswin.training.fit import training_batches


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


def compare_engines(config: StudyConfig, key: str, steps: int = 30, skip: int = 3, rounds: int = 3) -> EngineResult:
    """Training images/s of model `key` of `config` (CPU, its recipe, batch and micro-batch size) in both loops;
    `steps` optimizer steps are timed after `skip` forward passes of warm-up."""
    module = one_epoch_classifier(config, key)
    data = random_images(module.recipe.batch_size * (steps + skip), config.data.image_size)
    lightning, bare = [], []
    for _ in range(rounds):
        lightning.append(_lightning_rate(copy.deepcopy(module), data, skip))
        bare.append(_bare_rate(copy.deepcopy(module), data, skip))
    return EngineResult(statistics.median(lightning), statistics.median(bare))


def _lightning_rate(module: ImageClassifier, data: ImageSet, skip: int) -> float:
    clock = _Clock(skip)
    train_one_epoch(module, data, Hardware("cpu"), callbacks=[clock])
    return clock.images / (clock.end - clock.start)


def _bare_rate(module: ImageClassifier, data: ImageSet, skip: int) -> float:
    """The same steps as `ImageClassifier` under Lightning, written as a plain loop."""
    network, recipe, transform = module.network, module.recipe, module.transform
    batches = training_batches(data, recipe, world_size=1, seed=0)
    optimizer = torch.optim.AdamW(network.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    network.train()
    images_seen, start = 0, 0.0
    for index, (images, labels) in enumerate(batches.loader):
        if index == skip:
            start = time.perf_counter()
        loss = F.cross_entropy(network(transform(images, train=True)), labels, label_smoothing=recipe.label_smoothing)
        (loss / batches.accumulate).backward()  # gradients of the step's micro-batches add up to the step's mean
        if (index + 1) % batches.accumulate == 0:
            if recipe.grad_clip:
                torch.nn.utils.clip_grad_norm_(network.parameters(), recipe.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        if index >= skip:
            images_seen += len(labels)
    return images_seen / (time.perf_counter() - start)
