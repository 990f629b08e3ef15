"""RandAugment (Cubuk et al., 2020) with timm's operations and strengths (`rand-m{M}-n{N}-mstd{S}-inc1`), on a whole
batch on its device: every image draws its own operations, whether each is applied (half the time, as timm's), its
strength and its sign; each operation then runs once over the images that drew it.

Works on float pixels in [0, 1]; the 8-bit operations (posterize, solarize, equalize) round to 8 bits first, as on
PIL images. Geometric operations turn about the image centre (PIL's shear and translate are about the top-left
corner: the same distortion, shifted) and fill with grey, as timm fills with the mean.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import equalize

_LUMA = (0.299, 0.587, 0.114)
_FILL = 0.5
Operation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (images, signed strength in [-1, 1]) -> images


def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _bytes(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels * 255).round()


def _auto_contrast(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    low, high = pixels.amin((2, 3), keepdim=True), pixels.amax((2, 3), keepdim=True)
    stretched = (pixels - low) / (high - low).clamp_min(1e-6)
    return torch.where(high > low, stretched, pixels)  # a flat channel stays as it is


def _equalize(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    return equalize(_bytes(pixels).to(torch.uint8)).float() / 255


def _invert(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    return 1 - pixels


def _posterize(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    # Keeps 4 bits at strength 0, down to 1 at full strength (timm's range ends at 0, which Pillow refuses since 10).
    step = 2 ** (8 - (4 - (strength.abs() * 4).floor()).clamp(min=1))
    return (_bytes(pixels) / _per_image(step)).floor() * _per_image(step) / 255


def _solarize(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    threshold = 256 - (strength.abs() * 256).floor()  # inverts nothing at strength 0, everything at 1
    values = _bytes(pixels)
    return torch.where(values >= _per_image(threshold), 255 - values, values) / 255


def _solarize_add(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    values, added = _bytes(pixels), (strength.abs() * 110).floor().clamp(max=128)
    return torch.where(values < 128, (values + _per_image(added)).clamp(max=255), values) / 255


def _grey(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels * torch.tensor(_LUMA, device=pixels.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _blend(towards: Callable[[torch.Tensor], torch.Tensor]) -> Operation:
    """An enhancement of timm's 'increasing' kind: factor 1 + 0.9 x strength (at least 0.1) away from `towards`."""

    def operation(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        factor = (1 + 0.9 * strength).clamp(min=0.1)
        return torch.lerp(towards(pixels).expand_as(pixels), pixels, _per_image(factor)).clamp(0, 1)

    return operation


def _smoothed(pixels: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter, the degenerate image of its sharpness enhancement; the border pixels are kept."""
    kernel = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]], device=pixels.device) / 13
    blurred = F.conv2d(pixels, kernel.expand(3, 1, 3, 3), groups=3)
    return F.pad(blurred, (1, 1, 1, 1)).where(_interior(pixels), pixels)


def _interior(pixels: torch.Tensor) -> torch.Tensor:
    inside = torch.zeros(pixels.shape[-2:], dtype=torch.bool, device=pixels.device)
    inside[1:-1, 1:-1] = True
    return inside


def _affine(matrix: Callable[[torch.Tensor], list[list[torch.Tensor]]]) -> Operation:
    """A geometric operation: `matrix(strength)` gives each image's 2 x 3 map from output to input coordinates."""

    def operation(pixels: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        theta = torch.stack([torch.stack(row, 1) for row in matrix(strength)], 1)
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        # Sampling the difference from the fill pads with the fill.
        return F.grid_sample(pixels - _FILL, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + _FILL

    return operation


def _rotation(strength: torch.Tensor) -> list[list[torch.Tensor]]:
    angle = strength * math.radians(30)
    zero = torch.zeros_like(angle)
    return [[angle.cos(), -angle.sin(), zero], [angle.sin(), angle.cos(), zero]]


def _shear(axis: int) -> Callable[[torch.Tensor], list[list[torch.Tensor]]]:
    def matrix(strength: torch.Tensor) -> list[list[torch.Tensor]]:
        one, zero, shear = torch.ones_like(strength), torch.zeros_like(strength), strength * 0.3
        return [[one, shear, zero], [zero, one, zero]] if axis == 0 else [[one, zero, zero], [shear, one, zero]]

    return matrix


def _translation(axis: int) -> Callable[[torch.Tensor], list[list[torch.Tensor]]]:
    def matrix(strength: torch.Tensor) -> list[list[torch.Tensor]]:
        one, zero, shift = torch.ones_like(strength), torch.zeros_like(strength), strength * 0.45 * 2  # 2 units a side
        return [[one, zero, shift if axis == 0 else zero], [zero, one, shift if axis == 1 else zero]]

    return matrix


# timm's _RAND_INCREASING_TRANSFORMS, in its order.
OPERATIONS: dict[str, Operation] = {
    "AutoContrast": _auto_contrast,
    "Equalize": _equalize,
    "Invert": _invert,
    "Rotate": _affine(_rotation),
    "PosterizeIncreasing": _posterize,
    "SolarizeIncreasing": _solarize,
    "SolarizeAdd": _solarize_add,
    "ColorIncreasing": _blend(_grey),
    "ContrastIncreasing": _blend(lambda pixels: _grey(pixels).mean((2, 3), keepdim=True)),
    "BrightnessIncreasing": _blend(torch.zeros_like),
    "SharpnessIncreasing": _blend(_smoothed),
    "ShearX": _affine(_shear(0)),
    "ShearY": _affine(_shear(1)),
    "TranslateXRel": _affine(_translation(0)),
    "TranslateYRel": _affine(_translation(1)),
}


def rand_augment(pixels: torch.Tensor, layers: int, magnitude: float, magnitude_std: float) -> torch.Tensor:
    """`layers` RandAugment operations for every image of `pixels` (float (B, 3, H, W) in [0, 1]), each drawn
    uniformly and applied with probability 0.5, at strength `magnitude` of 10 (plus Gaussian noise of
    `magnitude_std` per image, clipped to [0, 10]) with a random sign; from PyTorch's generator."""
    batch, device = len(pixels), pixels.device
    names = list(OPERATIONS)
    for _ in range(layers):
        chosen = torch.randint(len(names), (batch,), device=device)
        applied = torch.rand(batch, device=device) < 0.5
        level = torch.full((batch,), float(magnitude), device=device)
        if magnitude_std > 0:
            level = (level + magnitude_std * torch.randn(batch, device=device)).clamp(0, 10)
        sign = torch.where(torch.rand(batch, device=device) < 0.5, -1.0, 1.0)
        strength = level / 10 * sign
        pixels = pixels.clone()
        for index, name in enumerate(names):
            rows = ((chosen == index) & applied).nonzero().squeeze(1)
            if len(rows):
                pixels[rows] = OPERATIONS[name](pixels[rows], strength[rows])
    return pixels
