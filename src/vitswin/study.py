"""A study: every model of a config trained and evaluated on the same data, one after another.

Run folders (`<out_dir>/<study>/<model>/`) hold plain artifacts, so later stages need no retraining:
config.yaml (the resolved config of that run), history.csv, checkpoints/, best.safetensors,
train.json, metrics.json and predictions.npz. The study folder adds summary.json and summary.csv.
"""

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from safetensors.torch import load_file

from vitswin.artifacts import atomic_write_text, record_stage, remove_stale_temporaries, write_csv, write_json
from vitswin.config import ModelConfig, StudyConfig, load_config, to_yaml
from vitswin.data import DataSplits, load_data
from vitswin.distributed import Hardware, is_main_process, process_group
from vitswin.environment import describe_environment
from vitswin.errors import VitswinError
from vitswin.evaluation import predict
from vitswin.models import build_network, check_model_name
from vitswin.training import FitResult, ImageClassifier, fit
from vitswin.transforms import BatchTransform

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """One model's headline numbers, as the study table shows them."""

    model: str
    architecture: str
    test_acc: float
    best_epoch: int
    best_val_acc: float
    epochs_run: int
    train_time_s: float
    time_per_epoch_s: float
    run_dir: str


def single_model_config(config: StudyConfig, key: str) -> StudyConfig:
    """The study config narrowed to the model `key`: what a run folder records."""
    if key not in config.models:
        raise VitswinError(f"the config has no model '{key}'; choose one of: {', '.join(config.models)}.")
    return config.model_copy(update={"models": {key: config.models[key]}})


def _classifier(config: StudyConfig, key: str, num_classes: int, pretrained: bool = True) -> ImageClassifier:
    model = config.models[key]
    if not pretrained:
        model = model.model_copy(update={"pretrained": "none"})
    transform = BatchTransform(model.image_size, config.data.mean, config.data.std, model.augment)
    return ImageClassifier(build_network(model, num_classes), model.train, transform, num_classes, config.seed)


def train_model(config: StudyConfig, key: str, splits: DataSplits) -> RunSummary:
    """Train model `key` of the study, select its best epoch on validation, evaluate it once on the test set."""
    run_config = single_model_config(config, key)
    recipe = config.models[key].train
    run_dir = config.study_dir / key
    if (finished := _finished_summary(run_dir, run_config)) is not None:
        log.info("=== %s is already trained and evaluated in %s; reusing it ===", key, run_dir)
        return finished
    main = is_main_process()
    if main:
        atomic_write_text(to_yaml(run_config), run_dir / "config.yaml")
    log.info("=== Training %s (%s) ===", key, config.models[key].name)

    pl.seed_everything(config.seed, verbose=False)
    module = _classifier(config, key, len(splits.class_names))
    hardware = study_hardware(config)
    result = fit(module, splits.train, splits.val, recipe, run_dir, hardware, config.seed)
    _load_weights(module, result.weights_path)
    # Every process predicts its share of the test set; all of them get the whole set's predictions back.
    evaluation = predict(module, splits.test, recipe.micro_batch_size or recipe.batch_size, recipe.precision, hardware)
    if not main:
        return _summary(key, config, result, evaluation.metrics()["accuracy"], run_dir)
    summary = _summary(key, config, result, evaluation.save(run_dir)["accuracy"], run_dir)
    write_json(
        {
            **asdict(summary),
            "validation": "test" if splits.val_is_test else "held-out",
            "train_images": len(splits.train),
            "val_images": len(splits.val),
            "test_images": len(splits.test),
            "processes": process_group()[1],
            "peak_gpu_memory_mb": _peak_gpu_memory_mb(),
            "environment": describe_environment(),
        },
        run_dir / "train.json",
    )
    record_stage(config.study_dir, f"train/{key}")
    return summary


def study_hardware(config: StudyConfig) -> Hardware:
    """The accelerator, devices, nodes and strategy the study trains with."""
    return Hardware(config.accelerator, config.devices, config.num_nodes, config.strategy)


def _summary(key: str, config: StudyConfig, result: FitResult, test_acc: float, run_dir: Path) -> RunSummary:
    return RunSummary(
        model=key,
        architecture=config.models[key].name,
        test_acc=test_acc,
        best_epoch=result.best_epoch,
        best_val_acc=result.best_val_acc,
        epochs_run=len(result.history),
        train_time_s=result.train_time_s,
        time_per_epoch_s=result.train_time_s / max(1, len(result.history)),
        run_dir=str(run_dir),
    )


def _finished_summary(run_dir: Path, run_config: StudyConfig) -> RunSummary | None:
    """The summary of a run folder this config already finished; None when there is work left.

    A folder started with a different config is refused rather than mixed with this one.
    """
    if not (run_dir / "config.yaml").is_file():
        return None
    if load_config(run_dir / "config.yaml") != run_config:
        raise VitswinError(
            f"{run_dir} holds a run with a different config; choose another --out or study name, "
            f"or delete that folder to start it again."
        )
    if not all((run_dir / name).is_file() for name in ("train.json", "best.safetensors", "metrics.json", "predictions.npz")):
        return None
    saved = json.loads((run_dir / "train.json").read_text())
    return RunSummary(**{field: saved[field] for field in RunSummary.__dataclass_fields__})


def _peak_gpu_memory_mb() -> float | None:
    """Peak GPU memory allocated by PyTorch in this process, or None on a CPU run."""
    if not torch.cuda.is_available() or torch.cuda.max_memory_allocated() == 0:
        return None
    peak = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()  # the next model of the study starts from zero
    return peak


def _load_weights(module: ImageClassifier, weights: Path) -> None:
    try:
        module.network.load_state_dict(load_file(str(weights)))
    except RuntimeError as error:
        raise VitswinError(
            f"{weights} does not fit the configured model ({str(error).splitlines()[0]}); "
            f"the run folder's config and weights come from different runs."
        ) from None


def finished_run_config(run_dir: Path) -> StudyConfig:
    """The config of a finished run folder (one with config.yaml and best.safetensors)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "best.safetensors").is_file():
        raise VitswinError(
            f"{run_dir} is not a finished run folder (it needs config.yaml and best.safetensors); "
            f"train the model first with 'vitswin train'."
        )
    return load_config(run_dir / "config.yaml")


def load_trained(run_dir: Path, num_classes: int) -> ImageClassifier:
    """The classifier of a finished run folder with its selected weights loaded."""
    config = finished_run_config(run_dir)
    module = _classifier(config, next(iter(config.models)), num_classes, pretrained=False)
    _load_weights(module, Path(run_dir) / "best.safetensors")
    return module


def evaluate_run(run_dir: Path, splits: DataSplits | None = None) -> dict:
    """Re-evaluate a finished run folder's selected weights on its test set; rewrite its metrics."""
    config = finished_run_config(run_dir)
    splits = splits or load_data(config.data, config.seed)
    module = load_trained(run_dir, len(splits.class_names))
    recipe = module.recipe
    # One process: predicting a test set is cheap next to training, and the result is the same.
    evaluation = predict(
        module, splits.test, recipe.micro_batch_size or recipe.batch_size, recipe.precision, Hardware(config.accelerator)
    )
    return evaluation.save(Path(run_dir))


def preflight(config: StudyConfig) -> None:
    """Fail before any data is read or any model trained: unknown models, unusable hardware settings, an
    unwritable output folder, too little disk space for the checkpoints."""
    for model in config.models.values():
        check_model_name(model.name)
    study_hardware(config).world_size()  # hardware this machine or launcher cannot provide fails here
    study_dir = config.study_dir
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=study_dir):
            pass
    except OSError as error:
        raise VitswinError(f"cannot write to {study_dir} ({error.strerror}); choose a writable folder with --out.") from None
    needed = sum(_checkpoint_bytes(model) for model in config.models.values())
    free = shutil.disk_usage(study_dir).free
    if free < needed:
        raise VitswinError(
            f"{study_dir} has {free / 2**20:.0f} MB free but the checkpoints need about "
            f"{needed / 2**20:.0f} MB; free some space or choose another folder with --out."
        )


def _checkpoint_bytes(model: ModelConfig) -> int:
    """Disk a model's run needs: best and last checkpoints (weights and two AdamW moments each), a temporary
    copy while one is rewritten, and the exported weights; float32 throughout."""
    with torch.device("meta"):  # shapes only: no memory, no weights downloaded
        network = build_network(model.model_copy(update={"pretrained": "none"}), num_classes=1000)
    parameters = sum(parameter.numel() for parameter in network.parameters())
    return parameters * 4 * (3 * 3 + 1)


def run_study(config: StudyConfig) -> list[RunSummary]:
    """Train and evaluate every model of the study on the same data; write the study summary."""
    preflight(config)
    splits = load_data(config.data, config.seed)
    log.info(
        "Data: %d train, %d validation (%s), %d test images, %d classes",
        len(splits.train),
        len(splits.val),
        "test set" if splits.val_is_test else "held out",
        len(splits.test),
        len(splits.class_names),
    )
    study_dir = config.study_dir
    main = is_main_process()
    if main and study_dir.is_dir() and (removed := remove_stale_temporaries(study_dir)):
        log.info("Removed %d partial files left by an interrupted run", removed)
    if main:
        atomic_write_text(to_yaml(config), study_dir / "config.yaml")
    summaries = [train_model(config, key, splits) for key in config.models]
    if not main:
        return summaries
    rows = [asdict(summary) for summary in summaries]
    write_json(
        {"study": config.name, "validation": "test" if splits.val_is_test else "held-out", "runs": rows},
        study_dir / "summary.json",
    )
    write_csv(rows, study_dir / "summary.csv")
    return summaries


def summary_table(summaries: list[RunSummary]) -> str:
    """The study's results as a plain-text table."""
    header = f"{'model':<12} {'architecture':<32} {'test acc':>9} {'best ep':>7} {'epochs':>6} {'train s':>8} {'s/epoch':>8}"
    lines = [header, "-" * len(header)]
    for s in summaries:
        lines.append(
            f"{s.model:<12} {s.architecture:<32} {100 * s.test_acc:>8.2f}% {s.best_epoch:>7} "
            f"{s.epochs_run:>6} {s.train_time_s:>8.1f} {s.time_per_epoch_s:>8.1f}"
        )
    return "\n".join(lines)
