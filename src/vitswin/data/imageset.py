"""The one form every data source produces: uint8 images (in memory, or read from a decoded image store), labels and
class names, read batch by batch by index."""

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vitswin.data.store import StoredPixels
from vitswin.memory import check_memory


@dataclass(frozen=True)
class ImageSet:
    """A labelled image set: the images at `rows` of `pixels`, which it never copies whole.

    pixels: uint8 (M, 3, H, W), a tensor in memory or the images of the store at `store` (read by index; pickled as
    the store's file name, so a side-by-side worker reads the same file); rows: int64 (N,)
    positions in `pixels` of this set's images, in order (None: all of them); labels: int64 (N,) indexing
    `class_names`; masks: optional bool (M, H, W) marking the object (synthetic data only), aligned with `pixels`;
    skipped: unreadable image files left out when the set was read (data.bad_images=skip).
    """

    pixels: torch.Tensor | StoredPixels
    labels: torch.Tensor
    class_names: list[str]
    masks: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    skipped: int = 0
    store: Path | None = None

    def __post_init__(self) -> None:
        if self.pixels.dtype != torch.uint8 or self.pixels.ndim != 4 or self.pixels.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {self.pixels.dtype} {tuple(self.pixels.shape)}")
        count = len(self.pixels) if self.rows is None else len(self.rows)
        if len(self.labels) != count:
            raise ValueError(f"{count} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the stored images."""
        return tuple(self.pixels.shape[-2:])  # type: ignore[return-value]

    def take(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The uint8 images (n, 3, H, W) at positions `index` of this set: one gather (from the store: a read of just
        those images)."""
        return self.pixels[self._positions(index)]

    def take_masks(self, index: torch.Tensor | slice) -> torch.Tensor | None:
        """The object masks at positions `index` of this set, where the source has them."""
        return None if self.masks is None else self.masks[self._positions(index)]

    @property
    def images(self) -> torch.Tensor:
        """Every image of the set, gathered into memory: for small sets (a batch, the explained images)."""
        return self.take(slice(None))

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        """The images at `indices`, in that order (positions only: no image is copied)."""
        return replace(self, labels=self.labels[indices], rows=self._positions(indices))

    def _positions(self, index: torch.Tensor | slice) -> torch.Tensor | slice:
        return index if self.rows is None else self.rows[index]


# Decoding or making a set in memory holds the images and a copy at once (measured: peak resident memory about
# 2.25 times the set's bytes).
_DECODE_PEAK = 2.25


def check_room(count: int, image_size: int, what: str, bytes_per_pixel: int = 3) -> None:
    """Refuse, before the first image is made in memory, a set that cannot be held in this machine's free memory
    (`bytes_per_pixel`: 3 for RGB, 4 with a mask)."""
    check_memory(
        round(count * bytes_per_pixel * image_size**2 * _DECODE_PEAK),
        f"{what} ({count:,} images at data.image_size {image_size})",
        "lower data.image_size (the models resize the stored images on the device) or use fewer images "
        "(data.train_size, data.test_size)",
    )
