"""One training epoch of a study's recipe on synthetic data resident on the training device: the time the
model itself needs per epoch, with the input pipeline included and disk and decoding left out. For
comparison with the published epoch times (about 232 s for ViT-B and 281 s for Swin-B on one GPU).

The epoch runs exactly as `fit` runs it (the same classifier, Trainer and training batches, micro-batches
and gradient accumulation included), with validation, checkpoints and early stopping left out.
"""

import time
from collections.abc import Sequence

import lightning.pytorch as pl
import torch

from vitswin.config import Hardware, StudyConfig
from vitswin.data.imageset import ImageSet
from vitswin.model.classifier import ImageClassifier, build_classifier
from vitswin.training.fit import recipe_trainer, training_batches
from vitswin.training.trainer import running

CLASSES = 10


def random_images(count: int, size: int, classes: int = CLASSES) -> ImageSet:
    """`count` seeded random uint8 images of `size` pixels with random labels."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator)
    return ImageSet(images, torch.randint(0, classes, (count,), generator=generator), [str(c) for c in range(classes)])


def one_epoch_classifier(config: StudyConfig, key: str) -> ImageClassifier:
    """Model `key` of the study with random weights, its recipe cut to one epoch without early stopping."""
    model = config.models[key]
    recipe = model.train.model_copy(update={"max_epochs": 1, "patience": 0})
    one_epoch = config.model_copy(update={"models": {key: model.model_copy(update={"train": recipe})}})
    return build_classifier(one_epoch, key, CLASSES, weights="random")


def train_one_epoch(
    module: ImageClassifier, data: ImageSet, hardware: Hardware, seed: int = 0, callbacks: Sequence[pl.Callback] = ()
) -> pl.Trainer:
    """Train `module` for one epoch of its recipe on `data` (one process), without validation; returns the
    Trainer, whose counters say how many optimizer steps and forward passes ran."""
    batches = training_batches(data, module.recipe, world_size=1, seed=seed)
    trainer = recipe_trainer(
        module, hardware, batches.accumulate, limit_val_batches=0, enable_checkpointing=False, callbacks=list(callbacks)
    )
    with running(trainer):
        trainer.fit(module, batches.loader)
    return trainer


def epoch_time(config: StudyConfig, key: str, images: int, device: torch.device) -> dict:
    """Seconds and images/s of one epoch of model `key`'s recipe on `images` random uint8 images on `device`."""
    module = one_epoch_classifier(config, key)
    data = random_images(images, config.data.image_size)
    data = ImageSet(data.images.to(device), data.labels.to(device), data.class_names)  # resident on the device
    recipe = module.recipe
    start = time.perf_counter()
    trainer = train_one_epoch(module, data, Hardware(device.type), config.seeds[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "model": key,
        "architecture": config.models[key].name,
        "image_size": config.models[key].input_size,
        "images": images,
        "batch": recipe.batch_size,
        "micro_batch": recipe.micro_batch_size or recipe.batch_size,
        "optimizer_steps": trainer.global_step,
        "forward_passes": trainer.fit_loop.epoch_loop.batch_progress.total.completed,
        "precision": recipe.precision,
        "epoch_s": seconds,
        "images_per_s": images / seconds,
    }
