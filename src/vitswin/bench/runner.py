"""`vitswin bench`: run one benchmark, print its table, write its JSON and CSV (and plot) into a bench folder.

models, pipeline, engine and epoch benchmark a study config and write to `<study>/bench/`, where the report
finds them; scaling needs no config and writes to `<out>/bench/`.
"""

import logging
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from vitswin.artifacts import write_png
from vitswin.bench import tables
from vitswin.bench.engine import compare_engines
from vitswin.bench.epoch import epoch_time
from vitswin.bench.measure import TrainSettings, train_throughput
from vitswin.bench.models import ModelBench, bench_model, option_variants
from vitswin.bench.pipeline import BatchSpec, batched_images_per_s, compare_pipelines
from vitswin.bench.scaling import growth_exponents, measure_scaling
from vitswin.config import AugmentConfig, StudyConfig
from vitswin.data import load_data
from vitswin.errors import VitswinError
from vitswin.model.network import build_network
from vitswin.study_folder import StudyFolder, bench_folder, write_bench

log = logging.getLogger(__name__)

# The published Swin augmentation (configs/seed-cifar10.yaml), used for the classic-pipeline comparison.
PUBLISHED_SWIN_AUGMENT = AugmentConfig(
    hflip=True, brightness=0.2, contrast=0.2, saturation=0.2, degrees=10, translate=0.1, scale=(0.9, 1.1)
)


def bench_device(accelerator: str) -> torch.device:
    """The device a study with this accelerator setting trains on: CUDA when asked for, or available under
    'auto'; else the CPU."""
    wants_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if wants_gpu and not torch.cuda.is_available():
        raise VitswinError(f"the accelerator '{accelerator}' was asked for but PyTorch sees no CUDA GPU; use --accelerator cpu.")
    return torch.device("cuda" if wants_gpu else "cpu")


def _model_keys(config: StudyConfig, keys: list[str] | None) -> list[str]:
    for key in keys or []:
        if key not in config.models:
            raise VitswinError(f"the config has no model '{key}'; choose one of: {', '.join(config.models)}.")
    return keys or list(config.models)


def bench_models(
    config: StudyConfig, keys: list[str] | None, settings: TrainSettings, compare: bool, repeats: int = 3
) -> tuple[list[ModelBench], Path]:
    """Cost and speed of each model of the study (and of each speed option with `compare`)."""
    device = bench_device(config.accelerator)
    variants = option_variants(settings, compare, device)
    rows = []
    for key in tqdm(_model_keys(config, keys), desc="bench", unit="model", disable=None):
        try:
            rows += bench_model(key, config.models[key], variants, device, repeats)
        except torch.OutOfMemoryError:
            raise VitswinError(f"{key} ran out of memory with batch {settings.batch}; pass a smaller --batch.") from None
    dicts = [asdict(row) for row in rows]
    log.info("%s", tables.text_table(dicts, tables.MODELS))
    return rows, write_bench(StudyFolder.of(config).bench, "models", dicts, {"device": str(device)})


def bench_pipeline(config: StudyConfig, batches: int, workers: int, rounds: int = 3) -> Path:
    """The classic-vs-batched comparison at 224 pixels, and for each model of the study its pipeline's speed
    at its own input size and augmentation against its training speed (the pipeline must not be the bottleneck)."""
    device = bench_device(config.accelerator)
    train = load_data(config.data).train
    mean, std = config.data.mean, config.data.std
    comparison = [
        asdict(result)
        for result in compare_pipelines(
            train, BatchSpec(PUBLISHED_SWIN_AUGMENT, 224, mean, std), batches, workers, device, rounds
        )
    ]
    best_classic = max(row["images_per_s"] for row in comparison if row["name"].startswith("classic"))
    for row in comparison:
        row["speed_up"] = row["images_per_s"] / best_classic
    headroom = []
    for key, model in config.models.items():
        batch = model.train.micro_batch_size or model.train.batch_size
        spec = BatchSpec(model.augment, model.input_size, mean, std, batch)
        pipeline = batched_images_per_s(train, spec, batches, device)
        network = build_network(model, 10, weights="random").to(device)
        precision = "bf16-mixed" if model.train.precision == "bf16-mixed" else "32"
        training = train_throughput(network, model.input_size, TrainSettings(batch=batch, precision=precision))
        headroom.append(
            {
                "model": key,
                "image_size": model.input_size,
                "batch": batch,
                "pipeline_images_per_s": pipeline,
                "train_images_per_s": training,
                "headroom": pipeline / training,
            }
        )
    log.info("%s\n\n%s", tables.text_table(comparison, tables.PIPELINES), tables.text_table(headroom, tables.HEADROOM))
    extra = {"device": str(device), "models": headroom}
    return write_bench(StudyFolder.of(config).bench, "pipeline", comparison, extra)


def bench_engine(config: StudyConfig, key: str, steps: int, rounds: int) -> Path:
    """The Lightning training loop against a bare PyTorch loop, for model `key` of the study."""
    result = compare_engines(config, _model_keys(config, [key])[0], steps=steps, rounds=rounds)
    row = {
        "model": key,
        "lightning_images_per_s": result.lightning_images_per_s,
        "bare_images_per_s": result.bare_images_per_s,
        "overhead": result.overhead,
    }
    log.info("%s", tables.text_table([row], tables.ENGINE))
    return write_bench(StudyFolder.of(config).bench, "engine", [row])


def bench_epoch(config: StudyConfig, keys: list[str] | None, images: int) -> Path:
    """One epoch of each model's recipe on synthetic data resident on the training device."""
    device = bench_device(config.accelerator)
    rows = [epoch_time(config, key, images, device) for key in _model_keys(config, keys)]
    log.info("%s", tables.text_table(rows, tables.EPOCH))
    return write_bench(StudyFolder.of(config).bench, "epoch", rows, {"device": str(device)})


def bench_scaling(out_dir: Path, models: tuple[str, ...], sizes: tuple[int, ...], accelerator: str) -> Path:
    """FLOPs, activation memory and inference speed of `models` at each of `sizes`, with fitted growth exponents."""
    from vitswin.bench.figures import scaling_figure

    device = bench_device(accelerator)
    rows = measure_scaling(models, sizes, device=device)
    exponents = growth_exponents(rows)
    dicts = [asdict(row) for row in rows]
    log.info("%s", tables.text_table(dicts, tables.SCALING))
    for model, fitted in exponents.items():
        log.info(
            "%s grows as pixels^%.2f in FLOPs, ^%.2f in activation memory, ^%.2f in time per image",
            model,
            fitted["gflops"],
            fitted["activation_mb"],
            fitted["seconds_per_image"],
        )
    folder = bench_folder(out_dir)
    write_png(scaling_figure(rows), folder / "scaling.png")
    return write_bench(folder, "scaling", dicts, {"device": str(device), "exponents": exponents})
