"""Evaluation: test-set predictions of the selected checkpoint, and the metrics computed from them."""

from dataclasses import dataclass
from pathlib import Path

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_precision,
    multiclass_recall,
)

from vitswin.config import ONE_DEVICE, Hardware
from vitswin.data import DataSplits, load_data
from vitswin.data.imageset import ImageSet
from vitswin.model.classifier import ImageClassifier, load_trained_run
from vitswin.study_folder import Predictions, RunFolder
from vitswin.training.batching import ShardBatches, resident_loader
from vitswin.training.distributed import gather_shards
from vitswin.training.trainer import build_trainer, running


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

    def save(self, run: RunFolder) -> dict:
        """Write the metrics and the per-image probabilities into the run folder; return the metrics."""
        metrics = self.metrics()
        run.write_evaluation(metrics, Predictions(self.probabilities.numpy(), self.labels.numpy(), self.class_names))
        return metrics


def predict(module: ImageClassifier, test: ImageSet, hardware: Hardware = ONE_DEVICE) -> Evaluation:
    """Class probabilities of `module` for every image of `test`, in order, in the recipe's forward-pass batch
    size and precision. In a distributed run each process predicts its share and every process gets the whole
    set's probabilities back."""
    recipe = module.recipe
    trainer = build_trainer(hardware, recipe.precision, module.network, enable_checkpointing=False)
    loader = resident_loader(test, ShardBatches(len(test), recipe.micro_batch_size or recipe.batch_size))
    with running(trainer):
        batches = trainer.predict(module, loader)
    local = torch.cat(batches).float() if batches else torch.empty(0, len(test.class_names))
    return Evaluation(gather_shards(local, trainer), test.labels, test.class_names)


def evaluate_run(run_dir: Path, splits: DataSplits | None = None) -> dict:
    """Re-evaluate a trained run folder's selected weights on its test set; rewrite its metrics."""
    run = RunFolder(run_dir)
    splits = splits or load_data(run.trained_config().data)
    trained = load_trained_run(run, splits.class_names)
    return predict(trained.classifier, splits.test, trained.hardware).save(run)
