"""What a report is built from, read once from the study folder: every run's (every model's, every seed's)
records, predictions and measured cost, the explanations, the benchmarks, and the runs of replicate studies
(the same study trained into other folders with other seeds)."""

from dataclasses import dataclass

import numpy as np

from vitswin.config import ModelConfig, StudyConfig
from vitswin.errors import VitswinError
from vitswin.report.facts import ModelFacts
from vitswin.report.findings import Finding
from vitswin.study_folder import (
    ExplanationFolder,
    ExplanationSummary,
    Predictions,
    RunFolder,
    StudyFolder,
    StudySpeed,
    same_study,
)

EXPLANATION_FIRST = "gradcam"  # the method the findings use when there are several


@dataclass(frozen=True)
class Cost:
    """What a model costs: measured by the cost stage (cost.json) and during training (train.json)."""

    parameters: int
    flops: float  # one forward pass on one image
    train_images_per_s: float | None  # during training, validation included, however the machine was shared
    peak_gpu_memory_mb: float | None


@dataclass(frozen=True)
class Run:
    """One finished run folder (one model, one seed), read back."""

    key: str
    seed: int
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

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())

    @property
    def epoch_time(self) -> float:
        """The typical epoch's training time (the median after the first), as training recorded it."""
        return self.train["time_per_epoch_s"]


@dataclass(frozen=True)
class Explanation:
    """One explanation folder (one method, the models of one seed): its summary and per-image rows per model."""

    folder: ExplanationFolder
    summary: ExplanationSummary
    rows: dict[str, list[dict[str, str]]]

    @property
    def method(self) -> str:
        return self.folder.method

    @property
    def seed(self) -> int:
        return self.folder.seed


@dataclass(frozen=True)
class StudyInputs:
    folder: StudyFolder
    config: StudyConfig  # the study's own config; its seeds joined by the replicates'
    runs: dict[str, list[Run]]  # model key -> its runs, one per seed, in the order of `seeds`
    explanations: dict[str, list[Explanation]]  # method -> one per explained seed; the findings' method first
    speed: StudySpeed | None  # the cost stage's interleaved timing of the study's networks (speed.json)

    @property
    def seeds(self) -> list[int]:
        return list(self.config.seeds)

    @property
    def models(self) -> list[str]:
        return list(self.runs)

    def first_runs(self) -> list[Run]:
        """Every model's run with the first seed: for what is shown for one trained model (its recipe)."""
        return [runs[0] for runs in self.runs.values()]


@dataclass(frozen=True)
class ReportContext:
    """What every report section is given (vitswin.registry.SECTIONS): the study's inputs, what the findings know
    about each of its models (cells) and the findings."""

    inputs: StudyInputs
    findings: list[Finding]
    facts: list[ModelFacts]
    method: str  # the explanation method the findings compare
    machine: str  # where the cost stage timed the networks ("" where it did not)


def load_study(folder: StudyFolder, replicate_folders: tuple[StudyFolder, ...] = ()) -> StudyInputs:
    """Everything the report of `folder` shows, with the runs of `replicate_folders` as more seeds; one sentence
    when a file it needs is missing or the replicates are not the same study with other seeds."""
    config = folder.read_config()
    runs = {key: [_load_run(folder.run(key, seed), model) for seed in config.seeds] for key, model in config.cells.items()}
    for replicate in replicate_folders:
        other = replicate.read_config()
        _check_replicate(folder, config, replicate, other)
        for key, model in config.cells.items():
            runs[key] += [_load_run(replicate.run(key, seed), model) for seed in other.seeds]
        config = config.model_copy(update={"seeds": (*config.seeds, *other.seeds)})
    _check_paired(runs)
    return StudyInputs(folder, config, runs, _load_explanations(folder, config), folder.read_speed())


def _check_replicate(folder: StudyFolder, config: StudyConfig, replicate: StudyFolder, other: StudyConfig) -> None:
    if replicate.path.resolve() == folder.path.resolve() or not same_study(
        other.model_copy(update={"seeds": config.seeds, "name": config.name}), config
    ):
        raise VitswinError(
            f"{replicate.path} is not the same study as {folder.path} with other seeds (its config differs, or it is "
            f"the same folder); pass replicate studies that differ only in their seeds."
        )
    if repeated := sorted(set(other.seeds) & set(config.seeds)):
        raise VitswinError(
            f"{replicate.path} repeats seed(s) {', '.join(map(str, repeated))} already in the report; a seed counted "
            f"twice would shrink the spread, so pass replicates with other seeds."
        )


def _check_paired(runs: dict[str, list[Run]]) -> None:
    """Every run must be tested on the same images, so every comparison is paired."""
    first = next(iter(runs.values()))[0]
    for run in (run for model_runs in runs.values() for run in model_runs):
        if not np.array_equal(run.labels, first.labels):
            raise VitswinError(
                f"{run.key} (seed {run.seed}) and {first.key} (seed {first.seed}) were tested on different images; "
                f"re-evaluate both with 'vitswin evaluate' so the comparison is paired."
            )


def _load_run(run: RunFolder, model: ModelConfig) -> Run:
    if missing := run.missing(RunFolder.REPORTED):
        raise VitswinError(
            f"run folder {run.path} lacks {', '.join(missing)}; finish the study (or train that run with "
            f"'vitswin train --model {run.key} --set seeds=[{run.seed}]'), then build the report with 'vitswin report', "
            f"which measures any cost not yet measured."
        )
    train, history, cost = run.read_train(), run.read_history(), run.read_cost()
    epoch_time = train["time_per_epoch_s"]
    train_images = train.get("train_images")
    return Run(
        run.key,
        run.seed,
        model,
        train,
        history,
        run.read_metrics(),
        run.read_predictions(),
        Cost(
            parameters=cost["parameters"],
            flops=cost["flops_per_image"],
            train_images_per_s=train_images / epoch_time if train_images else None,
            peak_gpu_memory_mb=train.get("peak_gpu_memory_mb"),
        ),
    )


def _load_explanations(folder: StudyFolder, config: StudyConfig) -> dict[str, list[Explanation]]:
    """The study's explanations of its seeds, by method (the findings' method first), in seed order."""
    explanations: dict[str, list[Explanation]] = {}
    for each in folder.explanations():
        if each.seed in config.seeds:
            explanations.setdefault(each.method, []).append(Explanation(each, each.read_summary(), each.read_rows()))
    for method in explanations:
        explanations[method].sort(key=lambda explanation: config.seeds.index(explanation.seed))
    return dict(sorted(explanations.items(), key=lambda item: item[0] != EXPLANATION_FIRST))
