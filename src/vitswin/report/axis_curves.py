"""The report's curves along an ordered axis of the design: test accuracy against the number of training images
(`train_sizes`, data efficiency) and accuracy and cost against the input resolution (`input_sizes`), one line per
model (and its values on the other axes), the seeds' range as a band."""

import numpy as np

from vitswin.report.document import Block, Heading, Paragraph, Plot, Table
from vitswin.report.figures import axis_curves
from vitswin.report.inputs import ReportContext

Curves = dict[str, dict[int, list[float]]]  # line -> axis value -> one number per seed


def data_efficiency_section(report: ReportContext) -> list[Block]:
    """Nothing when the design has no training-set sizes."""
    accuracy = _curves(report, "train size", lambda run: int(run.train["train_images"]))
    if not accuracy:
        return []
    return [
        Heading("Data efficiency"),
        _table(accuracy, "training images", _mean_range),
        Plot(
            "data_efficiency",
            axis_curves({"test accuracy (%)": _percent(accuracy)}, "training images"),
            "Test accuracy against the number of training images (nested subsets: each smaller set is part of every "
            "larger one), the mean over seeds with their range as a band.",
        ),
        Paragraph(
            "The findings compare the models at each size and state, per pair of models, how the gap between them "
            "changes from the smallest size to the largest and whether the curves cross (architecture by "
            "training-set size)."
        ),
    ]


def resolution_section(report: ReportContext) -> list[Block]:
    """Nothing when the design has no input sizes."""
    accuracy = _curves(report, "input size", lambda run: run.model.input_size)
    if not accuracy:
        return []
    flops = {line: {x: [v / 1e9 for v in values] for x, values in points.items()} for line, points in _cost(report).items()}
    panels = {"test accuracy (%)": _percent(accuracy), "GFLOPs per image": flops}
    speed = _speed(report)
    if speed:
        panels["inference images/s (this machine)"] = speed
    return [
        Heading("Resolution"),
        _table(accuracy, "px", _mean_range),
        Plot(
            "resolution",
            axis_curves(panels, "input size (px)"),
            "Test accuracy (mean over seeds, their range as a band), FLOPs per image and, where the cost stage timed "
            "them, inference images/s on this machine (its timing rounds' range), against the model input size.",
        ),
        Paragraph(
            "The findings compare the models at each input size and state, per pair of models, how the accuracy gap "
            "changes from the smallest input size to the largest and whether the curves cross (architecture by input "
            "size). A speed on a shared machine is one machine's timing, not a property of the architecture."
        ),
    ]


def _lines(report: ReportContext, axis: str) -> dict[str, list[tuple[str, str]]]:
    """Per line of a curve along `axis` (a model and its values on the other axes), its (axis value, run key)."""
    lines: dict[str, list[tuple[str, str]]] = {}
    for model, cells in report.inputs.config.design().items():
        for cell, values in cells.items():
            if axis in values:
                others = ", ".join(f"{name} {value}" for name, value in values.items() if name != axis)
                lines.setdefault(model + (f" ({others})" if others else ""), []).append((values[axis], cell))
    return lines


def _curves(report: ReportContext, axis: str, x_of_run) -> Curves:
    """Test accuracy per seed at each value of `axis` (its x read from the cell's first run), per line."""
    curves: Curves = {}
    for line, cells in _lines(report, axis).items():
        for _value, cell in cells:
            runs = report.inputs.runs[cell]
            curves.setdefault(line, {})[x_of_run(runs[0])] = [run.accuracy for run in runs]
    return curves


def _cost(report: ReportContext) -> Curves:
    return {
        line: {report.inputs.runs[cell][0].model.input_size: [report.inputs.runs[cell][0].cost.flops] for _v, cell in cells}
        for line, cells in _lines(report, "input size").items()
    }


def _speed(report: ReportContext) -> Curves:
    """Inference images/s per timing round at each input size, where the cost stage timed every cell of a line."""
    speed = report.inputs.speed
    curves: Curves = {}
    for line, cells in _lines(report, "input size").items():
        if speed and all(cell in speed.models for _v, cell in cells):
            curves[line] = {
                report.inputs.runs[cell][0].model.input_size: list(speed.models[cell].inference_images_per_s)
                for _v, cell in cells
            }
    return curves


def _table(curves: Curves, unit: str, show) -> Table:
    xs = sorted({x for points in curves.values() for x in points})
    rows = [[line, *(show(points[x]) if x in points else "-" for x in xs)] for line, points in curves.items()]
    return Table(["model", *(f"{x} {unit}" for x in xs)], rows)


def _percent(curves: Curves) -> Curves:
    return {line: {x: [100 * v for v in values] for x, values in points.items()} for line, points in curves.items()}


def _mean_range(accuracies: list[float]) -> str:
    text = f"{100 * np.mean(accuracies):.2f} %"
    return text + (f" ({100 * min(accuracies):.2f} to {100 * max(accuracies):.2f})" if len(accuracies) > 1 else "")
