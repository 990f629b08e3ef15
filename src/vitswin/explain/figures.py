"""The published figures: one row per image, the original then each model's heatmap, titled with its prediction."""

from dataclasses import dataclass

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

DPI = 100
CELL_INCHES = 1.6  # image area of one cell
TITLE_INCHES = 0.3  # room for the title above each cell
GRID_CELLS = 12  # cells in a row of the grid: about a page's width at the report's scale
BAR_INCHES = 1.2  # room for the colour bar and its label
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
    """Blocks of [original | model heatmaps], one per image, laid side by side until a row holds about
    GRID_CELLS cells (so the figure fills a page's width) and a colour bar for the maps' scale; `images` are
    (N, H, W, 3) floats in [0, 1] at display size.

    With `overlay`, each heatmap is drawn translucently over its image; otherwise alone. Wrong predictions
    are titled in red and marked "(wrong)". An image whose true class is None (a new image) is titled with its
    entry of `titles` instead.
    """
    width = 1 + len(columns)
    per_row = max(1, min(len(images), GRID_CELLS // width))
    rows, cols = -(-len(images) // per_row), per_row * width
    figure = Figure(figsize=(cols * CELL_INCHES + BAR_INCHES, rows * (CELL_INCHES + TITLE_INCHES)), dpi=DPI)
    axes = figure.subplots(rows, cols, squeeze=False)
    right = 1 - BAR_INCHES / (cols * CELL_INCHES + BAR_INCHES)
    spacing = {"wspace": 0.05, "hspace": TITLE_INCHES / CELL_INCHES}
    figure.subplots_adjust(left=0.005, right=right, bottom=0.01, top=1 - 0.1 / rows, **spacing)
    for index, (image, truth) in enumerate(zip(images, true_names, strict=True)):
        row, first = divmod(index, per_row)
        cells = axes[row, first * width : (first + 1) * width]
        cells[0].imshow(image, interpolation="bilinear")
        cells[0].set_title(f"true: {truth}" if truth is not None else (titles or [""] * len(images))[index], fontsize=8)
        for axis, column in zip(cells[1:], columns, strict=True):
            if overlay:
                axis.imshow(image, interpolation="bilinear")
            axis.imshow(column.maps[index], cmap="jet", vmin=0, vmax=1, alpha=0.5 if overlay else 1.0, interpolation="bilinear")
            predicted = column.predictions[index]
            wrong = truth is not None and predicted != truth
            axis.set_title(
                f"{column.name}: {predicted}{' (wrong)' if wrong else ''}", fontsize=8, color=WRONG_COLOUR if wrong else "black"
            )
    for axis in axes.flat:
        axis.set_axis_off()
    bar = figure.add_axes((right + 0.2 * (1 - right), 0.15, 0.25 * (1 - right), 0.7))
    figure.colorbar(ScalarMappable(Normalize(0, 1), "jet"), cax=bar, label="heatmap (each map scaled to its maximum)")
    return figure
