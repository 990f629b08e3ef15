"""The report's benchmark section: whatever `vitswin bench` wrote into the study's bench/ folder."""

from vitswin.bench import tables
from vitswin.report.document import Block, Heading, Paragraph, Table
from vitswin.report.inputs import ReportContext
from vitswin.study_folder import StudyFolder


def bench_section(report: ReportContext) -> list[Block]:
    """What `vitswin bench` measured for the study, where it did."""
    return bench_blocks(report.inputs.folder)


def bench_blocks(study: StudyFolder) -> list[Block]:
    """Tables of the models, pipeline and engine benchmarks that exist (none: an empty list)."""
    blocks: list[Block] = []
    if saved := study.read_bench("models"):
        blocks += [
            _table(saved["rows"], tables.MODELS),
            Paragraph(
                f"Measured by 'vitswin bench models' on {saved['device']}: medians of repeated steps "
                f"after warm-up on model-ready random batches; the matrix-multiply peak is measured "
                f"right before each model, in the same number format."
            ),
        ]
    if saved := study.read_bench("pipeline"):
        blocks += [_table(saved["rows"], tables.PIPELINES), _table(saved["models"], tables.HEADROOM)]
    if saved := study.read_bench("engine"):
        row = saved["rows"][0]
        blocks.append(
            Paragraph(
                f"Training engine ({row['model']}): the Lightning loop trains at "
                f"{row['lightning_images_per_s']:.0f} images/s, a bare PyTorch loop doing the same "
                f"work at {row['bare_images_per_s']:.0f} ({100 * row['overhead']:.1f} % overhead)."
            )
        )
    return [Heading("Benchmarks"), *blocks] if blocks else []


def _table(rows: list[dict], columns: tuple[tables.Column, ...]) -> Table:
    return Table([column.label for column in columns], tables.cells(rows, columns))
