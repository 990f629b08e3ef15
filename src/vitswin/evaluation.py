"""Evaluation: test-set predictions of the selected checkpoint, and the metrics computed from them."""

from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_precision,
    multiclass_recall,
)

from vitswin.artifacts import write_json, write_npz
from vitswin.batching import ShardBatches, resident_loader
from vitswin.data.imageset import ImageSet
from vitswin.distributed import ONE_DEVICE, Hardware, gather_shards
from vitswin.training import ImageClassifier, ctrl_c_reported, show_progress


@dataclass(frozen=True)
class Evaluation:
    """Per-image class probabilities on a test set, with its labels and class names."""

    probabilities: torch.Tensor  # (N, C) float32
    labels: torch.Tensor  # (N,) int64
    class_names: list[str]

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(1)

    def metrics(self) -> dict:
        """Accuracy, per-class precision / recall / accuracy and the confusion matrix (rows: true class)."""
        num_classes = len(self.class_names)
        preds, labels = self.predictions, self.labels
        precision = multiclass_precision(preds, labels, num_classes, average=None, zero_division=0)
        recall = multiclass_recall(preds, labels, num_classes, average=None, zero_division=0)
        return {
            "num_images": len(labels),
            "accuracy": float(multiclass_accuracy(preds, labels, num_classes, average="micro")),
            "per_class": {
                name: {"precision": float(p), "recall": float(r), "accuracy": float(r), "support": int((labels == index).sum())}
                for index, (name, p, r) in enumerate(zip(self.class_names, precision, recall, strict=True))
            },
            "confusion_matrix": multiclass_confusion_matrix(preds, labels, num_classes).tolist(),
            "class_names": self.class_names,
        }

    def save(self, run_dir: Path) -> dict:
        """Write metrics.json and predictions.npz into `run_dir`; return the metrics."""
        metrics = self.metrics()
        write_json(metrics, run_dir / "metrics.json")
        write_npz(
            run_dir / "predictions.npz",
            probabilities=self.probabilities.numpy(),
            labels=self.labels.numpy(),
            class_names=np.array(self.class_names),
        )
        return metrics


def predict(
    module: ImageClassifier, test: ImageSet, batch_size: int, precision: str, hardware: Hardware = ONE_DEVICE
) -> Evaluation:
    """Class probabilities of `module` for every image of `test`, in order. In a distributed run each process
    predicts its share and every process gets the whole set's probabilities back."""
    trainer = pl.Trainer(
        **hardware.trainer_arguments(),
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=show_progress(),
        use_distributed_sampler=False,
    )
    with ctrl_c_reported(trainer):
        batches = trainer.predict(module, resident_loader(test, ShardBatches(len(test), batch_size)))
    local = torch.cat(batches).float() if batches else torch.empty(0, len(test.class_names))
    return Evaluation(gather_shards(local, trainer), test.labels, test.class_names)
