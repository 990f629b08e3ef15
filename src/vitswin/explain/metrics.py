"""Measured attention: how concentrated a heatmap is, how two agree, whether it is faithful, and
(where object masks are known) whether it points at the object.

Maps are non-negative arrays (N, H, W). An all-zero map carries no preference, so it is read as
uniform. Faithfulness curves run the model; everything else is plain array arithmetic.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy.stats import rankdata
from torch import nn
from torchvision.transforms.functional import gaussian_blur

TOP_SHARE = 0.10  # concentration: share of mass in the top 10 % of pixels
TOP_REGION = 0.20  # agreement: overlap of the top 20 % regions
ROAD_PERCENTILES = (20, 40, 60, 80)
POINTING_TOLERANCE = 0.03  # of the image side


def _distributions(maps: np.ndarray) -> np.ndarray:
    """Each map as a probability distribution over its pixels (N, P); all-zero maps become uniform."""
    flat = np.clip(maps.reshape(len(maps), -1).astype(np.float64), 0, None)
    totals = flat.sum(1, keepdims=True)
    return np.where(totals > 0, flat / np.where(totals > 0, totals, 1), 1 / flat.shape[1])


def concentration(maps: np.ndarray) -> dict[str, np.ndarray]:
    """Per map: share of mass in the top 10 % of pixels, Gini coefficient, entropy / log(pixels) (1 = uniform)."""
    p = np.sort(_distributions(maps), axis=1)  # ascending
    pixels = p.shape[1]
    top = max(1, round(TOP_SHARE * pixels))
    ranks = np.arange(1, pixels + 1)
    gini = (2 * (ranks * p).sum(1) - (pixels + 1)) / pixels  # p sums to 1
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(1) / math.log(pixels)
    return {"top10_share": p[:, -top:].sum(1), "gini": gini, "entropy": entropy}


def agreement(maps_a: np.ndarray, maps_b: np.ndarray) -> dict[str, np.ndarray]:
    """Per image pair: Spearman rank correlation and IoU of the top-20 % regions of two models' maps."""
    ranks_a = rankdata(maps_a.reshape(len(maps_a), -1), axis=1)
    ranks_b = rankdata(maps_b.reshape(len(maps_b), -1), axis=1)
    rank_corr = np.array([_pearson(a, b) for a, b in zip(ranks_a, ranks_b, strict=True)])
    top_a, top_b = _top_region(maps_a), _top_region(maps_b)
    iou = (top_a & top_b).sum(1) / np.maximum((top_a | top_b).sum(1), 1)
    return {"rank_corr": rank_corr, "top20_iou": iou}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0  # a constant map correlates with nothing


def _top_region(maps: np.ndarray) -> np.ndarray:
    """Boolean (N, P): the TOP_REGION share of pixels with the highest values (ties broken by position)."""
    flat = maps.reshape(len(maps), -1)
    count = max(1, round(TOP_REGION * flat.shape[1]))
    order = np.argsort(-flat, axis=1, kind="stable")[:, :count]
    region = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(region, order, True, axis=1)
    return region


def pointing(maps: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """Against object masks (N, H, W) of the maps' size: does the peak hit the object, and how much mass is on it.

    As in the pointing game of Zhang et al. (2016), a peak within a small tolerance of the object counts
    as a hit: 15 pixels on ~500-pixel PASCAL images, here 3 % of the image side and at least one pixel.
    `pointing_random` is what a random map scores (its peak is equally likely anywhere: the share of the
    image within the tolerance of the object); `mask_fraction` is the object's share of the image, what
    a random map's `mask_mass` is in expectation.
    """
    tolerance = max(1, round(POINTING_TOLERANCE * max(masks.shape[1:])))
    masks_t = torch.from_numpy(np.asarray(masks, dtype=np.float32)).unsqueeze(1)
    near = F.max_pool2d(masks_t, 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0].numpy() > 0
    flat_near, flat_masks = near.reshape(len(near), -1), masks.reshape(len(masks), -1).astype(bool)
    peaks = maps.reshape(len(maps), -1).argmax(1)
    return {
        "pointing_hit": flat_near[np.arange(len(near)), peaks].astype(np.float64),
        "pointing_random": flat_near.mean(1),
        "mask_mass": (_distributions(maps) * flat_masks).sum(1),
        "mask_fraction": flat_masks.mean(1),
    }


@torch.no_grad()
def perturbation_curves(
    network: nn.Module, inputs: torch.Tensor, maps: np.ndarray, classes: torch.Tensor, steps: int = 16
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves (N, steps + 1): the class probability as the most highlighted pixels
    are removed (set to the dataset mean, 0 after normalisation) or revealed on a blurred copy."""
    batch, _, height, width = inputs.shape
    order = torch.from_numpy(maps).reshape(batch, -1).argsort(dim=1, descending=True, stable=True)
    rank = order.argsort(1).reshape(batch, 1, height, width)  # each pixel's position in the order
    sigma = max(1.0, height / 16)
    blurred = gaussian_blur(inputs, [2 * math.ceil(3 * sigma) + 1] * 2, [sigma, sigma])
    deletion, insertion = [], []
    for step in range(steps + 1):
        changed = rank < round(step / steps * height * width)
        probabilities = network(torch.cat([torch.where(changed, 0.0, inputs), torch.where(changed, inputs, blurred)]))
        probabilities = probabilities.float().softmax(1).gather(1, classes.repeat(2).unsqueeze(1))[:, 0]
        deletion.append(probabilities[:batch])
        insertion.append(probabilities[batch:])
    return {"deletion": torch.stack(deletion, 1).cpu().numpy(), "insertion": torch.stack(insertion, 1).cpu().numpy()}


def random_maps(count: int, grid: tuple[int, int], size: tuple[int, int], generator: torch.Generator) -> np.ndarray:
    """Random maps with a heatmap's structure: uniform values on the model's feature grid, upsampled to `size`.

    The baseline for deletion and insertion. Scattering single pixels instead makes noise that lowers any
    model's confidence faster than removing a coherent region, whatever the map, so it is no fair baseline.
    """
    cells = torch.rand(count, 1, *grid, generator=generator)
    return F.interpolate(cells, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def area_under_curve(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area of curves (N, K) sampled evenly on [0, 1]."""
    return np.trapezoid(curves, dx=1 / (curves.shape[1] - 1), axis=1)


def road_score(network: nn.Module, inputs: torch.Tensor, maps: np.ndarray, classes: torch.Tensor) -> np.ndarray:
    """grad-cam's ROAD (least- minus most-relevant-first removal with noisy linear imputation, halved), per image:
    higher means removing what the map highlights hurts the class probability more."""
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes]
    return np.asarray(ROADCombined(percentiles=list(ROAD_PERCENTILES))(inputs, maps, targets, network), dtype=np.float64)


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Maps (N, H, W) resized to `size` (bilinear; area-weighted when shrinking)."""
    if tuple(maps.shape[1:]) == tuple(size):
        return maps
    tensor = torch.from_numpy(maps).unsqueeze(1)
    resized = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=size[0] < maps.shape[1])
    return resized[:, 0].clamp_(min=0).numpy()
