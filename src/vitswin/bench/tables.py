"""Each benchmark's columns, defined once: the console tables of `vitswin bench` and the report's benchmark
tables both read them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a benchmark's rows: the row key, a readable label, and the value's format."""

    key: str
    label: str
    spec: str = ""  # format specification, e.g. ".1f"

    def cell(self, row: dict) -> str:
        value = row[self.key]
        return "-" if value is None else format(value, self.spec)


MODELS = (
    Column("model", "model"),
    Column("image_size", "input px", "d"),
    Column("settings", "settings"),
    Column("batch", "batch", "d"),
    Column("parameters_m", "parameters (M)", ".2f"),
    Column("forward_gflops", "GFLOPs per image", ".3f"),
    Column("train_gflops", "training GFLOPs per image", ".3f"),
    Column("train_images_per_s", "training images/s", ".1f"),
    Column("inference_images_per_s", "inference images/s", ".1f"),
    Column("activation_mb", "activation MB per image", ".2f"),
    Column("train_gflops_per_s", "training GFLOP/s", ".1f"),
    Column("peak_share", "share of matmul peak", ".0%"),
)
PIPELINES = (
    Column("name", "input pipeline (224 px, published Swin augmentation)"),
    Column("images_per_s", "images/s", ".0f"),
    Column("speed_up", "speed-up (x)", ".2f"),
)
HEADROOM = (
    Column("model", "model"),
    Column("image_size", "input px", "d"),
    Column("batch", "batch", "d"),
    Column("pipeline_images_per_s", "pipeline images/s at its input", ".0f"),
    Column("train_images_per_s", "training images/s", ".1f"),
    Column("headroom", "headroom (x)", ".0f"),
)
ENGINE = (
    Column("model", "model"),
    Column("lightning_images_per_s", "Lightning loop images/s", ".1f"),
    Column("bare_images_per_s", "bare PyTorch loop images/s", ".1f"),
    Column("overhead", "overhead", ".1%"),
)
EPOCH = (
    Column("model", "model"),
    Column("image_size", "input px", "d"),
    Column("images", "images", "d"),
    Column("batch", "batch", "d"),
    Column("micro_batch", "micro-batch", "d"),
    Column("optimizer_steps", "optimizer steps", "d"),
    Column("precision", "precision"),
    Column("epoch_s", "epoch s", ".1f"),
    Column("images_per_s", "images/s", ".1f"),
)
SCALING = (
    Column("model", "model"),
    Column("image_size", "input px", "d"),
    Column("tokens", "tokens", "d"),
    Column("padded", "padded"),
    Column("gflops", "GFLOPs", ".2f"),
    Column("activation_mb", "activation MB", ".1f"),
    Column("images_per_s", "images/s", ".2f"),
)


def cells(rows: list[dict], columns: tuple[Column, ...]) -> list[list[str]]:
    """The rows' values, formatted, in column order."""
    return [[column.cell(row) for column in columns] for row in rows]


def text_table(rows: list[dict], columns: tuple[Column, ...]) -> str:
    """Rows as a plain-text table with the columns' keys as headers, right-aligned."""
    body = cells(rows, columns)
    widths = [max(len(column.key), *(len(line[i]) for line in body)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.key.rjust(width) for column, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in body]
    return "\n".join(lines)
