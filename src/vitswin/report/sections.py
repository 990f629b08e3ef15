"""The report's sections: pure functions from the study's inputs to blocks (text, tables, and figures not
yet written). Nothing here reads or writes files or measures anything."""

import json

import numpy as np

from vitswin.config import ModelConfig, StudyConfig
from vitswin.report import figures
from vitswin.report.document import Block, Bullets, Heading, Image, Paragraph, Plot, Table
from vitswin.report.findings import ModelFacts
from vitswin.report.inputs import Explanation, Replicates, Run
from vitswin.report.stats import Calibration, bootstrap_interval, mcnemar_pairs, paired_bootstrap_interval

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


def model_facts(run: Run, ece: float, explanation: Explanation | None) -> ModelFacts:
    """What the findings compare about one model."""
    attention = {}
    if explanation and run.key in explanation.rows:
        rows = explanation.rows[run.key]
        attention = {key: np.array([float(row[key]) for row in rows]) for key in rows[0] if key in dict(EXPLAIN_COLUMNS)}
    return ModelFacts(
        run.key,
        run.correct,
        run.train["time_per_epoch_s"],
        run.train["train_time_s"],
        run.cost.parameters,
        run.cost.flops,
        ece,
        attention,
    )


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def _percent_share(value: float | str) -> str:
    return f"{100 * value:g} %" if isinstance(value, float) else str(value)


def setup_section(config: StudyConfig, runs: list[Run]) -> list[Block]:
    """Data, protocol, seed, hardware and software, and the recipes side by side."""
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
        ["input size", *(f"{run.model.input_size} px" for run in runs)],
        ["options", *(json.dumps(dict(run.model.options)) or "-" for run in runs)],
        ["head", *(_network(run, "head") for run in runs)],
        ["stochastic depth (highest drop-path rate)", *(_network(run, "drop_path_rate", "{:.3g}") for run in runs)],
        ["input normalisation (mean / std)", *(_normalisation(config.data.mean, config.data.std) for _ in runs)],
        ["pretraining normalisation (mean / std)", *(_pretraining_normalisation(run) for run in runs)],
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
    environment = first.get("environment")
    return [
        Heading("Set-up"),
        Bullets(
            [
                f"Data: {source}, {data.image_size}-pixel images, {len(runs[0].metrics['class_names'])} classes; {sizes}.",
                f"Protocol: {protocol}.",
                f"Seed: {config.seed}; accelerator: {config.accelerator}, devices: {config.devices}.",
                *_environment(environment),
            ]
        ),
        Table(["recipe", *(run.key for run in runs)], recipe_rows),
    ]


def _network(run: Run, key: str, form: str = "{}") -> str:
    """A fact the run recorded about its network (train.json), or a dash for runs that predate it."""
    value = run.train.get("network", {}).get(key)
    return "- (not recorded)" if value is None else form.format(value)


def _normalisation(mean: list[float], std: list[float]) -> str:
    return f"{', '.join(f'{m:.4g}' for m in mean)} / {', '.join(f'{s:.4g}' for s in std)}"


def _pretraining_normalisation(run: Run) -> str:
    """What the pretrained weights were trained with: a model fine-tuned with another normalisation sees inputs
    shifted from the ones it learned on."""
    if run.model.pretrained == "none":
        return "- (random initialisation)"
    network = run.train.get("network", {})
    if not network.get("pretrained_mean"):
        return "- (not recorded)"
    return _normalisation(network["pretrained_mean"], network["pretrained_std"])


def _environment(environment: dict | None) -> list[str]:
    if not environment:
        return ["Hardware and software: not recorded by these runs."]
    software = ", ".join(f"{name} {value}" for name, value in environment.items() if name not in ("cpu", "gpu"))
    return [f"Hardware, as the runs recorded it: CPU {environment['cpu']}; GPU {environment['gpu']}.", f"Software: {software}."]


def _augmentation(model: ModelConfig) -> str:
    augment = model.augment
    parts = (
        (["horizontal flip"] if augment.hflip else [])
        + ([f"colour jitter {augment.brightness}/{augment.contrast}/{augment.saturation}"] if augment.colour_jitter else [])
        + ([f"affine {augment.degrees} deg, shift {augment.translate}, scale {list(augment.scale)}"] if augment.affine else [])
    )
    return ", ".join(parts) or "none"


def results_section(runs: list[Run], replicates: Replicates | None) -> list[Block]:
    """Test accuracy with its interval, epochs and times, parameters; the spread across seeds when known."""
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
                f"{run.cost.parameters / 1e6:.2f} M",
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
    return blocks + _replicates(replicates)


def _replicates(replicates: Replicates | None) -> list[Block]:
    """Mean and standard deviation of test accuracy over this study and its replicates with other seeds."""
    if replicates is None:
        return [
            Paragraph(
                "One seed per model: pass the same study run with other seeds to 'vitswin report' "
                "(vitswin report STUDY_DIR OTHER_SEED_DIR ...) for the spread across seeds."
            )
        ]
    accuracies, seeds = replicates.accuracies, replicates.seeds
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


def paired_section(runs: list[Run], seed: int) -> list[Block]:
    """Every pair of models on the same test images: the 2x2 table, the difference with its interval, McNemar."""
    blocks: list[Block] = [Heading("Paired comparison")]
    if len(runs) < 2:
        return [*blocks, Paragraph("Only one model: nothing to compare.")]
    tests = mcnemar_pairs({run.key: run.correct for run in runs})
    runs_by_key = {run.key: run for run in runs}
    for test in tests:
        a, b, table = runs_by_key[test.a], runs_by_key[test.b], test.table
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
                f"p = {table.p_value:.3g}"
                + (f", Holm-adjusted over the {len(tests)} pairs: {test.p_adjusted:.3g}." if len(tests) > 1 else ".")
            ),
        ]
    return blocks


def curves_section(runs: list[Run]) -> list[Block]:
    """Loss and accuracy per epoch of every model."""
    figure = figures.training_curves(
        {run.key: run.history for run in runs},
        {run.key: int(run.train["best_epoch"]) for run in runs},
        {run.key: run.model.train.label_smoothing for run in runs},
        len(runs[0].metrics["class_names"]),
    )
    return [
        Heading("Training curves"),
        Plot(
            "training_curves",
            figure,
            "Loss and accuracy per epoch: training solid, validation dashed, the selected epoch ringed. A training "
            "loss with label smoothing cannot fall below its floor (dotted); validation loss is plain cross-entropy.",
        ),
    ]


def confusion_section(runs: list[Run]) -> list[Block]:
    """Confusion matrices, per-class accuracy and the most-confused class pairs."""
    class_names = runs[0].metrics["class_names"]
    matrices = {run.key: np.array(run.metrics["confusion_matrix"]) for run in runs}
    accuracies = {run.key: np.array([run.metrics["per_class"][name]["accuracy"] for name in class_names]) for run in runs}
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
        Plot(
            "confusion_matrices",
            figures.confusion_matrices(matrices, class_names),
            "Confusion matrices, as counts and row-normalised (rows: true class).",
        ),
        Table(
            ["class", *accuracies],
            [[name, *(_percent(values[i]) for values in accuracies.values())] for i, name in enumerate(class_names)],
        ),
        Plot("per_class_accuracy", figures.per_class_accuracy(accuracies, class_names), "Per-class test accuracy."),
        Paragraph("Most-confused class pairs:"),
        Bullets(confused),
    ]


def calibration_section(runs: list[Run], calibrations: dict[str, Calibration]) -> list[Block]:
    """Expected calibration error, mean confidence and reliability diagrams."""
    rows = [
        [run.key, f"{calibrations[run.key].ece:.4f}", _percent(run.probabilities.max(1).mean()), _percent(run.correct.mean())]
        for run in runs
    ]
    return [
        Heading("Calibration"),
        Table(["model", "expected calibration error (15 bins)", "mean confidence", "accuracy"], rows),
        Plot(
            "reliability",
            figures.reliability_diagrams(calibrations),
            "Reliability diagrams: accuracy per confidence bin; bars below the diagonal mean overconfidence.",
        ),
    ]


def cost_section(runs: list[Run]) -> list[Block]:
    """Parameters, FLOPs, training and inference speed, peak GPU memory, as measured and recorded."""
    rows = []
    for run in runs:
        cost = run.cost
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
    first = runs[0].cost
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
            f"Training speed is measured during training; inference speed (batches of {first.inference_batch}, "
            f"eval mode, on the CPU) and FLOPs (one forward pass, multiply and add counted separately) by the "
            f"cost stage after training (cost.json in each run folder), on CPU {first.machine['cpu']}, "
            f"GPU {first.machine['gpu']}."
        ),
    ]


def explanation_section(explanations: list[Explanation]) -> list[Block]:
    """Each explanation's figures, its measures per model and class, and the agreement between models."""
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
                explanation.folder.overlay,
                f"{explanation.method}: each model's heatmap over the image, titled with its prediction.",
            ),
            Image(explanation.folder.heatmaps, f"{explanation.method}: the heatmaps alone."),
            *[
                Paragraph(f"{model} is not explained by {explanation.method}: {reason}")
                for model, reason in summary.get("skipped", {}).items()
            ],
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
