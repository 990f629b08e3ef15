"""The report's figures, drawn from the run folders' plain files (matplotlib, no global pyplot state)."""

import numpy as np
from matplotlib.figure import Figure

from vitswin.report.stats import Calibration, smoothed_loss_floor

PANEL_INCHES = 4.0
PANELS_PER_ROW = 3


def training_curves(
    histories: dict[str, list[list[dict]]], best_epochs: dict[str, list[int]], smoothing: dict[str, float], classes: int
) -> Figure:
    """Loss and accuracy per epoch for every model (one colour) and seed (one line each) on shared axes: train solid,
    validation dashed, each run's best epoch ringed.

    A model trained with label smoothing (`smoothing`, per model) has a training loss that cannot fall below the
    smoothed target's entropy, while its validation loss is plain cross-entropy: the legend says which is which,
    and the training loss's floor is drawn dotted."""
    figure = Figure(figsize=(2 * PANEL_INCHES + 1, PANEL_INCHES), layout="constrained")
    loss_axis, acc_axis = figure.subplots(1, 2, sharex=True)
    for index, (model, runs) in enumerate(histories.items()):
        colour = f"C{index}"
        smoothed = smoothing.get(model, 0.0)
        seeds = f" ({len(runs)} seeds)" if len(runs) > 1 else ""
        for run_index, (history, best_epoch) in enumerate(zip(runs, best_epochs[model], strict=True)):
            labelled = run_index == 0  # one legend entry per model and line type, not per seed

            def label(text: str, labelled: bool = labelled) -> str | None:
                return text if labelled else None

            epochs = [row["epoch"] for row in history]
            train_label = f"{model} train (label smoothing {smoothed:g}){seeds}" if smoothed else f"{model} train{seeds}"
            loss_axis.plot(epochs, [row["train_loss"] for row in history], color=colour, alpha=0.8, label=label(train_label))
            loss_axis.plot(
                epochs,
                [row["val_loss"] for row in history],
                color=colour,
                alpha=0.8,
                linestyle="--",
                label=label(f"{model} val (no smoothing)"),
            )
            acc_axis.plot(
                epochs, [100 * row["train_acc"] for row in history], color=colour, alpha=0.8, label=label(f"{model} train{seeds}")
            )
            acc_axis.plot(
                epochs,
                [100 * row["val_acc"] for row in history],
                color=colour,
                alpha=0.8,
                linestyle="--",
                label=label(f"{model} val"),
            )
            best = next(row for row in history if row["epoch"] == best_epoch)
            acc_axis.plot(
                best["epoch"],
                100 * best["val_acc"],
                marker="o",
                markersize=10,
                fillstyle="none",
                color=colour,
                linestyle="none",
                label=label(f"{model} best epoch"),
            )
        if smoothed:
            floor = smoothed_loss_floor(smoothed, classes)
            loss_axis.axhline(floor, color=colour, linestyle=":", label=f"{model} train floor {floor:.2f}")
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Loss")
    acc_axis.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for axis in (loss_axis, acc_axis):
        axis.grid(alpha=0.3)
    loss_axis.legend(fontsize=7)
    acc_axis.legend(fontsize=7)
    return figure


def confusion_matrices(matrices: dict[str, np.ndarray], class_names: list[str]) -> Figure:
    """One row per model: the confusion matrix as counts and row-normalised (rows: true class)."""
    size = max(PANEL_INCHES, 0.55 * len(class_names) + 1.5)  # cells large enough for 9-point numbers
    figure = Figure(figsize=(2 * size, size * len(matrices)), layout="constrained")
    axes = figure.subplots(len(matrices), 2, squeeze=False)
    for row, (model, counts) in enumerate(matrices.items()):
        normalised = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        for axis, values, title, fmt in (
            (axes[row, 0], counts, "counts", "d"),
            (axes[row, 1], normalised, "row-normalised", ".2f"),
        ):
            axis.imshow(values, cmap="Blues", vmin=0)
            axis.set_title(f"{model}: {title}", fontsize=9)
            axis.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=9)
            axis.set_yticks(range(len(class_names)), class_names, fontsize=9)
            axis.set(xlabel="predicted", ylabel="true")
            if len(class_names) <= 12:  # numbers stay legible
                threshold = values.max() / 2
                for (i, j), value in np.ndenumerate(values):
                    axis.text(
                        j,
                        i,
                        format(value, fmt),
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="white" if value > threshold else "black",
                    )
    return figure


def per_class_accuracy(accuracies: dict[str, np.ndarray], class_names: list[str]) -> Figure:
    """Per-class test accuracy, the models' bars side by side."""
    figure = Figure(figsize=(max(2 * PANEL_INCHES, 0.6 * len(class_names)), PANEL_INCHES), layout="constrained")
    axis = figure.subplots()
    width = 0.8 / len(accuracies)
    positions = np.arange(len(class_names))
    for index, (model, values) in enumerate(accuracies.items()):
        axis.bar(positions + (index - (len(accuracies) - 1) / 2) * width, 100 * values, width, label=model)
    axis.set_xticks(positions, class_names, rotation=45, ha="right", fontsize=8)
    axis.set(ylabel="test accuracy (%)", ylim=(0, 100), title="Per-class accuracy")
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def reliability_diagrams(calibrations: dict[str, Calibration]) -> Figure:
    """Per model: accuracy against confidence per bin, the diagonal being perfect calibration. Panels wrap after
    PANELS_PER_ROW, so a study of many models stays readable."""
    columns = min(len(calibrations), PANELS_PER_ROW)
    rows = -(-len(calibrations) // columns)
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows), layout="constrained")
    grid = figure.subplots(rows, columns, sharey=True, squeeze=False)
    for axis in grid.flat[len(calibrations) :]:
        axis.set_axis_off()  # the last row's empty places
    axes = grid.flat
    for index, (axis, (model, calibration)) in enumerate(zip(axes, calibrations.items(), strict=False)):
        edges = calibration.bin_edges
        filled = calibration.count > 0
        axis.bar(
            edges[:-1][filled],
            calibration.accuracy[filled],
            np.diff(edges)[filled],
            align="edge",
            color=f"C{index}",
            edgecolor="black",
            linewidth=0.5,
            label="accuracy",
        )
        axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
        axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", title=f"{model}: ECE {calibration.ece:.3f}")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=8, loc="upper left")
    return figure


def axis_curves(panels: dict[str, dict[str, dict[int, list[float]]]], xlabel: str) -> Figure:
    """One panel per quantity (its y label -> line -> x -> values), against `xlabel` on a log scale: one line per
    model, the mean of its values at each x, their range as a band."""
    figure = Figure(figsize=(len(panels) * PANEL_INCHES + 2, PANEL_INCHES), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(panels)))
    for axis, (ylabel, curves) in zip(axes, panels.items(), strict=True):
        for index, (line, points) in enumerate(curves.items()):
            xs = sorted(points)
            values = [np.array(points[x]) for x in xs]
            colour = f"C{index}"
            axis.plot(xs, [v.mean() for v in values], marker="o", color=colour, label=line)
            axis.fill_between(xs, [v.min() for v in values], [v.max() for v in values], color=colour, alpha=0.2)
        axis.set_xscale("log")
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
    axes[0].legend(fontsize="small")
    return figure
