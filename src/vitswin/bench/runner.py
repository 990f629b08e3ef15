"""`vitswin bench`: run one benchmark, print its table, write its JSON and CSV (and plot) into a bench folder.

models, pipeline and engine benchmark a study config and write to `<study>/bench/`, where the report finds
them; scaling needs no config and writes to `<out>/bench/`.
"""

import logging
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from vitswin.artifacts import write_csv, write_json, write_png
from vitswin.bench.engine import compare_engines
from vitswin.bench.epoch import epoch_time
from vitswin.bench.measure import TrainSettings, train_throughput
from vitswin.bench.models import ModelBench, bench_model, option_variants
from vitswin.bench.pipeline import batched_images_per_s, compare_pipelines
from vitswin.bench.scaling import growth_exponents, measure_scaling
from vitswin.config import AugmentConfig, StudyConfig
from vitswin.data import load_data
from vitswin.errors import VitswinError
from vitswin.models import build_network

log = logging.getLogger(__name__)

# The published Swin augmentation (configs/seed-cifar10.yaml), used for the classic-pipeline comparison.
PUBLISHED_SWIN_AUGMENT = AugmentConfig(
    hflip=True, brightness=0.2, contrast=0.2, saturation=0.2, degrees=10, translate=0.1, scale=(0.9, 1.1)
)


def bench_device(config: StudyConfig) -> torch.device:
    """The device the study would train on: CUDA when asked for or available under 'auto', else the CPU."""
    wants_gpu = config.accelerator in ("gpu", "cuda") or (config.accelerator == "auto" and torch.cuda.is_available())
    if wants_gpu and not torch.cuda.is_available():
        raise VitswinError(
            f"the config asks for accelerator '{config.accelerator}' but PyTorch sees no CUDA GPU; use --set accelerator=cpu."
        )
    return torch.device("cuda" if wants_gpu else "cpu")


def _model_keys(config: StudyConfig, keys: list[str] | None) -> list[str]:
    for key in keys or []:
        if key not in config.models:
            raise VitswinError(f"the config has no model '{key}'; choose one of: {', '.join(config.models)}.")
    return keys or list(config.models)


def _save(rows: list[dict], folder: Path, name: str, extra: dict | None = None) -> Path:
    write_json({"rows": rows, **(extra or {})}, folder / f"{name}.json")
    write_csv(rows, folder / f"{name}.csv")
    return folder / f"{name}.json"


def table(rows: list[dict], columns: dict[str, str]) -> str:
    """Rows as a plain-text table; `columns` maps each key to its format (e.g. '.1f')."""
    cells = [[format(row[key], spec) if row[key] is not None else "-" for key, spec in columns.items()] for row in rows]
    widths = [max(len(key), *(len(line[i]) for line in cells)) for i, key in enumerate(columns)]
    lines = ["  ".join(key.rjust(width) for key, width in zip(columns, widths, strict=True))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


MODEL_COLUMNS = {
    "model": "",
    "image_size": "d",
    "settings": "",
    "batch": "d",
    "parameters_m": ".2f",
    "forward_gflops": ".3f",
    "train_images_per_s": ".1f",
    "inference_images_per_s": ".1f",
    "activation_mb": ".2f",
    "train_gflops_per_s": ".1f",
    "peak_share": ".0%",
}


def bench_models(
    config: StudyConfig, keys: list[str] | None, settings: TrainSettings, compare: bool, repeats: int = 3
) -> tuple[list[ModelBench], Path]:
    device = bench_device(config)
    variants = option_variants(settings, compare, device)
    rows = []
    for key in tqdm(_model_keys(config, keys), desc="bench", unit="model", disable=None):
        try:
            rows += bench_model(key, config.models[key], variants, device, repeats)
        except torch.OutOfMemoryError:
            raise VitswinError(f"{key} ran out of memory with batch {settings.batch}; pass a smaller --batch.") from None
    dicts = [asdict(row) for row in rows]
    log.info("%s", table(dicts, MODEL_COLUMNS))
    return rows, _save(dicts, config.study_dir / "bench", "models", {"device": str(device)})


def bench_pipeline(config: StudyConfig, batches: int, workers: int, rounds: int = 3) -> Path:
    """The classic-vs-batched comparison at 224 pixels, and for each model of the study its pipeline's speed
    at its own input size and augmentation against its training speed (the pipeline must not be the bottleneck)."""
    device = bench_device(config)
    train = load_data(config.data, config.seed).train
    mean, std = config.data.mean, config.data.std
    comparison = [
        asdict(result)
        for result in compare_pipelines(
            train, PUBLISHED_SWIN_AUGMENT, 224, mean, std, batches=batches, workers=workers, device=device, rounds=rounds
        )
    ]
    best_classic = max(row["images_per_s"] for row in comparison if row["name"].startswith("classic"))
    for row in comparison:
        row["speed_up"] = row["images_per_s"] / best_classic
    headroom = []
    for key, model in config.models.items():
        batch = model.train.micro_batch_size or model.train.batch_size
        pipeline = batched_images_per_s(train, model.augment, model.image_size, mean, std, batch, batches, device)
        network = build_network(model.model_copy(update={"pretrained": "none"}), 10).to(device)
        precision = "bf16-mixed" if model.train.precision == "bf16-mixed" else "32"
        training = train_throughput(network, model.image_size, TrainSettings(batch=batch, precision=precision))
        headroom.append(
            {
                "model": key,
                "image_size": model.image_size,
                "batch": batch,
                "pipeline_images_per_s": pipeline,
                "train_images_per_s": training,
                "headroom": pipeline / training,
            }
        )
    log.info(
        "%s\n\n%s",
        table(comparison, {"name": "", "images_per_s": ".0f", "speed_up": ".2f"}),
        table(
            headroom,
            {
                "model": "",
                "image_size": "d",
                "batch": "d",
                "pipeline_images_per_s": ".0f",
                "train_images_per_s": ".1f",
                "headroom": ".0f",
            },
        ),
    )
    return _save(comparison, config.study_dir / "bench", "pipeline", {"device": str(device), "models": headroom})


def bench_engine(config: StudyConfig, key: str, steps: int, rounds: int) -> Path:
    result = compare_engines(config, _model_keys(config, [key])[0], steps=steps, rounds=rounds)
    row = {
        "model": key,
        "lightning_images_per_s": result.lightning_images_per_s,
        "bare_images_per_s": result.bare_images_per_s,
        "overhead": result.overhead,
    }
    log.info("%s", table([row], {"model": "", "lightning_images_per_s": ".1f", "bare_images_per_s": ".1f", "overhead": ".1%"}))
    return _save([row], config.study_dir / "bench", "engine")


def bench_epoch(config: StudyConfig, keys: list[str] | None, images: int) -> Path:
    device = bench_device(config)
    with warnings.catch_warnings():  # only training is timed, so there is no validation set
        warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
        rows = [epoch_time(config, key, images, device) for key in _model_keys(config, keys)]
    log.info(
        "%s",
        table(
            rows,
            {
                "model": "",
                "image_size": "d",
                "images": "d",
                "batch": "d",
                "precision": "",
                "epoch_s": ".1f",
                "images_per_s": ".1f",
            },
        ),
    )
    return _save(rows, config.study_dir / "bench", "epoch", {"device": str(device)})


def bench_scaling(out_dir: Path, models: tuple[str, ...], sizes: tuple[int, ...], device: torch.device) -> Path:
    from vitswin.bench.figures import scaling_figure

    rows = measure_scaling(models, sizes, device=device)
    exponents = growth_exponents(rows)
    dicts = [asdict(row) for row in rows]
    log.info(
        "%s",
        table(
            dicts,
            {
                "model": "",
                "image_size": "d",
                "tokens": "d",
                "padded": "",
                "gflops": ".2f",
                "activation_mb": ".1f",
                "images_per_s": ".2f",
            },
        ),
    )
    for model, fitted in exponents.items():
        log.info(
            "%s grows as pixels^%.2f in FLOPs, ^%.2f in activation memory, ^%.2f in time per image",
            model,
            fitted["gflops"],
            fitted["activation_mb"],
            fitted["seconds_per_image"],
        )
    folder = out_dir / "bench"
    write_png(scaling_figure(rows), folder / "scaling.png")
    return _save(dicts, folder, "scaling", {"device": str(device), "exponents": exponents})
