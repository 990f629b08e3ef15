"""Training: fit a classifier with Lightning on resident uint8 batches, with early stopping, atomic
checkpoints, resume, and the selected weights exported as safetensors into its run folder."""

import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from safetensors.torch import save as safetensors_bytes
from torch.utils.data import DataLoader

from vitswin.artifacts import atomic_torch_save, atomic_write_bytes
from vitswin.config import ONE_DEVICE, Hardware, TrainConfig
from vitswin.data.imageset import ImageSet
from vitswin.errors import VitswinError
from vitswin.model.classifier import DivergedError, ImageClassifier
from vitswin.study_folder import RunFolder
from vitswin.training.batching import ShardBatches, TrainingBatches, resident_loader
from vitswin.training.distributed import barrier, is_main_process, split_batch
from vitswin.training.trainer import build_trainer, running, world_size

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file and renamed: a crash never leaves half a checkpoint."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        atomic_torch_save(checkpoint, Path(path))


# The names each epoch's numbers have in the loggers (TensorBoard groups them by their prefix).
LOGGED = {"train_loss": "train/loss", "train_acc": "train/acc", "val_loss": "val/loss", "val_acc": "val/acc", "lr": "lr"}


class EpochReport(pl.Callback):
    """After each epoch: one line in the published format, the history CSV rewritten, and the epoch's numbers sent
    to the run's loggers with the epoch as the step (so runs of different batch sizes line up)."""

    def __init__(self, run: RunFolder, max_epochs: int) -> None:
        self.run = run
        self.max_epochs = max_epochs
        self.history: list[dict[str, float]] = []
        self.resumed_epochs = 0  # epochs already in the history when training resumed from a checkpoint
        self._epoch_start = 0.0
        self._lr = 0.0

    def state_dict(self) -> dict:
        return {"history": self.history}  # saved in every checkpoint, so a resumed run keeps its history

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict["history"])
        self.resumed_epochs = len(self.history)

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
        row = {
            "epoch": trainer.current_epoch + 1,
            "train_loss": metrics.get("train_loss", float("nan")),
            "train_acc": metrics.get("train_acc", float("nan")),
            "val_loss": metrics.get("val_loss", float("nan")),
            "val_acc": metrics.get("val_acc", float("nan")),
            "lr": self._lr,
            "epoch_time_s": time.perf_counter() - self._epoch_start,
        }
        self.history.append(row)
        if trainer.is_global_zero:
            self.run.write_history(self.history)
            for logger in trainer.loggers:
                logger.log_metrics({name: row[key] for key, name in LOGGED.items()}, step=row["epoch"])
            log.info(
                "Epoch %d/%d, Loss: %.4f, Train Acc: %.2f%%, Val Acc: %.2f%%",
                row["epoch"],
                self.max_epochs,
                row["train_loss"],
                100 * row["train_acc"],
                100 * row["val_acc"],
            )


def typical_epoch_time(epoch_times: list[float]) -> float:
    """The median epoch time after the first: the first epoch also pays for start-up (compilation, caches, the
    first validation), and a median shrugs off epochs slowed by other work on a shared machine."""
    return float(np.median(epoch_times[1:] if len(epoch_times) > 1 else epoch_times))


@dataclass(frozen=True)
class FitResult:
    """What training produced: the per-epoch history and the selected epoch."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val_acc: float
    train_time_s: float

    @property
    def time_per_epoch_s(self) -> float:
        return typical_epoch_time([row["epoch_time_s"] for row in self.history])

    def record(self) -> dict:
        return {
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "train_time_s": self.train_time_s,
        }


@dataclass(frozen=True)
class TrainingBatchPlan:
    """How one optimizer step of the recipe's `batch_size` images is fed on this hardware."""

    loader: DataLoader  # this process's micro-batches, epoch after epoch
    micro_batch: int  # images per forward pass on one process
    accumulate: int  # micro-batches per optimizer step on one process


def training_batches(train_set: ImageSet, recipe: TrainConfig, world_size: int, seed: int) -> TrainingBatchPlan:
    """The recipe's training batches on `world_size` processes: each step's `recipe.batch_size` images split
    between the processes, and into micro-batches of `recipe.micro_batch_size` (gradient accumulation)."""
    micro_batch, accumulate = split_batch(recipe.batch_size, recipe.micro_batch_size, world_size)
    loader = resident_loader(train_set, TrainingBatches(len(train_set), recipe.batch_size, accumulate, seed))
    return TrainingBatchPlan(loader, micro_batch, accumulate)


def recipe_trainer(module: ImageClassifier, hardware: Hardware, accumulate: int, **options: object) -> pl.Trainer:
    """A Trainer that runs `module`'s recipe (epochs, precision, accumulation, clipping) on `hardware`: what
    training uses, and what the training benchmarks time."""
    recipe = module.recipe
    return build_trainer(
        hardware,
        recipe.precision,
        module.network,
        max_epochs=recipe.max_epochs,
        accumulate_grad_batches=accumulate,
        gradient_clip_val=recipe.grad_clip or None,
        **options,
    )


def selection_callbacks(recipe: TrainConfig, run: RunFolder) -> tuple[ModelCheckpoint, list[pl.Callback]]:
    """How an epoch is selected and a run stopped: the best checkpoint (the first epoch with the highest
    validation accuracy), the last checkpoint (rewritten after every epoch, for resuming), and early stopping
    on validation accuracy. Returns the best checkpoint's callback and all of them."""
    best = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename=run.best_checkpoint.stem,
        monitor="val_acc",
        mode="max",
        enable_version_counter=False,
    )
    # Unmonitored, it saves after every epoch and keeps the newest. (save_last on the monitored callback would
    # rewrite last.ckpt only when validation accuracy improves, and a resume would repeat epochs.)
    last = ModelCheckpoint(dirpath=run.checkpoints, filename=run.last_checkpoint.stem, enable_version_counter=False)
    callbacks: list[pl.Callback] = [best, last]
    if recipe.patience > 0:
        # min_delta is a fraction, as val_acc is (the published recipe's 0.001 was in percentage points: 1e-5).
        callbacks.append(EarlyStopping(monitor="val_acc", mode="max", patience=recipe.patience, min_delta=recipe.min_delta))
    return best, callbacks


def fit(
    module: ImageClassifier,
    train_set: ImageSet,
    val_set: ImageSet,
    run: RunFolder,
    hardware: Hardware = ONE_DEVICE,
    seed: int = 0,
    logger: Logger | bool = False,
) -> FitResult:
    """Train `module` with early stopping and checkpoints in `run`; export the best weights as safetensors.

    Resumes from the run's last checkpoint when there is one, and returns at once when the run folder
    records a finished fit. In a distributed run every process calls this; each step's `recipe.batch_size`
    images are split between the processes (and into micro-batches when `recipe.micro_batch_size` asks for
    gradient accumulation), and only the main process writes files. `logger` (a Lightning logger) receives
    the per-epoch metrics as well.
    """
    if run.is_trained():
        saved = run.read_fit()
        return FitResult(saved["history"], saved["best_epoch"], saved["best_val_acc"], saved["train_time_s"])
    recipe = module.recipe
    batches = training_batches(train_set, recipe, world_size(hardware), seed)
    val = resident_loader(val_set, ShardBatches(len(val_set), batches.micro_batch))
    report = EpochReport(run, recipe.max_epochs)
    best, selection = selection_callbacks(recipe, run)
    trainer = recipe_trainer(
        module,
        hardware,
        batches.accumulate,
        callbacks=[report, *selection],
        default_root_dir=run.path,
        plugins=[AtomicCheckpointIO()],
        logger=logger,
    )
    last = run.last_checkpoint
    if last.is_file():
        log.info("Resuming from %s", last)
    start = time.perf_counter()
    try:
        # weights_only: a checkpoint can hold tensors and plain containers, never code to run.
        with running(trainer):
            trainer.fit(module, batches.loader, val, ckpt_path=last if last.is_file() else None, weights_only=True)
    except pickle.UnpicklingError:
        raise VitswinError(
            f"checkpoint {last} was refused: it holds pickled objects other than tensors, which "
            f"could run code; delete it to train this model from the start."
        ) from None
    except DivergedError as error:
        raise VitswinError(
            f"{error}; training stopped, the checkpoints of the epochs before are kept in "
            f"{run.checkpoints}; lower the learning rate or set train.grad_clip."
        ) from None
    except torch.OutOfMemoryError:
        raise VitswinError(
            f"the accelerator ran out of memory with batch size {recipe.batch_size}; set a smaller "
            f"train.batch_size (and scale the learning rate with it) or a lower precision."
        ) from None
    # Time before an interruption is in the history; the epochs run now are timed by the clock.
    resumed_time = sum(row["epoch_time_s"] for row in report.history[: report.resumed_epochs])
    train_time = resumed_time + time.perf_counter() - start

    # The first epoch with the highest validation accuracy: the one ModelCheckpoint kept.
    best_row = max(report.history, key=lambda row: (row["val_acc"], -row["epoch"]))
    result = FitResult(report.history, int(best_row["epoch"]), best_row["val_acc"], train_time)
    if is_main_process():
        checkpoint = torch.load(best.best_model_path, map_location="cpu", weights_only=True)
        prefix = module.selected_prefix  # the moving average's weights, when the recipe keeps one
        weights = checkpoint["state_dict"]
        state = {key.removeprefix(prefix): value.contiguous() for key, value in weights.items() if key.startswith(prefix)}
        atomic_write_bytes(safetensors_bytes(state), run.weights_file)
        run.write_fit(result.record())  # last: marks the fit as finished
    barrier()  # the other processes read the exported weights next
    log.info("Total training time: %.2f seconds", train_time)
    log.info("Best model found at epoch %d with validation accuracy: %.2f%%", best_row["epoch"], 100 * best_row["val_acc"])
    return result
