"""The resolution-scaling plot: cost against pixels on log-log axes, with linear and quadratic guides."""

import numpy as np
from matplotlib.figure import Figure

from vitswin.bench.scaling import ScalingRow

PANELS = (
    ("gflops", "GFLOPs per image (forward)"),
    ("activation_mb", "activation memory per image (MB)"),
    ("seconds_per_image", "inference time per image (s)"),
)


def scaling_figure(rows: list[ScalingRow]) -> Figure:
    """One panel per cost; a line per model; dotted guides of slope 1 and 2 through each model's 224-px point."""
    figure = Figure(figsize=(13, 4), layout="constrained")
    for axis, (key, title) in zip(figure.subplots(1, 3), PANELS, strict=True):
        measured: list[float] = []
        for index, model in enumerate(dict.fromkeys(row.model for row in rows)):
            own = [row for row in rows if row.model == model]
            pixels = np.array([row.image_size**2 for row in own], dtype=float)
            values = np.array([1 / row.images_per_s if key == "seconds_per_image" else getattr(row, key) for row in own])
            axis.plot(pixels, values, marker="o", color=f"C{index}", label=model)
            measured += list(values)
            anchor = int(np.argmin(abs(pixels - 224**2)))
            for slope, style in ((1, ":"), (2, "--")):
                axis.plot(
                    pixels,
                    values[anchor] * (pixels / pixels[anchor]) ** slope,
                    color=f"C{index}",
                    linestyle=style,
                    alpha=0.4,
                    linewidth=1,
                )
        axis.set(
            xscale="log", yscale="log", xlabel="pixels per image", title=title, ylim=(min(measured) / 2, max(measured) * 2)
        )  # the guides leave the data's range far below
        axis.grid(alpha=0.3, which="both")
    figure.axes[0].legend(fontsize=8, title="dotted: linear, dashed: quadratic", title_fontsize=7)
    return figure
