"""The classifier: a timm network in a LightningModule (loss, metrics, optimizer, schedule, device-side
augmentation), and the one factory that builds it from a study config.

The network is a plain timm `nn.Module`; Lightning's Trainer holds the engineering (devices, precision,
gradient clipping, checkpoints, early stopping). Batches stay uint8 until they reach the device, where
`on_after_batch_transfer` resizes, normalises and augments them.
"""

import difflib
import math
from dataclasses import dataclass
from functools import partial
from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import FSDPStrategy
from safetensors.torch import load_file
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2, list_optimizers
from timm.utils import ModelEmaV3
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from vitswin.config import Hardware, ModelConfig, StudyConfig, TrainConfig
from vitswin.errors import VitswinError
from vitswin.model.network import build_network, use_fused_attention
from vitswin.model.regularisers import BatchRegularisers
from vitswin.model.transforms import BatchTransform
from vitswin.seeding import seed_batch
from vitswin.study_folder import RunFolder
from vitswin.training.batching import epoch_seed


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor at optimizer step `step` (from 0): a linear warm-up to 1 over `warmup_steps`,
    then half a cosine down to 0 at `total_steps` (and 0 after it)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class DivergedError(RuntimeError):
    """The loss stopped being a finite number."""


class ImageClassifier(pl.LightningModule):
    """Cross-entropy fine-tuning of `network` with the recipe's optimizer, schedule and regularisers; with
    `train.ema_decay`, an exponential moving average of the weights is what validation measures and the run keeps."""

    def __init__(
        self,
        network: nn.Module,
        recipe: TrainConfig,
        transform: BatchTransform,
        num_classes: int,
        seed: int = 0,
        regularisers: BatchRegularisers | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.recipe = recipe
        self.transform = transform
        self.regularisers = regularisers
        self.seed = seed
        # A submodule, so checkpoints carry it and a resumed run continues the same average.
        self.ema = ModelEmaV3(network, decay=recipe.ema_decay) if recipe.ema_decay else None
        self.soft_loss = SoftTargetCrossEntropy()
        self._batch_in_epoch = 0  # training batches seen this epoch, for per-batch seeding
        # Metric objects: in a distributed run they are summed over the processes before they are read.
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    @property
    def selected(self) -> nn.Module:
        """The weights validation measures and the run keeps: the moving average when the recipe has one."""
        return self.network if self.ema is None else self.ema.module

    @property
    def selected_prefix(self) -> str:
        """The checkpoint state_dict prefix of the selected weights."""
        return "network." if self.ema is None else "ema.module."

    def on_fit_start(self) -> None:
        use_fused_attention(self.network, self.device)  # the device is known only now

    def on_train_epoch_start(self) -> None:
        self._batch_in_epoch = 0

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int) -> tuple:
        images, labels = batch
        if self.trainer.training:
            # Augmentation and dropout draw from the global generator, which other code (a DataLoader's
            # iterator, for one) also draws from at moments that differ after a resume.
            seed_batch(epoch_seed(self.seed, self.current_epoch), self._batch_in_epoch, self.global_rank)
            self._batch_in_epoch += 1
        images = self.transform(images, train=self.trainer.training)
        if self.trainer.training and self.regularisers is not None and self.regularisers.active:
            return self.regularisers(images, labels)
        return images, labels

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        logits = self.network(images)
        if targets.ndim == 2:  # mixed: class probabilities, smoothed already; accuracy against the larger share
            loss, labels = self.soft_loss(logits, targets), targets.argmax(-1)
        else:
            loss, labels = F.cross_entropy(logits, targets, label_smoothing=self.recipe.label_smoothing), targets
        if not torch.isfinite(loss):
            raise DivergedError(
                f"the training loss became {float(loss.detach())} at epoch {self.current_epoch + 1}, batch {batch_idx + 1}"
            )
        self.train_loss(loss.detach(), weight=len(labels))
        self.train_acc(logits, labels)
        # For the callbacks and the progress bar; the loggers get each epoch's numbers from training.fit.EpochReport.
        self.log("train_loss", self.train_loss, on_epoch=True, on_step=False, prog_bar=True, batch_size=len(labels), logger=False)
        self.log("train_acc", self.train_acc, on_epoch=True, on_step=False, batch_size=len(labels), logger=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self.selected(images)
        self.val_loss(F.cross_entropy(logits, labels), weight=len(labels))
        self.val_acc(logits, labels)
        self.log("val_loss", self.val_loss, batch_size=len(labels), logger=False)
        self.log("val_acc", self.val_acc, prog_bar=True, batch_size=len(labels), logger=False)

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

    def optimizer_step(self, *args: object, **kwargs: object) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update(self.network, step=self.global_step)

    def configure_optimizers(self) -> dict:
        recipe = self.recipe
        # Given the module, timm groups the parameters (no decay for 1-D ones and no_weight_decay(), layer scales);
        # given a plain list, every parameter is decayed alike.
        grouped = recipe.exclude_from_decay or recipe.layer_decay is not None
        optimizer = create_optimizer_v2(
            self.network if grouped else list(self.network.parameters()),
            opt=recipe.optimizer,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            layer_decay=recipe.layer_decay,
        )
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
        factor = partial(warmup_cosine, warmup_steps=warmup_steps, total_steps=total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def check_optimizer(key: str, name: str) -> None:
    """Fail with timm's optimizer names when model `key`'s train.optimizer is not one of them."""
    names = list_optimizers()
    if name.lower() not in names:
        close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.optim.list_optimizers() for the names."
        raise VitswinError(f"models.{key}.train.optimizer '{name}' is not a timm optimizer; {hint}")


def build_classifier(
    config: StudyConfig, key: str, num_classes: int, weights: Literal["configured", "random"] = "configured"
) -> ImageClassifier:
    """Model `key` of the study as a classifier: its network (weights as `build_network` says), recipe and
    device-side transform, seeded with the config's first seed (a run config has one)."""
    model = config.models[key]
    transform = BatchTransform(model.input_size, config.data.mean, config.data.std, model.augment)
    regularisers = BatchRegularisers(model.augment, num_classes, model.train.label_smoothing)
    network = build_network(model, num_classes, weights)
    return ImageClassifier(network, model.train, transform, num_classes, config.seeds[0], regularisers)


def load_weights(module: ImageClassifier, run: RunFolder) -> None:
    """Put a run's selected weights (best.safetensors) into `module`'s network."""
    try:
        module.network.load_state_dict(load_file(str(run.weights_file)))
    except RuntimeError as error:
        raise VitswinError(
            f"{run.weights_file} does not fit the configured model ({str(error).splitlines()[0]}); "
            f"the run folder's config and weights come from different runs."
        ) from None


@dataclass(frozen=True)
class TrainedRun:
    """A finished run folder, loaded: the one door through which every stage that uses a trained model (evaluate,
    explain, predict, export) gets its config, network with the selected weights, transforms and class names."""

    folder: RunFolder
    config: StudyConfig  # the study config narrowed to this run
    classifier: ImageClassifier  # in eval mode, the selected weights loaded
    class_names: list[str]

    @property
    def model(self) -> ModelConfig:
        return next(iter(self.config.models.values()))

    @property
    def image_size(self) -> int:
        """The run's data.image_size: new images are decoded to it, as its training images were."""
        return self.config.data.image_size

    @property
    def hardware(self) -> Hardware:
        """Where the run predicts: its accelerator, in one process."""
        return self.config.hardware.one_process()


def load_trained_run(run: RunFolder, class_names: list[str] | None = None) -> TrainedRun:
    """Load a trained run folder; its class names are `class_names` or, by default, the ones its evaluation
    recorded (one sentence when it has none yet)."""
    config = run.trained_config()
    if class_names is None:
        if not run.metrics_file.is_file():
            raise VitswinError(f"{run.path} has no metrics.json with the class names; run 'vitswin evaluate {run.path}' first.")
        class_names = list(run.read_metrics()["class_names"])
    module = build_classifier(config, next(iter(config.models)), len(class_names), weights="random")
    load_weights(module, run)
    return TrainedRun(run, config, module.eval(), list(class_names))
