"""One training epoch of a study's recipe on synthetic data resident on the training device: the time the
model itself needs per epoch, with the input pipeline included and disk and decoding left out. For
comparison with the published epoch times (about 232 s for ViT-B and 281 s for Swin-B on one GPU)."""

import time

import lightning.pytorch as pl
import torch

from vitswin.batching import TrainingBatches, resident_loader
from vitswin.bench.engine import random_images
from vitswin.config import StudyConfig
from vitswin.data.imageset import ImageSet
from vitswin.models import build_network
from vitswin.training import ImageClassifier, show_progress
from vitswin.transforms import BatchTransform


def epoch_time(config: StudyConfig, key: str, images: int, device: torch.device) -> dict:
    """Seconds and images/s of one epoch of model `key`'s recipe on `images` random uint8 images on `device`."""
    model = config.models[key]
    recipe = model.train.model_copy(update={"max_epochs": 1, "patience": 0})
    classes = 10
    data = random_images(images, config.data.image_size, classes)
    data = ImageSet(data.images.to(device), data.labels.to(device), data.class_names)  # resident on the device
    transform = BatchTransform(model.image_size, config.data.mean, config.data.std, model.augment)
    module = ImageClassifier(build_network(model.model_copy(update={"pretrained": "none"}), classes), recipe, transform, classes)
    trainer = pl.Trainer(
        accelerator=device.type,
        devices=1,
        precision=recipe.precision,
        max_epochs=1,
        gradient_clip_val=recipe.grad_clip or None,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=show_progress(),
    )
    start = time.perf_counter()
    trainer.fit(module, resident_loader(data, TrainingBatches(images, recipe.batch_size, seed=config.seed)))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "model": key,
        "architecture": model.name,
        "image_size": model.image_size,
        "images": images,
        "batch": recipe.batch_size,
        "precision": recipe.precision,
        "epoch_s": seconds,
        "images_per_s": images / seconds,
    }
