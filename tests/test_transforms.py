"""Batch transforms: exact normalisation and resizing, per-image augmentation, black fill."""

import torch
import torch.nn.functional as F

from vitswin.config import AugmentConfig
from vitswin.model.transforms import BatchTransform, affine_grid

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def random_images(n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def reference(images: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def test_eval_path_normalises_and_resizes_exactly() -> None:
    images = random_images()
    same_size = BatchTransform(16, MEAN, STD)(images)
    assert torch.allclose(same_size, reference(images), atol=1e-5)
    upsampled = BatchTransform(48, MEAN, STD)(images)
    expected = F.interpolate(reference(images), size=(48, 48), mode="bilinear", align_corners=False)
    assert upsampled.shape == (8, 3, 48, 48) and torch.allclose(upsampled, expected, atol=1e-5)


def test_no_augmentation_outside_training() -> None:
    transform = BatchTransform(32, MEAN, STD, AugmentConfig(hflip=True, brightness=0.5, degrees=30))
    images = random_images()
    assert torch.equal(transform(images, train=False), transform(images, train=False))


def test_flip_is_drawn_per_image_and_exact() -> None:
    transform = BatchTransform(16, MEAN, STD, AugmentConfig(hflip=True))
    images = random_images(1).repeat(64, 1, 1, 1)
    torch.manual_seed(0)
    out = transform(images, train=True)
    plain, flipped = reference(images[:1]), reference(images[:1]).flip(-1)
    is_plain = [torch.allclose(o, plain[0], atol=1e-4) for o in out]
    is_flipped = [torch.allclose(o, flipped[0], atol=1e-4) for o in out]
    assert all(p or f for p, f in zip(is_plain, is_flipped, strict=True))
    assert 10 < sum(is_flipped) < 54  # about half, each image its own coin


def test_colour_jitter_and_affine_differ_per_image() -> None:
    augment = AugmentConfig(hflip=True, brightness=0.2, contrast=0.2, saturation=0.2, degrees=10, translate=0.1, scale=(0.9, 1.1))
    transform = BatchTransform(64, MEAN, STD, augment)
    images = random_images(1).repeat(16, 1, 1, 1)
    torch.manual_seed(0)
    out = transform(images, train=True)
    assert out.shape == (16, 3, 64, 64) and torch.isfinite(out).all()
    # Compared inside the image: near the edges, an affine often leaves nothing but the (equal) black fill.
    distinct = {tuple(o[:, 24:40, 24:40].flatten().round(decimals=4).tolist()) for o in out}
    assert len(distinct) == 16


def test_pixels_shifted_in_from_outside_are_black() -> None:
    transform = BatchTransform(16, MEAN, STD, AugmentConfig(translate=0.9))
    images = torch.full((32, 3, 16, 16), 200, dtype=torch.uint8)
    torch.manual_seed(0)
    out = transform(images, train=True)
    black = (-(torch.tensor(MEAN) / torch.tensor(STD))).view(3, 1, 1)
    corner_values = out[:, :, 0, 0]
    assert any(torch.allclose(value, black.flatten(), atol=1e-4) for value in corner_values)


def test_brightness_scales_pixels_within_the_configured_range() -> None:
    transform = BatchTransform(8, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), AugmentConfig(brightness=0.5))
    images = torch.full((256, 3, 8, 8), 100, dtype=torch.uint8)
    torch.manual_seed(0)
    factors = transform(images, train=True)[:, 0, 0, 0] / (100 / 255)
    assert factors.min() >= 0.5 - 1e-5 and factors.max() <= 1.5 + 1e-5
    assert factors.max() - factors.min() > 0.8  # spread over the range, not one factor for the batch


def test_affine_grid_equals_torch() -> None:
    theta = torch.randn(5, 2, 3)
    for size in (1, 7, 32):
        expected = F.affine_grid(theta, [5, 3, size, size], align_corners=False)
        torch.testing.assert_close(affine_grid(theta, size), expected, rtol=1e-5, atol=1e-6)


def test_resizing_and_flipping_leave_the_edges_as_a_plain_resize_does() -> None:
    """Upsampling reads past the outermost pixel centres; that must not pull in the black fill. On a uniform
    image every output pixel of a flip-only or resize-only batch equals the plain resize, at 32 -> 224 and
    32 -> 32."""
    uniform = torch.full((4, 3, 32, 32), 200, dtype=torch.uint8)
    for size in (224, 32):
        plain = BatchTransform(size, MEAN, STD)(uniform)
        assert torch.allclose(plain, reference(uniform[:, :, :1, :1]).expand_as(plain), atol=1e-5)
        torch.manual_seed(0)
        flipped = BatchTransform(size, MEAN, STD, AugmentConfig(hflip=True))(uniform, train=True)
        assert (flipped - plain).abs().max() <= 1e-5, size


def test_a_flipped_upsampled_image_is_the_mirrored_plain_resize() -> None:
    images = random_images(16)
    plain = BatchTransform(112, MEAN, STD)(images)
    torch.manual_seed(0)
    flipped = BatchTransform(112, MEAN, STD, AugmentConfig(hflip=True))(images, train=True)
    as_is = (flipped - plain).abs().amax((1, 2, 3)) <= 1e-5
    mirrored = (flipped - plain.flip(-1)).abs().amax((1, 2, 3)) <= 1e-5
    assert bool((as_is | mirrored).all()) and 0 < int(mirrored.sum()) < 16


def test_only_points_moved_outside_the_image_are_filled() -> None:
    """A zoom out (scale 0.5) leaves a black frame where the transform moved the image's border inwards; the
    image inside keeps its colour right up to its edge."""
    uniform = torch.full((2, 3, 32, 32), 200, dtype=torch.uint8)
    out = BatchTransform(64, MEAN, STD, AugmentConfig(scale=(0.5, 0.5)))(uniform, train=True)
    black, colour = reference(torch.zeros(1, 3, 1, 1, dtype=torch.uint8)), reference(uniform[:1, :, :1, :1])
    assert torch.allclose(out[:, :, 16:48, 16:48], colour.expand(2, 3, 32, 32), atol=1e-5)  # the image, edges included
    assert torch.allclose(out[:, :, :15, :], black.expand(2, 3, 15, 64), atol=1e-5)  # outside it: the fill


def test_randaugment_draws_per_image_operations_from_the_seed_and_keeps_the_range() -> None:
    from vitswin.model.randaugment import OPERATIONS, rand_augment

    pixels = torch.rand(256, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    first = rand_augment(pixels, 2, 9.0, 0.5)
    torch.manual_seed(3)
    assert torch.equal(first, rand_augment(pixels, 2, 9.0, 0.5))  # a function of the generator's seed
    assert first.shape == pixels.shape and first.min() >= 0 and first.max() <= 1
    changed = (first != pixels).flatten(1).any(1).float().mean()
    assert 0.6 < changed < 0.85  # two draws each applied half the time: 75 % of images changed, some by no-ops
    assert torch.equal(rand_augment(pixels, 0, 9.0, 0.5), pixels)
    assert len(OPERATIONS) == 15


def test_randaugment_operations_do_what_their_names_say() -> None:
    from vitswin.model.randaugment import OPERATIONS

    pixels = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    none, full = torch.zeros(4), torch.ones(4)
    assert torch.allclose(OPERATIONS["Invert"](pixels, full), 1 - pixels)
    for name in ("ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"):
        assert torch.allclose(OPERATIONS[name](pixels, none), pixels, atol=1e-6), name  # factor 1: unchanged
    assert torch.allclose(OPERATIONS["BrightnessIncreasing"](pixels, -full), pixels * 0.1, atol=1e-6)
    for name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
        assert torch.allclose(OPERATIONS[name](pixels, none), pixels, atol=1e-5), name  # strength 0: identity
    shifted = OPERATIONS["TranslateXRel"](pixels, full)  # by 45 % of the width, as PIL's: the right 3 columns are grey
    assert torch.allclose(shifted[..., -3:], torch.full_like(shifted[..., -3:], 0.5), atol=1e-5)
    assert torch.allclose(shifted[..., 0], pixels[..., 3] * 0.4 + pixels[..., 4] * 0.6, atol=1e-5)  # 3.6 px along
    assert torch.equal(OPERATIONS["SolarizeIncreasing"](pixels, none), (pixels * 255).round() / 255)  # threshold 256
    stretched = OPERATIONS["AutoContrast"](pixels * 0.5 + 0.25, full)
    assert torch.allclose(stretched.amin((2, 3)), torch.zeros(4, 3)) and torch.allclose(stretched.amax((2, 3)), torch.ones(4, 3))
    kept = OPERATIONS["PosterizeIncreasing"](pixels, full).unique()  # 1 bit kept at full strength
    assert torch.allclose(kept, torch.tensor([0.0, 128 / 255]))
