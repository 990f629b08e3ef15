"""Training: a Lightning module for image classification, fed by resident uint8 batches.

The network is a plain timm `nn.Module`; Lightning's Trainer holds the engineering (devices,
precision, gradient clipping, checkpoints, early stopping). Batches stay uint8 until they reach
the device, where `on_after_batch_transfer` resizes, normalises and augments them.
"""

import json
import logging
import math
import pickle
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.strategies import FSDPStrategy
from safetensors.torch import save as safetensors_bytes
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from vitswin.artifacts import atomic_torch_save, atomic_write_bytes, write_csv, write_json
from vitswin.batching import ShardBatches, TrainingBatches, epoch_seed, resident_loader
from vitswin.config import TrainConfig
from vitswin.data.imageset import ImageSet
from vitswin.distributed import ONE_DEVICE, Hardware, barrier, is_main_process, split_batch
from vitswin.errors import VitswinError
from vitswin.models import use_fused_attention
from vitswin.transforms import BatchTransform

log = logging.getLogger(__name__)

# A loader that serves whole resident batches needs no worker processes.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")  # a resumed run


class DivergedError(RuntimeError):
    """The loss stopped being a finite number."""


class ImageClassifier(pl.LightningModule):
    """Cross-entropy fine-tuning of `network` with AdamW and the recipe's schedule."""

    def __init__(
        self, network: nn.Module, recipe: TrainConfig, transform: BatchTransform, num_classes: int, seed: int = 0
    ) -> None:
        super().__init__()
        self.network = network
        self.recipe = recipe
        self.transform = transform
        self.seed = seed
        self._batch_in_epoch = 0  # training batches seen this epoch, for per-batch seeding
        # Metric objects: in a distributed run they are summed over the processes before they are read.
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def on_fit_start(self) -> None:
        use_fused_attention(self.network, self.device)  # the device is known only now

    def on_train_epoch_start(self) -> None:
        self._batch_in_epoch = 0

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int) -> tuple:
        images, labels = batch
        if self.trainer.training:
            # Augmentation and dropout draw from the global generator, which other code (a DataLoader's
            # iterator, for one) also draws from at moments that differ after a resume. Seeding it per batch
            # makes every batch's randomness a function of (seed, epoch, batch, process) alone.
            step_seed = (epoch_seed(self.seed, self.current_epoch) * 1_000_003 + self._batch_in_epoch) * 1_009
            torch.manual_seed((step_seed + self.global_rank) % 2**63)
            self._batch_in_epoch += 1
        return self.transform(images, train=self.trainer.training), labels

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self.network(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.recipe.label_smoothing)
        if not torch.isfinite(loss):
            raise DivergedError(
                f"the training loss became {float(loss.detach())} at epoch {self.current_epoch + 1}, batch {batch_idx + 1}"
            )
        self.train_loss(loss.detach(), weight=len(labels))
        self.train_acc(logits, labels)
        self.log("train_loss", self.train_loss, on_epoch=True, on_step=False, prog_bar=True, batch_size=len(labels))
        self.log("train_acc", self.train_acc, on_epoch=True, on_step=False, batch_size=len(labels))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self.network(images)
        self.val_loss(F.cross_entropy(logits, labels), weight=len(labels))
        self.val_acc(logits, labels)
        self.log("val_loss", self.val_loss, batch_size=len(labels))
        self.log("val_acc", self.val_acc, prog_bar=True, batch_size=len(labels))

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.network(batch[0]).float().softmax(-1)

    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = None
    ) -> None:
        if gradient_clip_val and isinstance(self.trainer.strategy, FSDPStrategy):
            # Each FSDP process holds a shard of the gradients: only the wrapped root module knows their norm.
            self.trainer.model.clip_grad_norm_(gradient_clip_val)
        else:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> dict:
        recipe = self.recipe
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        if recipe.scheduler == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=recipe.plateau_factor, patience=recipe.plateau_patience
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_acc", "interval": "epoch"}}
        if recipe.scheduler == "none":
            return {"optimizer": optimizer}
        # Cosine annealing over all max_epochs (T_max = max epochs), stepped per batch for a smooth curve.
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        warmup_steps = int(recipe.warmup_epochs * total_steps / recipe.max_epochs)

        def factor(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / warmup_steps
            progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file and renamed: a crash never leaves half a checkpoint."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        atomic_torch_save(checkpoint, Path(path))


class EpochReport(pl.Callback):
    """After each epoch: one line in the published format, and the history CSV rewritten."""

    def __init__(self, history_path: Path, max_epochs: int) -> None:
        self.history_path = history_path
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
            write_csv(self.history, self.history_path)
            log.info(
                "Epoch %d/%d, Loss: %.4f, Train Acc: %.2f%%, Val Acc: %.2f%%",
                row["epoch"],
                self.max_epochs,
                row["train_loss"],
                100 * row["train_acc"],
                100 * row["val_acc"],
            )


@contextmanager
def ctrl_c_reported(trainer: pl.Trainer) -> Iterator[None]:
    """Lightning turns Ctrl-C into a clean shutdown and then exit(1); turn that back into KeyboardInterrupt, so
    the command can say what is kept and how to resume."""
    try:
        yield
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise


def show_progress() -> bool:
    """Progress bars on an interactive terminal only: in logs and CI they would print thousands of lines."""
    return sys.stderr.isatty()


@dataclass(frozen=True)
class FitResult:
    """What training produced: the per-epoch history and where the selected weights are."""

    history: list[dict[str, float]]
    best_epoch: int
    best_val_acc: float
    train_time_s: float
    weights_path: Path


def fit(
    module: ImageClassifier,
    train_set: ImageSet,
    val_set: ImageSet,
    recipe: TrainConfig,
    run_dir: Path,
    hardware: Hardware = ONE_DEVICE,
    seed: int = 0,
) -> FitResult:
    """Train `module` with early stopping and checkpoints in `run_dir`; export the best weights as safetensors.

    Resumes from `run_dir`'s last checkpoint when there is one, and returns at once when the run folder
    records a finished fit (fit.json beside best.safetensors). In a distributed run every process calls this;
    each step's `recipe.batch_size` images are split between the processes (and into micro-batches when
    `recipe.micro_batch_size` asks for gradient accumulation), and only the main process writes files.
    """
    weights_path, fit_record = run_dir / "best.safetensors", run_dir / "fit.json"
    if fit_record.is_file() and weights_path.is_file():
        saved = json.loads(fit_record.read_text())
        return FitResult(saved["history"], saved["best_epoch"], saved["best_val_acc"], saved["train_time_s"], weights_path)
    micro_batch, accumulate = split_batch(recipe.batch_size, recipe.micro_batch_size, hardware.world_size())
    train = resident_loader(train_set, TrainingBatches(len(train_set), recipe.batch_size, accumulate, seed))
    val = resident_loader(val_set, ShardBatches(len(val_set), micro_batch))
    report = EpochReport(run_dir / "history.csv", recipe.max_epochs)
    best = pl.callbacks.ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor="val_acc",
        mode="max",
        save_last=True,
        enable_version_counter=False,
    )
    callbacks: list[pl.Callback] = [report, best]
    if recipe.patience > 0:
        callbacks.append(
            pl.callbacks.EarlyStopping(monitor="val_acc", mode="max", patience=recipe.patience, min_delta=recipe.min_delta)
        )
    trainer = pl.Trainer(
        **hardware.trainer_arguments(),
        precision=recipe.precision,
        max_epochs=recipe.max_epochs,
        accumulate_grad_batches=accumulate,
        gradient_clip_val=recipe.grad_clip or None,
        callbacks=callbacks,
        logger=False,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
        enable_model_summary=False,
        enable_progress_bar=show_progress(),
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # the batch samplers above already give each process its share
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        log.info("Resuming from %s", last)
    start = time.perf_counter()
    try:
        # weights_only: a checkpoint can hold tensors and plain containers, never code to run.
        with ctrl_c_reported(trainer):
            trainer.fit(module, train, val, ckpt_path=last if last.is_file() else None, weights_only=True)
    except pickle.UnpicklingError:
        raise VitswinError(
            f"checkpoint {last} was refused: it holds pickled objects other than tensors, which "
            f"could run code; delete it to train this model from the start."
        ) from None
    except DivergedError as error:
        raise VitswinError(
            f"{error}; training stopped, the checkpoints of the epochs before are kept in "
            f"{run_dir / 'checkpoints'}; lower the learning rate or set train.grad_clip."
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
    result = FitResult(report.history, int(best_row["epoch"]), best_row["val_acc"], train_time, weights_path)
    if is_main_process():
        checkpoint = torch.load(best.best_model_path, map_location="cpu", weights_only=True)
        state = {
            key.removeprefix("network."): value.contiguous()
            for key, value in checkpoint["state_dict"].items()
            if key.startswith("network.")
        }
        atomic_write_bytes(safetensors_bytes(state), weights_path)
        write_json(
            {
                "history": result.history,
                "best_epoch": result.best_epoch,
                "best_val_acc": result.best_val_acc,
                "train_time_s": result.train_time_s,
            },
            fit_record,
        )  # last: marks the fit as finished
    barrier()  # the other processes read the exported weights next
    log.info("Total training time: %.2f seconds", train_time)
    log.info("Best model found at epoch %d with validation accuracy: %.2f%%", best_row["epoch"], 100 * best_row["val_acc"])
    return result
