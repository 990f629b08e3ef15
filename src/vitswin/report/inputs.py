"""What a report is built from, read once from the study folder: every run's records, predictions and
measured cost, the explanations, the benchmarks, and the replicate studies with other seeds."""

from dataclasses import dataclass

import numpy as np

from vitswin.config import ModelConfig, StudyConfig
from vitswin.errors import VitswinError
from vitswin.study_folder import ExplanationFolder, Predictions, RunFolder, StudyFolder

EXPLANATION_FIRST = "gradcam"  # the method the findings use when there are several


@dataclass(frozen=True)
class Cost:
    """What a model costs: measured by the cost stage (cost.json) and during training (train.json)."""

    parameters: int
    flops: float  # one forward pass on one image
    inference_images_per_s: float
    inference_batch: int
    machine: dict[str, str]  # where inference was timed
    train_images_per_s: float | None
    peak_gpu_memory_mb: float | None


@dataclass(frozen=True)
class Run:
    """One finished run folder, read back."""

    key: str
    model: ModelConfig
    train: dict
    history: list[dict[str, float]]
    metrics: dict
    predictions: Predictions
    cost: Cost

    @property
    def probabilities(self) -> np.ndarray:
        return self.predictions.probabilities

    @property
    def labels(self) -> np.ndarray:
        return self.predictions.labels

    @property
    def correct(self) -> np.ndarray:
        return self.predictions.correct


@dataclass(frozen=True)
class Explanation:
    """One explanation folder: its summary and per-image rows per model."""

    folder: ExplanationFolder
    summary: dict
    rows: dict[str, list[dict[str, str]]]

    @property
    def method(self) -> str:
        return self.folder.method


@dataclass(frozen=True)
class Replicates:
    """Test accuracy per model over this study and the same study run with other seeds."""

    seeds: list[int]
    accuracies: dict[str, list[float]]


@dataclass(frozen=True)
class StudyInputs:
    folder: StudyFolder
    config: StudyConfig
    runs: list[Run]
    explanations: list[Explanation]  # the findings' method first
    replicates: Replicates | None


def load_study(folder: StudyFolder, replicate_folders: tuple[StudyFolder, ...] = ()) -> StudyInputs:
    """Everything the report of `folder` shows; one sentence when a file it needs is missing."""
    config = folder.read_config()
    runs = _load_runs(folder, config)
    replicates = None
    if replicate_folders:
        accuracies = {run.key: [float(run.correct.mean())] for run in runs}
        seeds = [config.seed]
        for replicate in replicate_folders:
            replicate_config = replicate.read_config()
            seeds.append(replicate_config.seed)
            for run in _load_runs(replicate, replicate_config):
                accuracies.setdefault(run.key, []).append(float(run.correct.mean()))
        replicates = Replicates(seeds, accuracies)
    return StudyInputs(folder, config, runs, _load_explanations(folder), replicates)


def _load_runs(folder: StudyFolder, config: StudyConfig) -> list[Run]:
    runs = [_load_run(folder.run(key), model) for key, model in config.models.items()]
    for run in runs[1:]:
        if not np.array_equal(run.labels, runs[0].labels):
            raise VitswinError(
                f"{run.key} and {runs[0].key} were tested on different images; re-evaluate both "
                f"with 'vitswin evaluate' so the comparison is paired."
            )
    return runs


def _load_run(run: RunFolder, model: ModelConfig) -> Run:
    if missing := run.missing(RunFolder.REPORTED):
        raise VitswinError(
            f"run folder {run.path} lacks {', '.join(missing)}; finish the study (or train that model with "
            f"'vitswin train --model {run.key}'), then build the report with 'vitswin report', which measures "
            f"any cost not yet measured."
        )
    train, history, cost = run.read_train(), run.read_history(), run.read_cost()
    epoch_time = float(np.mean([row["epoch_time_s"] for row in history]))
    train_images = train.get("train_images")
    return Run(
        run.key,
        model,
        train,
        history,
        run.read_metrics(),
        run.read_predictions(),
        Cost(
            parameters=cost["parameters"],
            flops=cost["flops_per_image"],
            inference_images_per_s=cost["inference_images_per_s"],
            inference_batch=cost["inference_batch"],
            machine=cost["machine"],
            train_images_per_s=train_images / epoch_time if train_images else None,
            peak_gpu_memory_mb=train.get("peak_gpu_memory_mb"),
        ),
    )


def _load_explanations(folder: StudyFolder) -> list[Explanation]:
    explanations = [Explanation(each, each.read_summary(), each.read_rows()) for each in folder.explanations()]
    return sorted(explanations, key=lambda explanation: explanation.method != EXPLANATION_FIRST)
