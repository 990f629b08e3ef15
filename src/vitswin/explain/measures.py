"""The built-in explanation measures (registered in vitswin.registry.MEASURES): each maps one batch of explained
images to per-image numbers, using the array arithmetic of vitswin.explain.metrics."""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vitswin.explain import metrics


@dataclass(frozen=True)
class MeasureBatch:
    """What a measure sees of one batch: the network and its inputs, the maps, and the class each map explains."""

    network: nn.Module
    inputs: torch.Tensor  # (B, 3, H_in, W_in), normalised, at the model's input size
    input_maps: np.ndarray  # (B, H_in, W_in), the method's output
    maps: np.ndarray  # (B, h, w) at the stored image size
    baseline_maps: np.ndarray  # (B, H_in, W_in) random maps with a heatmap's structure
    randomised_maps: np.ndarray  # (B, h, w) the same method on the same architecture with random weights
    classes: torch.Tensor  # (B,) the class each map explains
    masks: np.ndarray | None  # (B, h, w) object masks, where the data has them
    steps: int  # points on each deletion / insertion curve, after the start


def concentration(batch: MeasureBatch) -> dict[str, np.ndarray]:
    """How much of each map's mass sits on few pixels (top-10 % share, Gini, entropy)."""
    return metrics.concentration(batch.maps)


def faithfulness(batch: MeasureBatch) -> dict[str, np.ndarray]:
    """Deletion and insertion AUCs of the maps, and of random maps as their baseline."""
    curves = metrics.perturbation_curves(batch.network, batch.inputs, batch.input_maps, batch.classes, batch.steps)
    random_curves = metrics.perturbation_curves(batch.network, batch.inputs, batch.baseline_maps, batch.classes, batch.steps)
    return {
        "deletion_auc": metrics.area_under_curve(curves["deletion"]),
        "insertion_auc": metrics.area_under_curve(curves["insertion"]),
        "random_deletion_auc": metrics.area_under_curve(random_curves["deletion"]),
        "random_insertion_auc": metrics.area_under_curve(random_curves["insertion"]),
    }


def randomisation(batch: MeasureBatch) -> dict[str, np.ndarray]:
    """The model-randomisation check: how much the maps resemble a randomly initialised twin's."""
    return {"randomisation_rank_corr": metrics.agreement(batch.maps, batch.randomised_maps)["rank_corr"]}


def road(batch: MeasureBatch) -> dict[str, np.ndarray]:
    """grad-cam's ROAD faithfulness score (noise drawn from PyTorch's global generator: the caller seeds it)."""
    return {"road": metrics.road_score(batch.network, batch.inputs, batch.input_maps, batch.classes)}


def pointing(batch: MeasureBatch) -> dict[str, np.ndarray]:
    """The pointing game and the mass on the object, against the data's object masks."""
    assert batch.masks is not None  # registered with needs_masks
    return metrics.pointing(batch.maps, batch.masks)
