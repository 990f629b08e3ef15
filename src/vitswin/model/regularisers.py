"""Batch regularisers after the transform, on the training device: timm's random erasing and Mixup / CutMix, with
timm's semantics, on the normalised model-ready batch."""

import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.data.random_erasing import RandomErasing

from vitswin.config import AugmentConfig


class BatchRegularisers:
    """Random erasing, then Mixup / CutMix, of a training batch; targets become class probabilities (smoothed by
    `label_smoothing`) when the recipe mixes, class indices otherwise."""

    def __init__(self, augment: AugmentConfig, num_classes: int, label_smoothing: float) -> None:
        self.erase = RandomErasing(augment.erase_prob, mode="pixel", device="cpu") if augment.erase_prob > 0 else None
        self.mix = (
            Mixup(
                mixup_alpha=augment.mixup,
                cutmix_alpha=augment.cutmix,
                prob=augment.mix_prob,
                switch_prob=augment.mix_switch_prob,
                label_smoothing=label_smoothing,
                num_classes=num_classes,
            )
            if augment.mixing
            else None
        )
        self.num_classes, self.label_smoothing = num_classes, label_smoothing

    @property
    def active(self) -> bool:
        return self.erase is not None or self.mix is not None

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.erase is not None:
            self.erase.device = images.device  # its noise is drawn where the images are
            images = self.erase(images)
        if self.mix is None:
            return images, labels
        # timm mixes a batch with its reverse and needs an even count: an odd last image keeps its own label.
        even = len(images) - len(images) % 2
        mixed, targets = self.mix(images[:even], labels[:even])
        if even == len(images):
            return mixed, targets
        last = F.one_hot(labels[even:], self.num_classes).float()
        last = last * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
        return torch.cat([mixed, images[even:]]), torch.cat([targets, last])
