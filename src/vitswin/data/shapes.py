"""`shapes`: a synthetic 10-class dataset with known object masks, generated from a seed.

Each image shows one object (the class) at a random position, scale, small rotation and colour,
on a cluttered background (colour gradient, noise, thin random lines). Colours and clutter are
drawn independently of the class, so a model must look at the object's shape to classify it;
the object mask records where the object is, for checking where heatmaps point.
"""

import math

import torch

from vitswin.config import DataConfig
from vitswin.data.imageset import ImageSet, check_room

CLASS_NAMES = (
    "circle",
    "square",
    "triangle",
    "plus",
    "cross",
    "ring",
    "diamond",
    "bar",
    "star",
    "half-disc",
)
_SUPERSAMPLE = 2  # render at 2x and average down: anti-aliased edges
_CHUNK = 512  # images rendered at once (bounds memory)
DEFAULT_SIZES = (10_000, 2_000)  # train, test images generated when no size is configured


def _inside(class_index: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Whether object-frame coordinates (u, v), scaled so the object has radius 1, are inside the shape."""
    radius = torch.sqrt(u**2 + v**2)
    if class_index == 0:  # circle
        return radius <= 1
    if class_index == 1:  # square
        return torch.maximum(u.abs(), v.abs()) <= 0.8
    if class_index == 2:  # triangle, apex up (image y grows downwards)
        return (v <= 0.7) & (v >= -1 + 1.79 * u.abs())
    if class_index in (3, 4):  # plus, and the same rotated by 45 degrees
        if class_index == 4:
            u, v = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
        return ((u.abs() <= 0.3) & (v.abs() <= 0.95)) | ((v.abs() <= 0.3) & (u.abs() <= 0.95))
    if class_index == 5:  # ring
        return (radius >= 0.55) & (radius <= 1)
    if class_index == 6:  # diamond
        return u.abs() + v.abs() <= 1
    if class_index == 7:  # horizontal bar
        return (u.abs() <= 1) & (v.abs() <= 0.35)
    if class_index == 8:  # five-pointed star
        angle = torch.atan2(v, u)
        return radius <= 0.4 + 0.6 * (0.5 + 0.5 * torch.cos(5 * angle)) ** 2
    if class_index == 9:  # half disc, flat side down
        return (radius <= 1) & (v <= 0.2)
    raise ValueError(f"no shape for class {class_index}")


def _render_chunk(labels: torch.Tensor, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(labels)
    hi = size * _SUPERSAMPLE
    coords = (torch.arange(hi, dtype=torch.float32) + 0.5) / _SUPERSAMPLE  # pixel centres, in output pixels
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=gen)

    # Object pose: radius 20-36 % of the image, fully inside it, rotated up to 15 degrees.
    radius = uniform(0.25, 0.4) * size
    cx = radius + uniform(0, 1) * (size - 2 * radius)
    cy = radius + uniform(0, 1) * (size - 2 * radius)
    theta = uniform(-math.pi / 12, math.pi / 12)
    dx = xs - cx.view(n, 1, 1)
    dy = ys - cy.view(n, 1, 1)
    cos, sin = torch.cos(theta).view(n, 1, 1), torch.sin(theta).view(n, 1, 1)
    u = (cos * dx + sin * dy) / radius.view(n, 1, 1)
    v = (-sin * dx + cos * dy) / radius.view(n, 1, 1)
    inside = torch.zeros(n, hi, hi, dtype=torch.bool)
    for class_index in labels.unique().tolist():
        rows = labels == class_index
        inside[rows] = _inside(class_index, u[rows], v[rows])

    # Background: a dark or light two-colour gradient; the object takes the opposite half of the range,
    # so it is visible but its colour says nothing about its class.
    dark_background = torch.rand(n, generator=gen) < 0.5
    low = torch.where(dark_background, 0.0, 0.55).view(n, 1, 1, 1)
    start, end = low + uniform(0, 0.45, 3, 1, 1), low + uniform(0, 0.45, 3, 1, 1)
    direction = uniform(0, 2 * math.pi)
    ramp = (torch.cos(direction).view(n, 1, 1) * xs + torch.sin(direction).view(n, 1, 1) * ys) / hi
    ramp = (ramp - ramp.amin((1, 2), keepdim=True)) / (ramp.amax((1, 2), keepdim=True) - ramp.amin((1, 2), keepdim=True))
    image = start + (end - start) * ramp.unsqueeze(1)

    # Clutter: thin line segments of any colour, position and direction.
    for _ in range(4):
        x0, y0 = uniform(0, size).view(n, 1, 1), uniform(0, size).view(n, 1, 1)
        angle = uniform(0, math.pi)
        length = uniform(0.2, 0.6).view(n, 1, 1) * size
        ax, ay = torch.cos(angle).view(n, 1, 1), torch.sin(angle).view(n, 1, 1)
        along = (xs - x0) * ax + (ys - y0) * ay
        across = -(xs - x0) * ay + (ys - y0) * ax
        line = (along.abs() <= length / 2) & (across.abs() <= 0.5)
        image = torch.where(line.unsqueeze(1), uniform(0, 1, 3, 1, 1), image)

    object_low = torch.where(dark_background, 0.55, 0.0).view(n, 1, 1, 1)
    colour = object_low + uniform(0, 0.45, 3, 1, 1)
    image = torch.where(inside.unsqueeze(1), colour, image)
    image = image + 0.04 * torch.randn(image.shape, generator=gen)

    image = torch.nn.functional.avg_pool2d(image, _SUPERSAMPLE)
    mask = torch.nn.functional.avg_pool2d(inside.float().unsqueeze(1), _SUPERSAMPLE).squeeze(1) >= 0.5
    return (image.clamp(0, 1) * 255).round().to(torch.uint8), mask


def make_shapes(num_images: int, size: int, seed: int) -> ImageSet:
    """Generate `num_images` shape images of `size` x `size` pixels, balanced over the 10 classes.

    The same (num_images, size, seed) always gives the same images, labels and masks.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_images) % len(CLASS_NAMES)
    labels = labels[torch.randperm(num_images, generator=gen)]
    images, masks = [], []
    for start in range(0, num_images, _CHUNK):
        chunk_images, chunk_masks = _render_chunk(labels[start : start + _CHUNK], size, gen)
        images.append(chunk_images)
        masks.append(chunk_masks)
    return ImageSet(
        pixels=torch.cat(images) if images else torch.empty(0, 3, size, size, dtype=torch.uint8),
        labels=labels,
        class_names=list(CLASS_NAMES),
        masks=torch.cat(masks) if masks else torch.empty(0, size, size, dtype=torch.bool),
    )


def read_shapes_source(config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """data.source shapes: data.train_size and data.test_size images generated from the data seed."""
    train_size = config.train_size or DEFAULT_SIZES[0]
    test_size = config.test_size or DEFAULT_SIZES[1]
    check_room(train_size + test_size, config.image_size, "making the built-in shapes", bytes_per_pixel=4)
    # Separate streams for train and test, so no data seed's test images are another's training images.
    return make_shapes(train_size, config.image_size, 2 * config.seed), make_shapes(
        test_size, config.image_size, 2 * config.seed + 1
    )
