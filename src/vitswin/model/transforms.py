"""Batch transforms on the training device: uint8 images in, model-ready normalised float images out.

Everything works on whole batches with per-image random parameters, so no per-sample PIL work
happens in the training loop. The geometric part (resize, flip, random affine) is one
`grid_sample` from the stored resolution straight to the model's input size.
"""

import math

import torch
import torch.nn.functional as F

from vitswin.config import AugmentConfig
from vitswin.model.randaugment import rand_augment

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


class BatchTransform:
    """Resize, normalise and (when training) augment uint8 batches (B, 3, H, W) on their own device."""

    def __init__(
        self,
        output_size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        augment: AugmentConfig | None = None,
    ) -> None:
        self.output_size = output_size
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.augment = augment or AugmentConfig()

    def __call__(self, images: torch.Tensor, train: bool = False) -> torch.Tensor:
        """Model input for `images`; random augmentation only when `train` is true."""
        mean, std = self.mean.to(images.device), self.std.to(images.device)
        pixels = images.float().div_(255)
        if train and self.augment.colour_jitter:
            # Jitter at the stored resolution: the same per-pixel maths, on far fewer pixels.
            pixels = self._jitter(pixels)
        if train and self.augment.randaugment:
            aug = self.augment
            pixels = rand_augment(pixels, aug.randaugment, aug.randaugment_magnitude, aug.randaugment_std)
        if train and (self.augment.hflip or self.augment.affine):
            # Scale by 1/std before sampling and subtract mean/std after: the same normalisation,
            # but points outside the image become black (0), as torchvision's RandomAffine fills them.
            grid = affine_grid(self._random_affine(len(images), images.device), self.output_size)
            # Upsampling reads up to half a stored pixel past the outermost pixel centres: clamp there, as a
            # plain resize does, so image edges are not darkened. Only points outside the image itself (moved
            # there by the affine transform) get the fill.
            sampled = F.grid_sample(pixels / std, grid, mode="bilinear", padding_mode="border", align_corners=False)
            grid.abs_()  # sampled already: reuse it in place (this runs on every training batch)
            outside = (grid[..., 0] > 1) | (grid[..., 1] > 1)
            return sampled.masked_fill_(outside.unsqueeze(1), 0.0).sub_(mean / std)
        normalised = (pixels - mean) / std  # bilinear resizing is linear, so normalising first is exact
        if normalised.shape[-1] == self.output_size and normalised.shape[-2] == self.output_size:
            return normalised
        shrinking = self.output_size < normalised.shape[-1]
        return F.interpolate(
            normalised, size=(self.output_size, self.output_size), mode="bilinear", align_corners=False, antialias=shrinking
        )

    def _jitter(self, pixels: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast and saturation, in that order, with a factor drawn per image."""
        aug = self.augment
        luma = torch.tensor(_LUMA, device=pixels.device).view(1, 3, 1, 1)

        def factors(amount: float) -> torch.Tensor:
            low = max(0.0, 1 - amount)
            return torch.empty(len(pixels), 1, 1, 1, device=pixels.device).uniform_(low, 1 + amount)

        if aug.brightness > 0:
            pixels = (pixels * factors(aug.brightness)).clamp_(0, 1)
        if aug.contrast > 0:
            grey_mean = (pixels * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
            pixels = torch.lerp(grey_mean, pixels, factors(aug.contrast)).clamp_(0, 1)
        if aug.saturation > 0:
            grey = (pixels * luma).sum(1, keepdim=True)
            pixels = torch.lerp(grey, pixels, factors(aug.saturation)).clamp_(0, 1)
        return pixels

    def _random_affine(self, batch: int, device: torch.device) -> torch.Tensor:
        """Per-image (B, 2, 3) matrices mapping output to input coordinates (grid_sample's convention)."""
        aug = self.augment

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.empty(batch, device=device).uniform_(low, high)

        angle = uniform(-aug.degrees, aug.degrees) * (math.pi / 180)
        scale = uniform(*aug.scale)
        # Normalised coordinates span 2 units per image side, so a shift of t image widths is 2t units.
        shift = torch.stack([uniform(-aug.translate, aug.translate), uniform(-aug.translate, aug.translate)], 1) * 2
        flip = torch.where(torch.rand(batch, device=device) < 0.5, -1.0, 1.0) if aug.hflip else torch.ones(batch, device=device)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # input = Flip @ (Rotate(-angle) / scale) @ (output - shift)
        linear = torch.stack([torch.stack([cos * flip, sin * flip], 1), torch.stack([-sin, cos], 1)], 1)
        offset = -(linear @ shift.unsqueeze(-1))
        return torch.cat([linear, offset], 2)


def affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """`F.affine_grid(theta, (B, C, size, size), align_corners=False)`, computed as two broadcast multiply-adds
    per coordinate instead of a batched matrix product with an inner dimension of 3 (15x faster on a CPU)."""
    coords = (torch.arange(size, dtype=theta.dtype, device=theta.device) * 2 + 1) / size - 1  # pixel centres
    columns, rows = coords.view(1, 1, size), coords.view(1, size, 1)
    grid = torch.empty(len(theta), size, size, 2, dtype=theta.dtype, device=theta.device)
    for axis in range(2):  # x then y, as grid_sample reads them
        along_x, along_y, offset = (theta[:, axis, column].view(-1, 1, 1) for column in range(3))
        torch.add(along_x * columns + offset, along_y * rows, out=grid[..., axis])
    return grid
