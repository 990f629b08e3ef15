"""The published figures: one row per image, the original then each model's heatmap, titled with its prediction."""

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

DPI = 100
CELL_INCHES = 1.6  # image area of one cell
TITLE_INCHES = 0.3  # room for the title above each cell
WRONG_COLOUR = "#c0392b"


@dataclass(frozen=True)
class ModelColumn:
    """One model's heatmaps (N, H, W) in [0, 1] at display size, and its predicted class names."""

    name: str
    maps: np.ndarray
    predictions: list[str]


def heatmap_grid(
    images: np.ndarray, true_names: list[str | None], columns: list[ModelColumn], overlay: bool, titles: list[str] | None = None
) -> Figure:
    """Rows of [original | model heatmaps]; `images` are (N, H, W, 3) floats in [0, 1] at display size.

    With `overlay`, each heatmap is drawn translucently over its image; otherwise alone. Wrong predictions
    are titled in red and marked "(wrong)". An image whose true class is None (a new image) is titled with its
    entry of `titles` instead.
    """
    rows, cols = len(images), 1 + len(columns)
    figure = Figure(figsize=(cols * CELL_INCHES, rows * (CELL_INCHES + TITLE_INCHES)), dpi=DPI)
    axes = figure.subplots(rows, cols, squeeze=False)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.1 / rows, wspace=0.05, hspace=TITLE_INCHES / CELL_INCHES)
    for row, (image, truth) in enumerate(zip(images, true_names, strict=True)):
        axes[row, 0].imshow(image, interpolation="bilinear")
        axes[row, 0].set_title(f"true: {truth}" if truth is not None else (titles or [""] * rows)[row], fontsize=8)
        for col, column in enumerate(columns, start=1):
            axis = axes[row, col]
            if overlay:
                axis.imshow(image, interpolation="bilinear")
            axis.imshow(column.maps[row], cmap="jet", vmin=0, vmax=1, alpha=0.5 if overlay else 1.0, interpolation="bilinear")
            predicted = column.predictions[row]
            wrong = truth is not None and predicted != truth
            axis.set_title(
                f"{column.name}: {predicted}{' (wrong)' if wrong else ''}", fontsize=8, color=WRONG_COLOUR if wrong else "black"
            )
    for axis in axes.flat:
        axis.set_axis_off()
    return figure
