"""`vitswin report`: the comparison report of a study, rebuilt from its folders' plain files, no retraining.

Writes `<study>/report.html` (self-contained: opens offline), `<study>/report.md` (the same content, its
figures in `<study>/report_files/`).
"""

import csv
import json
import logging
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from vitswin.artifacts import atomic_write_text, record_stage, write_png
from vitswin.bench.measure import flops_per_image, inference_throughput, parameter_count
from vitswin.config import ModelConfig, StudyConfig, load_config
from vitswin.environment import describe_environment
from vitswin.errors import VitswinError
from vitswin.models import build_network
from vitswin.report import figures
from vitswin.report.bench import bench_section
from vitswin.report.document import Block, Bullets, Heading, Image, Paragraph, Table, to_html, to_markdown
from vitswin.report.findings import ModelFacts, findings
from vitswin.report.stats import Calibration, bootstrap_interval, calibration, mcnemar, paired_bootstrap_interval

log = logging.getLogger(__name__)

RUN_FILES = ("config.yaml", "train.json", "history.csv", "metrics.json", "predictions.npz")
EXPLAIN_COLUMNS = (
    ("top10_share", "top-10 % share"),
    ("gini", "Gini"),
    ("entropy", "entropy"),
    ("deletion_auc", "deletion AUC"),
    ("random_deletion_auc", "random deletion AUC"),
    ("insertion_auc", "insertion AUC"),
    ("random_insertion_auc", "random insertion AUC"),
    ("road", "ROAD"),
    ("pointing_hit", "pointing game"),
    ("pointing_random", "random pointing"),
    ("mask_mass", "mass on object"),
    ("mask_fraction", "object area"),
    ("randomisation_rank_corr", "randomisation rank corr."),
)


@dataclass(frozen=True)
class Run:
    """One finished run folder, read back."""

    key: str
    model: ModelConfig
    train: dict
    history: list[dict[str, float]]
    metrics: dict
    probabilities: np.ndarray
    labels: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return self.probabilities.argmax(1) == self.labels


@dataclass(frozen=True)
class Cost:
    parameters: int
    flops: float
    inference_images_per_s: float
    train_images_per_s: float | None
    peak_gpu_memory_mb: float | None


@dataclass(frozen=True)
class Explanation:
    """One `explain/<method>/` folder: its summary and per-image rows per model."""

    method: str
    folder: Path
    summary: dict
    rows: dict[str, list[dict]]


def build_report(study_dir: Path, replicate_dirs: tuple[Path, ...] = ()) -> tuple[Path, Path]:
    """Write report.html and report.md for the study in `study_dir`; `replicate_dirs` are the same study with
    other seeds, summarised as mean and standard deviation. Returns the two paths."""
    study_dir = Path(study_dir)
    config = _study_config(study_dir)
    runs = _load_runs(study_dir, config)
    files = study_dir / "report_files"
    log.info("Measuring parameters, FLOPs and inference speed of %d models", len(runs))
    costs = {run.key: _measure_cost(run, len(runs[0].metrics["class_names"])) for run in runs}
    explanations = _load_explanations(study_dir)
    calibrations = {run.key: calibration(run.probabilities, run.labels) for run in runs}
    facts = [_facts(run, costs[run.key], calibrations[run.key].ece, explanations[0] if explanations else None) for run in runs]

    blocks: list[Block] = [
        Heading(f"vitswin report: {config.name}", 1),
        Paragraph(
            f"{len(runs)} models ({', '.join(run.key for run in runs)}) trained and tested on the same images. "
            f"Every number below is read from the study folder {study_dir}."
        ),
        Heading("Findings"),
        Bullets(findings(facts, explanations[0].method if explanations else "gradcam", config.seed)),
        *_setup_section(config, runs),
        *_results_section(runs, costs, replicate_dirs),
        *_paired_section(runs, config.seed),
        *_curves_section(runs, files),
        *_confusion_section(runs, files),
        *_calibration_section(runs, calibrations, files),
        *_cost_section(runs, costs),
        *bench_section(study_dir),
        *_explanation_section(explanations),
    ]
    markdown_path, html_path = study_dir / "report.md", study_dir / "report.html"
    atomic_write_text(to_markdown(blocks, study_dir), markdown_path)
    atomic_write_text(to_html(blocks, f"vitswin report: {config.name}"), html_path)
    record_stage(study_dir, "report")
    return html_path, markdown_path


def _study_config(study_dir: Path) -> StudyConfig:
    if not (study_dir / "config.yaml").is_file():
        raise VitswinError(
            f"{study_dir} is not a study folder (it has no config.yaml); pass the folder "
            f"'vitswin study' wrote, e.g. runs/default."
        )
    return load_config(study_dir / "config.yaml")


def _load_runs(study_dir: Path, config: StudyConfig) -> list[Run]:
    runs = []
    for key, model in config.models.items():
        run_dir = study_dir / key
        missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
        if missing:
            raise VitswinError(
                f"run folder {run_dir} lacks {', '.join(missing)}; finish the study (or train "
                f"that model with 'vitswin train --model {key}') before building the report."
            )
        with np.load(run_dir / "predictions.npz") as predictions:
            probabilities, labels = predictions["probabilities"], predictions["labels"]
        runs.append(
            Run(
                key,
                model,
                json.loads((run_dir / "train.json").read_text()),
                _read_history(run_dir),
                json.loads((run_dir / "metrics.json").read_text()),
                probabilities,
                labels,
            )
        )
    for run in runs[1:]:
        if not np.array_equal(run.labels, runs[0].labels):
            raise VitswinError(
                f"{run.key} and {runs[0].key} were tested on different images; re-evaluate both "
                f"with 'vitswin evaluate' so the comparison is paired."
            )
    return runs


def _read_history(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "history.csv", newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _measure_cost(run: Run, num_classes: int) -> Cost:
    network = build_network(run.model.model_copy(update={"pretrained": "none"}), num_classes)
    epoch_time = float(np.mean([row["epoch_time_s"] for row in run.history]))
    train_images = run.train.get("train_images")
    return Cost(
        parameters=parameter_count(network),
        flops=flops_per_image(network, run.model.image_size),
        inference_images_per_s=inference_throughput(network, run.model.image_size),
        train_images_per_s=train_images / epoch_time if train_images else None,
        peak_gpu_memory_mb=run.train.get("peak_gpu_memory_mb"),
    )


def _load_explanations(study_dir: Path) -> list[Explanation]:
    """Every explain/<method>/ folder with its summary, Grad-CAM first (the one the findings use)."""
    explanations = []
    for summary_path in sorted((study_dir / "explain").glob("*/attention.json")):
        rows: dict[str, list[dict]] = {}
        with open(summary_path.parent / "attention.csv", newline="") as handle:
            for row in csv.DictReader(handle):
                rows.setdefault(row["model"], []).append(row)
        explanations.append(
            Explanation(summary_path.parent.name, summary_path.parent, json.loads(summary_path.read_text()), rows)
        )
    return sorted(explanations, key=lambda e: e.method != "gradcam")


def _facts(run: Run, cost: Cost, ece: float, explanation: Explanation | None) -> ModelFacts:
    attention = {}
    if explanation and run.key in explanation.rows:
        rows = explanation.rows[run.key]
        attention = {key: np.array([float(row[key]) for row in rows]) for key in rows[0] if key in dict(EXPLAIN_COLUMNS)}
    return ModelFacts(
        run.key,
        run.correct,
        run.train["time_per_epoch_s"],
        run.train["train_time_s"],
        cost.parameters,
        cost.flops,
        ece,
        attention,
    )


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def _percent_share(value: float | str) -> str:
    return f"{100 * value:g} %" if isinstance(value, float) else str(value)


def _setup_section(config: StudyConfig, runs: list[Run]) -> list[Block]:
    data, first = config.data, runs[0].train
    source = "synthetic shapes" if data.source == "shapes" else f"{data.source} from {data.root or data.cache_dir}"
    protocol = (
        "the test set also selected each model's checkpoint (the published protocol; optimistic)"
        if first.get("validation") == "test"
        else f"a held-out {_percent_share(data.val_split)} of the training data selected each model's checkpoint; "
        f"the test set was used once"
    )
    sizes = (
        f"{first.get('train_images', '?')} training, {first.get('val_images', '?')} validation and "
        f"{len(runs[0].labels)} test images"
        if "train_images" in first
        else f"{len(runs[0].labels)} test images"
    )
    recipe_rows = [
        ["architecture", *(run.model.name for run in runs)],
        ["weights", *(run.model.pretrained for run in runs)],
        ["input size", *(f"{run.model.image_size} px" for run in runs)],
        ["options", *(json.dumps(dict(run.model.options)) or "-" for run in runs)],
        *[
            [name, *(str(getattr(run.model.train, name)) for run in runs)]
            for name in (
                "batch_size",
                "max_epochs",
                "lr",
                "weight_decay",
                "label_smoothing",
                "scheduler",
                "warmup_epochs",
                "patience",
                "grad_clip",
                "precision",
            )
        ],
        ["augmentation", *(_augmentation(run.model) for run in runs)],
    ]
    environment = first.get("environment") or describe_environment()
    where = "as the runs recorded it" if "environment" in first else "of this machine; the runs recorded none"
    return [
        Heading("Set-up"),
        Bullets(
            [
                f"Data: {source}, {data.image_size}-pixel images, {len(runs[0].metrics['class_names'])} classes; {sizes}.",
                f"Protocol: {protocol}.",
                f"Seed: {config.seed}; accelerator: {config.accelerator}, devices: {config.devices}.",
                f"Hardware, {where}: CPU {environment['cpu']}; GPU {environment['gpu']}.",
                "Software: "
                + ", ".join(f"{name} {value}" for name, value in environment.items() if name not in ("cpu", "gpu"))
                + ".",
            ]
        ),
        Table(["recipe", *(run.key for run in runs)], recipe_rows),
    ]


def _augmentation(model: ModelConfig) -> str:
    augment = model.augment
    parts = (
        (["horizontal flip"] if augment.hflip else [])
        + ([f"colour jitter {augment.brightness}/{augment.contrast}/{augment.saturation}"] if augment.colour_jitter else [])
        + ([f"affine {augment.degrees} deg, shift {augment.translate}, scale {list(augment.scale)}"] if augment.affine else [])
    )
    return ", ".join(parts) or "none"


def _results_section(runs: list[Run], costs: dict[str, Cost], replicate_dirs: tuple[Path, ...]) -> list[Block]:
    rows = []
    for run in runs:
        low, high = bootstrap_interval(run.correct)
        best = int(run.train["best_epoch"])
        to_best = sum(row["epoch_time_s"] for row in run.history if row["epoch"] <= best)
        rows.append(
            [
                run.key,
                run.model.name,
                _percent(run.correct.mean()),
                f"{100 * low:.2f} to {100 * high:.2f}",
                str(best),
                str(int(run.train["epochs_run"])),
                f"{run.train['train_time_s']:.1f} s",
                f"{run.train['time_per_epoch_s']:.1f} s",
                f"{to_best:.1f} s",
                f"{costs[run.key].parameters / 1e6:.2f} M",
            ]
        )
    blocks: list[Block] = [
        Heading("Results"),
        Table(
            [
                "model",
                "architecture",
                "test accuracy",
                "95 % CI (bootstrap)",
                "best epoch",
                "epochs run",
                "training time",
                "time per epoch",
                "time to best epoch",
                "parameters",
            ],
            rows,
        ),
    ]
    return blocks + _replicates(runs, replicate_dirs)


def _replicates(runs: list[Run], replicate_dirs: tuple[Path, ...]) -> list[Block]:
    """Mean and standard deviation of test accuracy over this study and its replicates with other seeds."""
    if not replicate_dirs:
        return [
            Paragraph(
                "One seed per model: pass the same study run with other seeds to 'vitswin report' "
                "(vitswin report STUDY_DIR OTHER_SEED_DIR ...) for the spread across seeds."
            )
        ]
    accuracies: dict[str, list[float]] = {run.key: [float(run.correct.mean())] for run in runs}
    seeds = [None]
    for replicate in replicate_dirs:
        config = _study_config(Path(replicate))
        seeds.append(config.seed)
        for run in _load_runs(Path(replicate), config):
            accuracies.setdefault(run.key, []).append(float(run.correct.mean()))
    rows = [
        [
            key,
            str(len(values)),
            _percent(np.mean(values)),
            f"{100 * np.std(values, ddof=1):.2f} points" if len(values) > 1 else "-",
        ]
        for key, values in accuracies.items()
    ]
    return [Paragraph(f"Across {len(seeds)} seeds:"), Table(["model", "seeds", "mean test accuracy", "standard deviation"], rows)]


def _paired_section(runs: list[Run], seed: int) -> list[Block]:
    blocks: list[Block] = [Heading("Paired comparison")]
    if len(runs) < 2:
        return [*blocks, Paragraph("Only one model: nothing to compare.")]
    for a, b in combinations(runs, 2):
        table = mcnemar(a.correct, b.correct)
        low, high = paired_bootstrap_interval(a.correct, b.correct, seed)
        difference = a.correct.mean() - b.correct.mean()
        blocks += [
            Heading(f"{a.key} vs {b.key}", 3),
            Table(
                ["", f"{b.key} right", f"{b.key} wrong"],
                [
                    [f"{a.key} right", str(table.both_right), str(table.only_a_right)],
                    [f"{a.key} wrong", str(table.only_b_right), str(table.both_wrong)],
                ],
            ),
            Paragraph(
                f"Accuracy difference {a.key} - {b.key}: {100 * difference:+.2f} points, 95 % bootstrap CI "
                f"{100 * low:+.2f} to {100 * high:+.2f}. McNemar's exact test on the "
                f"{table.only_a_right + table.only_b_right} images where exactly one model is right: "
                f"p = {table.p_value:.3g}."
            ),
        ]
    return blocks


def _curves_section(runs: list[Run], files: Path) -> list[Block]:
    path = files / "training_curves.png"
    write_png(
        figures.training_curves({run.key: run.history for run in runs}, {run.key: int(run.train["best_epoch"]) for run in runs}),
        path,
    )
    return [
        Heading("Training curves"),
        Image(path, "Loss and accuracy per epoch: training solid, validation dashed, the selected epoch ringed."),
    ]


def _confusion_section(runs: list[Run], files: Path) -> list[Block]:
    class_names = runs[0].metrics["class_names"]
    matrices = {run.key: np.array(run.metrics["confusion_matrix"]) for run in runs}
    accuracies = {run.key: np.array([run.metrics["per_class"][name]["accuracy"] for name in class_names]) for run in runs}
    confusion_path, per_class_path = files / "confusion_matrices.png", files / "per_class_accuracy.png"
    write_png(figures.confusion_matrices(matrices, class_names), confusion_path)
    write_png(figures.per_class_accuracy(accuracies, class_names), per_class_path)
    confused = []
    for key, matrix in matrices.items():
        off_diagonal = [
            (int(matrix[i, j]), class_names[i], class_names[j])
            for i in range(len(matrix))
            for j in range(len(matrix))
            if i != j and matrix[i, j] > 0
        ]
        top = sorted(off_diagonal, reverse=True)[:5]
        confused.append(
            f"{key}: " + ("; ".join(f"{true} taken for {pred} {count} times" for count, true, pred in top) or "no confusions")
        )
    return [
        Heading("Per class"),
        Image(confusion_path, "Confusion matrices, as counts and row-normalised (rows: true class)."),
        Table(
            ["class", *accuracies],
            [[name, *(_percent(values[i]) for values in accuracies.values())] for i, name in enumerate(class_names)],
        ),
        Image(per_class_path, "Per-class test accuracy."),
        Paragraph("Most-confused class pairs:"),
        Bullets(confused),
    ]


def _calibration_section(runs: list[Run], calibrations: dict[str, Calibration], files: Path) -> list[Block]:
    path = files / "reliability.png"
    write_png(figures.reliability_diagrams(calibrations), path)
    rows = [
        [run.key, f"{calibrations[run.key].ece:.4f}", _percent(run.probabilities.max(1).mean()), _percent(run.correct.mean())]
        for run in runs
    ]
    return [
        Heading("Calibration"),
        Table(["model", "expected calibration error (15 bins)", "mean confidence", "accuracy"], rows),
        Image(path, "Reliability diagrams: accuracy per confidence bin; bars below the diagonal mean overconfidence."),
    ]


def _cost_section(runs: list[Run], costs: dict[str, Cost]) -> list[Block]:
    rows = []
    for run in runs:
        cost = costs[run.key]
        rows.append(
            [
                run.key,
                f"{cost.parameters / 1e6:.2f} M",
                f"{cost.flops / 1e9:.3f}",
                f"{cost.train_images_per_s:.0f}" if cost.train_images_per_s else "-",
                f"{cost.inference_images_per_s:.0f}",
                f"{cost.peak_gpu_memory_mb:.0f} MB" if cost.peak_gpu_memory_mb else "- (CPU run)",
            ]
        )
    machine = describe_environment()
    return [
        Heading("Cost"),
        Table(
            [
                "model",
                "parameters",
                "GFLOPs per image",
                "training images/s (with validation)",
                "inference images/s",
                "peak GPU memory",
            ],
            rows,
        ),
        Paragraph(
            f"Training speed is measured during training; inference speed (batches of 32, eval mode) and "
            f"FLOPs (one forward pass, multiply and add counted separately) when this report was built, "
            f"on CPU {machine['cpu']}, GPU {machine['gpu']}."
        ),
    ]


def _explanation_section(explanations: list[Explanation]) -> list[Block]:
    if not explanations:
        return [
            Heading("Explanations"),
            Paragraph("No explanations yet: run 'vitswin explain' on the run folders, then rebuild the report."),
        ]
    blocks: list[Block] = [Heading("Explanations")]
    for explanation in explanations:
        summary = explanation.summary
        models = list(summary["per_model"])
        columns = [(key, label) for key, label in EXPLAIN_COLUMNS if key in summary["per_model"][models[0]]]
        blocks += [
            Heading(f"{explanation.method} on {summary['images']} test images", 3),
            Image(
                explanation.folder / "overlay.png",
                f"{explanation.method}: each model's heatmap over the image, titled with its prediction.",
            ),
            Image(explanation.folder / "heatmaps.png", f"{explanation.method}: the heatmaps alone."),
            Table(
                ["measure (mean per image)", *models],
                [[label, *(f"{summary['per_model'][model][key]:.3f}" for model in models)] for key, label in columns],
            ),
        ]
        if summary["agreement"]:
            blocks.append(
                Table(
                    ["models", "rank correlation", "top-20 % IoU"],
                    [
                        [pair, f"{values['rank_corr']:.3f}", f"{values['top20_iou']:.3f}"]
                        for pair, values in summary["agreement"].items()
                    ],
                )
            )
        per_class_keys = [key for key in ("top10_share", "pointing_hit") if key in summary["per_model"][models[0]]]
        class_names = list(summary["per_class"][models[0]])
        blocks.append(
            Table(
                ["class", *(f"{model} {dict(EXPLAIN_COLUMNS)[key]}" for model in models for key in per_class_keys)],
                [
                    [name, *(f"{summary['per_class'][model][name][key]:.3f}" for model in models for key in per_class_keys)]
                    for name in class_names
                ],
            )
        )
    blocks.append(Paragraph("Definitions of every measure: docs/explain.md in the vitswin repository."))
    return blocks
