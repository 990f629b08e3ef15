"""The report's benchmark section: whatever `vitswin bench` wrote into the study's bench/ folder."""

import json
from pathlib import Path

from vitswin.report.document import Block, Heading, Paragraph, Table


def bench_section(study_dir: Path) -> list[Block]:
    """Tables of the models, pipeline and engine benchmarks that exist (none: an empty list)."""
    folder = Path(study_dir) / "bench"
    blocks: list[Block] = []
    if (path := folder / "models.json").is_file():
        saved = json.loads(path.read_text())
        rows = [
            [
                row["model"],
                str(row["image_size"]),
                row["settings"],
                str(row["batch"]),
                f"{row['train_gflops']:.3f}",
                f"{row['train_images_per_s']:.1f}",
                f"{row['inference_images_per_s']:.1f}",
                f"{row['activation_mb']:.2f}",
                f"{row['train_gflops_per_s']:.1f}",
                f"{100 * row['peak_share']:.0f} %",
            ]
            for row in saved["rows"]
        ]
        blocks += [
            Table(
                [
                    "model",
                    "input px",
                    "settings",
                    "batch",
                    "training GFLOPs per image",
                    "training images/s",
                    "inference images/s",
                    "activation MB per image",
                    "training GFLOP/s",
                    "share of matmul peak",
                ],
                rows,
            ),
            Paragraph(
                f"Measured by 'vitswin bench models' on {saved['device']}: medians of repeated steps "
                f"after warm-up on model-ready random batches; the matrix-multiply peak is measured "
                f"right before each model, in the same number format."
            ),
        ]
    if (path := folder / "pipeline.json").is_file():
        saved = json.loads(path.read_text())
        blocks += [
            Table(
                ["input pipeline (224 px, published Swin augmentation)", "images/s", "speed-up"],
                [[row["name"], f"{row['images_per_s']:.0f}", f"{row['speed_up']:.2f}x"] for row in saved["rows"]],
            ),
            Table(
                ["model", "pipeline images/s at its input", "training images/s", "headroom"],
                [
                    [
                        row["model"],
                        f"{row['pipeline_images_per_s']:.0f}",
                        f"{row['train_images_per_s']:.1f}",
                        f"{row['headroom']:.0f}x",
                    ]
                    for row in saved["models"]
                ],
            ),
        ]
    if (path := folder / "engine.json").is_file():
        row = json.loads(path.read_text())["rows"][0]
        blocks.append(
            Paragraph(
                f"Training engine ({row['model']}): the Lightning loop trains at "
                f"{row['lightning_images_per_s']:.0f} images/s, a bare PyTorch loop doing the same "
                f"work at {row['bare_images_per_s']:.0f} ({100 * row['overhead']:.1f} % overhead)."
            )
        )
    return [Heading("Benchmarks"), *blocks] if blocks else []
