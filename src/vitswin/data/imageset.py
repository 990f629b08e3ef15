"""The one in-memory form every data source produces: uint8 images, labels and class names."""

from dataclasses import dataclass

import torch

from vitswin.memory import check_memory


@dataclass(frozen=True)
class ImageSet:
    """A labelled image set kept resident in memory.

    images: uint8 tensor (N, 3, H, W); labels: int64 tensor (N,) indexing `class_names`;
    masks: optional bool tensor (N, H, W) marking the object (synthetic data only);
    skipped: unreadable image files left out when the set was read (data.bad_images=skip).
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    masks: torch.Tensor | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        """The images at `indices`, in that order."""
        return ImageSet(
            images=self.images[indices],
            labels=self.labels[indices],
            class_names=self.class_names,
            masks=None if self.masks is None else self.masks[indices],
            skipped=self.skipped,
        )


# Decoding holds the decoded array, its channel-first copy and a split's copy at once (measured: peak resident
# memory about 2.25 times the set's bytes).
_DECODE_PEAK = 2.25


def check_room(count: int, image_size: int, what: str, bytes_per_pixel: int = 3) -> None:
    """Refuse, before the first image is decoded or made, a set that cannot be held in this machine's free memory
    (`bytes_per_pixel`: 3 for RGB, 4 with a mask)."""
    check_memory(
        round(count * bytes_per_pixel * image_size**2 * _DECODE_PEAK),
        f"{what} ({count:,} images at data.image_size {image_size})",
        "lower data.image_size (the models resize the stored images on the device) or use fewer images "
        "(data.train_size, data.test_size)",
    )
