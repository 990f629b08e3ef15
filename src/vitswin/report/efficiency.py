"""The report's data-efficiency section, for a design with training-set sizes (`train_sizes`): test accuracy
against the number of training images, one line per model (and recipe), the seeds' range as a band."""

import numpy as np

from vitswin.report.document import Block, Heading, Paragraph, Plot, Table
from vitswin.report.figures import data_efficiency
from vitswin.report.inputs import ReportContext


def data_efficiency_section(report: ReportContext) -> list[Block]:
    """Nothing when the design has no training-set sizes."""
    design = report.inputs.config.design()
    curves: dict[str, dict[int, list[float]]] = {}
    for model, cells in design.items():
        for cell, values in cells.items():
            if "train size" not in values:
                continue
            line = model + (f" (recipe {values['recipe']})" if "recipe" in values else "")
            runs = report.inputs.runs[cell]
            curves.setdefault(line, {})[int(runs[0].train["train_images"])] = [run.accuracy for run in runs]
    if not curves:
        return []
    sizes = sorted({size for points in curves.values() for size in points})
    rows = [[line, *(_mean_range(points[size]) if size in points else "-" for size in sizes)] for line, points in curves.items()]
    return [
        Heading("Data efficiency"),
        Table(["model", *(f"{size} training images" for size in sizes)], rows),
        Plot(
            "data_efficiency",
            data_efficiency(curves),
            "Test accuracy against the number of training images (nested subsets: each smaller set is part of every "
            "larger one), the mean over seeds with their range as a band.",
        ),
        Paragraph(
            "The findings compare the models at each size, and state per pair of sizes whether the gap between them "
            "changes (architecture by training-set size)."
        ),
    ]


def _mean_range(accuracies: list[float]) -> str:
    text = f"{100 * np.mean(accuracies):.2f} %"
    return text + (f" ({100 * min(accuracies):.2f} to {100 * max(accuracies):.2f})" if len(accuracies) > 1 else "")
