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


# Every column any benchmark writes: its label in the report, and how its values are formatted.
COLUMNS: dict[str, tuple[str, str]] = {
    "model": ("model", ""),
    "name": ("input pipeline (224 px, published Swin augmentation)", ""),
    "image_size": ("input px", "d"),
    "settings": ("settings", ""),
    "batch": ("batch", "d"),
    "micro_batch": ("micro-batch", "d"),
    "images": ("images", "d"),
    "optimizer_steps": ("optimizer steps", "d"),
    "precision": ("precision", ""),
    "tokens": ("tokens", "d"),
    "padded": ("padded", ""),
    "parameters_m": ("parameters (M)", ".2f"),
    "forward_gflops": ("GFLOPs per image", ".3f"),
    "train_gflops": ("training GFLOPs per image", ".3f"),
    "gflops": ("GFLOPs per image", ".2f"),
    "train_images_per_s": ("training images/s", ".1f"),
    "inference_images_per_s": ("inference images/s", ".1f"),
    "images_per_s": ("images/s", ".1f"),
    "pipeline_images_per_s": ("pipeline images/s at its input", ".0f"),
    "lightning_images_per_s": ("Lightning loop images/s", ".1f"),
    "bare_images_per_s": ("bare PyTorch loop images/s", ".1f"),
    "epoch_s": ("epoch s", ".1f"),
    "activation_mb": ("activation MB per image", ".2f"),
    "train_gflops_per_s": ("training GFLOP/s", ".1f"),
    "peak_share": ("share of matmul peak", ".0%"),
    "speed_up": ("speed-up (x)", ".2f"),
    "headroom": ("headroom (x)", ".0f"),
    "overhead": ("overhead", ".1%"),
}


def _columns(keys: str) -> tuple[Column, ...]:
    return tuple(Column(key, *COLUMNS[key]) for key in keys.split())


# Each benchmark's table, in column order.
MODELS = _columns(
    "model image_size settings batch parameters_m forward_gflops train_gflops train_images_per_s "
    "inference_images_per_s activation_mb train_gflops_per_s peak_share"
)
PIPELINES = _columns("name images_per_s speed_up")
HEADROOM = _columns("model image_size batch pipeline_images_per_s train_images_per_s headroom")
ENGINE = _columns("model lightning_images_per_s bare_images_per_s overhead")
EPOCH = _columns("model image_size images batch micro_batch optimizer_steps precision epoch_s images_per_s")
SCALING = _columns("model image_size tokens padded gflops activation_mb images_per_s")


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
