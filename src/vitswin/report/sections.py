"""The report's sections: pure functions from the study's inputs to blocks (text, tables, and figures not
yet written). Nothing here reads or writes files or measures anything."""

import json
from itertools import combinations

import numpy as np

from vitswin.config import ModelConfig
from vitswin.registry import SOURCES, measure_columns
from vitswin.report import figures
from vitswin.report.decision import ARCHITECTURE_SEEDS, Decision
from vitswin.report.document import Block, Bullets, Heading, Image, Paragraph, Plot, Table
from vitswin.report.facts import ModelFacts
from vitswin.report.inputs import Explanation, ReportContext, Run
from vitswin.report.stats import McNemar, accuracy_interval, calibration, mcnemar_pairs
from vitswin.study_folder import StudySpeed


def model_facts(
    runs: list[Run], explanations: list[Explanation], speed: StudySpeed | None, cell: tuple[str, dict] = ("", {})
) -> ModelFacts:
    """What the findings compare about one model, over its seeds (`runs`, one per seed); `speed` is the cost
    stage's timing of the study's networks (speed.json); `cell` is the model key it is a cell of and its values on
    the design's axes. Heatmap measurements join only when `explanations` cover
    every one of the model's seeds, on the same test images."""
    first = runs[0]
    attention = {}
    if same_explained_images(explanations, [run.key for run in runs]) and {e.seed for e in explanations} >= {
        run.seed for run in runs
    }:
        per_seed = [next(e for e in explanations if e.seed == run.seed).rows[first.key] for run in runs]
        measured = [key for key in per_seed[0][0] if key in measure_columns()]
        attention = {key: np.array([[float(row[key]) for row in seed_rows] for seed_rows in per_seed]) for key in measured}
    timed = speed.models.get(first.key) if speed else None
    rounds = {"train": timed.train_images_per_s, "inference": timed.inference_images_per_s} if timed else {}
    return ModelFacts(
        first.key,
        [run.seed for run in runs],
        np.stack([run.correct for run in runs]),
        np.stack([run.probabilities.max(1) for run in runs]),
        first.cost.parameters,
        first.cost.flops,
        float(np.bincount(first.labels).max() / len(first.labels)),
        {kind: np.array(values) for kind, values in rounds.items()},
        timed.network if timed else first.key,
        attention,
        first.model.recipe(),
        *cell,
        int(first.train.get("train_images", 0)),
        tuple(int(run.train["best_epoch"]) for run in runs),
    )


def same_explained_images(explanations: list[Explanation], models: list[str]) -> bool:
    """Whether every explanation measured each of `models` on the same test images in the same order: per-image
    measures are compared image by image, so an equal count is not enough."""
    orders = [[row["test_index"] for row in explanation.rows.get(model, [])] for explanation in explanations for model in models]
    return bool(orders) and all(order and order == orders[0] for order in orders)


def speed_machine(speed: StudySpeed | None) -> str:
    """Where and how the speeds were timed, for the speed findings; empty when they were not."""
    if not speed:
        return ""
    machine = speed.machine
    return f"{machine['device']}, {machine['threads']} threads, CPU {machine['cpu']}; {speed.rounds} rounds taking turns"


def explanation_notes(explanations: list[Explanation], models: list[str]) -> list[str]:
    """Why the heatmap measures are not compared, when explanations exist but cannot be paired image by image."""
    if not explanations or same_explained_images(explanations, models):
        return []
    explained = ", ".join(str(explanation.seed) for explanation in explanations)
    return [
        f"The {explanations[0].method} measurements are not compared: the explanations of seed(s) {explained} are not "
        f"all of the same test images, in the same order, for every model (or not of every model); explain every "
        f"seed again with the same options, e.g. 'vitswin study' with the same config, to compare them image by image."
    ]


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def _percent_share(value: float | str) -> str:
    return f"{100 * value:g} %" if isinstance(value, float) else str(value)


def findings_section(report: ReportContext) -> list[Block]:
    """The findings: every comparison in a sentence, decided (vitswin.report.findings)."""
    return [Heading("Findings"), Bullets([finding.text for finding in report.findings])]


def setup_section(report: ReportContext) -> list[Block]:
    """Data, protocol, seed, hardware and software, and the recipes side by side."""
    config, runs = report.inputs.config, report.inputs.first_runs()
    data, first = config.data, runs[0].train
    source = SOURCES[data.source].describe(data)
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
            [name, *(_setting(getattr(run.model.train, name)) for run in runs)]
            for name in (
                "batch_size",
                "max_epochs",
                "optimizer",
                "lr",
                "weight_decay",
                "exclude_from_decay",
                "layer_decay",
                "ema_decay",
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
    skipped = first.get("skipped_images", 0)
    if skipped:
        sizes += f"; {skipped} unreadable image file(s) were skipped (data.bad_images: skip)"
    stores = first.get("data_stores") or []
    if stores:
        total = sum(store["bytes"] for store in stores)
        names = ", ".join(store["fingerprint"] for store in stores)
        sizes += f"; read from the decoded image store{'s' * (len(stores) > 1)} {names} ({total / 1e6:,.1f} MB)"
    environment = first.get("environment")
    return [
        Heading("Set-up"),
        Bullets(
            [
                f"Data: {source}, {data.image_size}-pixel images, {len(runs[0].metrics['class_names'])} classes; {sizes}.",
                f"Protocol: {protocol}.",
                f"Seeds: {', '.join(map(str, config.seeds))} (each model trained once per seed: initialisation, batch "
                f"order and augmentation); data seed {data.seed} (the same images for every run); accelerator: "
                f"{config.accelerator}, devices: {config.devices}.",
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


def _setting(value: object) -> str:
    return "off" if value is None else str(value)


def _augmentation(model: ModelConfig) -> str:
    augment = model.augment
    mixing = f"p {augment.mix_prob}" + (f", CutMix share {augment.mix_switch_prob}" if augment.mixup and augment.cutmix else "")
    parts = (
        (["horizontal flip"] if augment.hflip else [])
        + ([f"colour jitter {augment.brightness}/{augment.contrast}/{augment.saturation}"] if augment.colour_jitter else [])
        + ([f"affine {augment.degrees} deg, shift {augment.translate}, scale {list(augment.scale)}"] if augment.affine else [])
        + (
            [f"RandAugment {augment.randaugment} ops, magnitude {augment.randaugment_magnitude} (std {augment.randaugment_std})"]
            if augment.randaugment
            else []
        )
        + ([f"random erasing p {augment.erase_prob}"] if augment.erase_prob else [])
        + ([f"Mixup alpha {augment.mixup}"] if augment.mixing and augment.mixup else [])
        + ([f"CutMix alpha {augment.cutmix}"] if augment.mixing and augment.cutmix else [])
        + ([f"mixed batches {mixing}"] if augment.mixing else [])
    )
    return ", ".join(parts) or "none"


def results_section(report: ReportContext) -> list[Block]:
    """Test accuracy per model and seed with the mean and spread over seeds; then every run's details."""
    runs, seeds = report.inputs.runs, report.inputs.seeds
    spread = len(seeds) > 1
    summary_rows = [
        [
            key,
            model_runs[0].model.name,
            *(_percent(run.accuracy) for run in model_runs),
            *(
                [_percent(np.mean([run.accuracy for run in model_runs])), _points_sd([run.accuracy for run in model_runs])]
                if spread
                else []
            ),
            f"{model_runs[0].cost.parameters / 1e6:.2f} M",
        ]
        for key, model_runs in runs.items()
    ]
    run_rows = []
    all_runs = [run for model_runs in runs.values() for run in model_runs]
    for model_runs in runs.values():
        for run in model_runs:
            low, high = accuracy_interval(run.correct)
            best = int(run.train["best_epoch"])
            to_best = sum(row["epoch_time_s"] for row in run.history if row["epoch"] <= best)
            run_rows.append(
                [
                    run.key,
                    str(run.seed),
                    _percent(run.accuracy),
                    f"{100 * low:.2f} to {100 * high:.2f}",
                    str(best),
                    str(int(run.train["epochs_run"])),
                    f"{run.train['train_time_s']:.1f} s",
                    f"{run.epoch_time:.1f} s",
                    f"{to_best:.1f} s",
                    _beside_text(trained_beside(run, all_runs)),
                ]
            )
    blocks: list[Block] = [
        Heading("Results"),
        Table(
            [
                "model",
                "architecture",
                *(f"test accuracy, seed {seed}" for seed in seeds),
                *(["mean", "standard deviation"] if spread else []),
                "parameters",
            ],
            summary_rows,
        ),
        Table(
            [
                "model",
                "seed",
                "test accuracy",
                "95 % interval (exact binomial over the test images)",
                "best epoch",
                "epochs run",
                "training time",
                "time per epoch (median after the first)",
                "time to best epoch",
                "trained",
            ],
            run_rows,
        ),
    ]
    blocks += _side_by_side_note(all_runs)
    if len(seeds) < ARCHITECTURE_SEEDS:
        blocks.append(
            Paragraph(
                f"{len(seeds)} seed{'s' if spread else ''} per model: each interval above covers the choice of test "
                f"images, not the training seed, which can move a model's accuracy by more. Run at least "
                f"{ARCHITECTURE_SEEDS} seeds (--set 'seeds=[0,1,2]') for the spread across seeds."
            )
        )
    return blocks


def trained_beside(run: Run, runs: list[Run]) -> int | None:
    """The most other runs of the report that trained on the same machine at one time while `run` trained (from
    their recorded host, start and end), or None when a run did not record them."""

    def span(each: Run) -> tuple[str, float, float] | None:
        train = each.train
        return (train["host"], train["started_at"], train["finished_at"]) if "started_at" in train else None

    mine = span(run)
    others = [span(each) for each in runs if each is not run]
    if mine is None or any(other is None for other in others):
        return None
    beside = [(start, end) for host, start, end in others if host == mine[0] and start < mine[2] and mine[1] < end]  # type: ignore[misc]
    # The count of runs in progress changes only when one starts: the most at once is at one of those moments.
    moments = [mine[1], *(start for start, _ in beside if start > mine[1])]
    return max((sum(start <= moment < end for start, end in beside) for moment in moments), default=0)


def _beside_text(count: int | None) -> str:
    if count is None:
        return "- (not recorded)"
    return "alone" if count == 0 else f"beside {count} other run{'s' * (count > 1)} at a time"


def _side_by_side_note(runs: list[Run]) -> list[Block]:
    """A word on the training times when runs trained at the same time on one machine: each shared it."""
    shared = [run for run in runs if trained_beside(run, runs)]
    if not shared:
        return []
    threads = sorted({str(run.train.get("cpu_threads", "?")) for run in shared})
    return [
        Paragraph(
            f"{len(shared)} of the {len(runs)} runs trained while other runs of the study trained on the same machine "
            f"(their recorded start and end overlap; {' or '.join(threads)} CPU thread(s) each; the 'trained' column): "
            "their training times include sharing the machine, so they say nothing about the models' speeds. The "
            "speed findings and the Cost section use the cost stage's timing, made for it."
        )
    ]


def _points_sd(accuracies: list[float]) -> str:
    return f"{100 * np.std(accuracies, ddof=1):.2f} points"


def paired_section(report: ReportContext) -> list[Block]:
    """Every pair of models on the same test images: per seed, the trained models' difference and McNemar's test;
    over the seeds, the findings' own decision on accuracy (the same interval, test and correction)."""
    runs, seeds, judged = report.inputs.runs, report.inputs.seeds, report.findings
    blocks: list[Block] = [Heading("Paired comparison")]
    if len(runs) < 2:
        return [*blocks, Paragraph("Only one model: nothing to compare.")]
    per_seed = [
        mcnemar_pairs({key: model_runs[index].correct for key, model_runs in runs.items()}) for index in range(len(seeds))
    ]
    over_seeds = {(f.a, f.b): f.decision for f in judged if f.measure == "accuracy" and f.seed is None and f.decision}
    for pair_index, (a, b) in enumerate(combinations(runs, 2)):
        rows = []
        for seed, tests in zip(seeds, per_seed, strict=True):
            test = tests[pair_index]
            table = test.table
            accuracy_a = (table.both_right + table.only_a_right) / _total(table)
            accuracy_b = (table.both_right + table.only_b_right) / _total(table)
            rows.append(
                [
                    str(seed),
                    _percent(accuracy_a),
                    _percent(accuracy_b),
                    f"{100 * (accuracy_a - accuracy_b):+.2f}",
                    str(table.only_a_right),
                    str(table.only_b_right),
                    f"{table.p_value:.3g}" + (f" (Holm {test.p_adjusted:.3g})" if test.pairs > 1 else ""),
                ]
            )
        blocks += [
            Heading(f"{a} vs {b}", 3),
            Table(
                [
                    "seed",
                    f"{a} accuracy",
                    f"{b} accuracy",
                    "difference (points)",
                    f"only {a} right",
                    f"only {b} right",
                    "McNemar p (these trained models)",
                ],
                rows,
            ),
            Paragraph(_over_seeds_text(a, b, over_seeds.get((a, b)), len(seeds))),
        ]
    return blocks


def _over_seeds_text(a: str, b: str, decision: Decision | None, seeds: int) -> str:
    """The comparison over seeds, as the findings decided it."""
    caveat = (
        " McNemar's test compares the two trained models of one seed on these test images; only the comparison over "
        "seeds speaks to the architectures (docs/report.md)."
    )
    if decision is None:
        return f"With {seeds} seed{'s' * (seeds > 1)} there is no comparison over seeds (it needs {ARCHITECTURE_SEEDS}).{caveat}"
    evidence = decision.evidence
    if not decision.tested:
        return (
            f"Over {seeds} seeds: mean difference {a} - {b} {100 * evidence.estimate:+.2f} points; no spread, not tested.{caveat}"
        )
    low, high = decision.interval
    return (
        f"Over {seeds} seeds: mean difference {a} - {b} {100 * evidence.estimate:+.2f} points, "
        f"{100 * decision.confidence:.4g} % interval {100 * low:+.2f} to {100 * high:+.2f} ({evidence.describe()}); "
        f"p = {decision.p_value:.3g}"
        + (
            f", Holm-adjusted over the {decision.family_size} accuracy comparisons: {decision.p_adjusted:.3g}"
            if decision.family_size > 1
            else ""
        )
        + f": {'a difference' if decision.rejected else 'not shown to differ'}, as in the findings.{caveat}"
    )


def _total(table: McNemar) -> int:
    return table.both_right + table.only_a_right + table.only_b_right + table.both_wrong


def curves_section(report: ReportContext) -> list[Block]:
    """Loss and accuracy per epoch of every model and seed."""
    runs = report.inputs.runs
    first = next(iter(runs.values()))[0]
    figure = figures.training_curves(
        {key: [run.history for run in model_runs] for key, model_runs in runs.items()},
        {key: [int(run.train["best_epoch"]) for run in model_runs] for key, model_runs in runs.items()},
        {key: model_runs[0].model.train.label_smoothing for key, model_runs in runs.items()},
        len(first.metrics["class_names"]),
    )
    return [
        Heading("Training curves"),
        Plot(
            "training_curves",
            figure,
            "Loss and accuracy per epoch, one line per seed: training solid, validation dashed, each run's selected "
            "epoch ringed. A training loss with label smoothing cannot fall below its floor (dotted); validation loss "
            "is plain cross-entropy.",
        ),
    ]


def confusion_section(report: ReportContext) -> list[Block]:
    """Confusion matrices summed over seeds, per-class accuracy and the most-confused class pairs."""
    runs = report.inputs.runs
    first = next(iter(runs.values()))[0]
    class_names = first.metrics["class_names"]
    matrices = {key: sum(np.array(run.metrics["confusion_matrix"]) for run in model_runs) for key, model_runs in runs.items()}
    accuracies = {key: np.diag(matrix) / np.maximum(matrix.sum(1), 1) for key, matrix in matrices.items()}
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
    seeds = len(next(iter(runs.values())))
    over = f" summed over the {seeds} seeds" if seeds > 1 else ""
    return [
        Heading("Per class"),
        Plot(
            "confusion_matrices",
            figures.confusion_matrices(matrices, class_names),
            f"Confusion matrices{over}, as counts and row-normalised (rows: true class).",
        ),
        Table(
            ["class", *accuracies],
            [[name, *(_percent(values[i]) for values in accuracies.values())] for i, name in enumerate(class_names)],
        ),
        Plot("per_class_accuracy", figures.per_class_accuracy(accuracies, class_names), f"Per-class test accuracy{over}."),
        Paragraph(f"Most-confused class pairs{over}:"),
        Bullets(confused),
    ]


def calibration_section(report: ReportContext) -> list[Block]:
    """Expected calibration error per seed, mean confidence, and reliability diagrams of every seed's predictions
    pooled."""
    runs = report.inputs.runs
    calibrations = {key: [calibration(run.probabilities, run.labels) for run in model_runs] for key, model_runs in runs.items()}
    rows = [
        [
            key,
            ", ".join(f"{calibration.ece:.4f}" for calibration in calibrations[key]),
            f"{np.mean([calibration.ece for calibration in calibrations[key]]):.4f}",
            _percent(np.mean([run.probabilities.max(1).mean() for run in model_runs])),
            _percent(np.mean([run.accuracy for run in model_runs])),
        ]
        for key, model_runs in runs.items()
    ]
    pooled = {
        key: calibration(
            np.concatenate([run.probabilities for run in model_runs]), np.concatenate([run.labels for run in model_runs])
        )
        for key, model_runs in runs.items()
    }
    return [
        Heading("Calibration"),
        Table(["model", "expected calibration error per seed (15 bins)", "mean ECE", "mean confidence", "accuracy"], rows),
        Plot(
            "reliability",
            figures.reliability_diagrams(pooled),
            "Reliability diagrams of every seed's test predictions together: accuracy per confidence bin; bars below "
            "the diagonal mean overconfidence.",
        ),
    ]


def cost_section(report: ReportContext) -> list[Block]:
    """Parameters, FLOPs, the cost stage's interleaved training and inference speed (median and range over its
    rounds), the speed during training (median over seeds; the machine maybe shared) and peak GPU memory."""
    runs, speed = report.inputs.runs, report.inputs.speed
    timed = speed.models if speed else {}
    rows = []
    for key, model_runs in runs.items():
        costs = [run.cost for run in model_runs]
        training = [cost.train_images_per_s for cost in costs if cost.train_images_per_s]
        memory = [cost.peak_gpu_memory_mb for cost in costs if cost.peak_gpu_memory_mb]
        rounds = timed.get(key)
        rows.append(
            [
                key,
                f"{costs[0].parameters / 1e6:.2f} M",
                f"{costs[0].flops / 1e9:.3f}",
                _rounds_text(rounds.train_images_per_s if rounds else None),
                _rounds_text(rounds.inference_images_per_s if rounds else None),
                f"{np.median(training):.0f}" if training else "-",
                f"{max(memory):.0f} MB" if memory else "- (CPU run)",
            ]
        )
    if speed:
        machine = speed.machine
        timing = (
            f"Speeds are timed by the cost stage after training, for this purpose: every network in one process, a "
            f"training step (AdamW, forward and backward) and an inference batch of {speed.batch} images each, in "
            f"{speed.rounds} rounds taking turns (speed.json), on {machine['device']} (CPU {machine['cpu']}, GPU "
            f"{machine['gpu']}, {machine['threads']} threads); the speed findings test these rounds. "
        )
    else:
        timing = "No speed timing yet: 'vitswin report' runs the cost stage, which times every network. "
    return [
        Heading("Cost"),
        Table(
            [
                "model",
                "parameters",
                "GFLOPs per image",
                "training images/s (cost stage: median, range over rounds)",
                "inference images/s (cost stage: median, range over rounds)",
                "training images/s during training (validation included; median over seeds)",
                "peak GPU memory",
            ],
            rows,
        ),
        Paragraph(
            timing + "FLOPs count one forward pass (multiply and add separately). The speed during training comes "
            "from each run's epochs, with the machine shared however the runs shared it (the Results' 'trained' "
            "column): it is shown, not compared."
        ),
    ]


def _rounds_text(rounds: list[float] | None) -> str:
    if not rounds:
        return "-"
    return f"{np.median(rounds):.0f} ({min(rounds):.0f} to {max(rounds):.0f})"


def explanation_section(report: ReportContext) -> list[Block]:
    """Per method: the first seed's figures; each measure per model as the mean over the explained seeds (with the
    per-seed values); the agreement between models and the per-class measures, averaged over seeds."""
    explanations, labels = report.inputs.explanations, measure_columns()
    if not explanations:
        return [
            Heading("Explanations"),
            Paragraph("No explanations yet: run 'vitswin explain' on the run folders, then rebuild the report."),
        ]
    blocks: list[Block] = [Heading("Explanations")]
    for method, per_seed in explanations.items():
        first = per_seed[0]
        summaries = [explanation.summary for explanation in per_seed]
        models = list(first.summary.per_model)
        columns = [(key, label) for key, label in labels.items() if key in first.summary.per_model[models[0]]]
        seeds = ", ".join(str(explanation.seed) for explanation in per_seed)
        blocks += [
            Heading(f"{method} on {first.summary.images} test images, seed{'s' * (len(per_seed) > 1)} {seeds}", 3),
            Image(
                first.folder.overlay,
                f"{method}, seed {first.seed}: each model's heatmap over the image, titled with its prediction (the "
                f"heatmaps alone: {first.folder.heatmaps.name} in {first.folder.path}).",
            ),
            *[Paragraph(f"{model} is not explained by {method}: {reason}") for model, reason in first.summary.skipped.items()],
            Table(
                [f"measure (mean per image{', mean over seeds; per seed' if len(per_seed) > 1 else ''})", *models],
                [
                    [label, *(_over_seeds([summary.per_model[model][key] for summary in summaries]) for model in models)]
                    for key, label in columns
                ],
            ),
        ]
        if first.summary.agreement:
            blocks.append(
                Table(
                    ["models", "rank correlation", "top-20 % IoU"],
                    [
                        [
                            pair,
                            *(
                                _over_seeds([summary.agreement[pair][key] for summary in summaries])
                                for key in ("rank_corr", "top20_iou")
                            ),
                        ]
                        for pair in first.summary.agreement
                    ],
                )
            )
        per_class_keys = [key for key in ("top10_share", "pointing_hit") if key in first.summary.per_model[models[0]]]
        class_names = list(first.summary.per_class[models[0]])
        blocks.append(
            Table(
                ["class", *(f"{model} {labels[key]}" for model in models for key in per_class_keys)],
                [
                    [
                        name,
                        *(
                            f"{np.mean([summary.per_class[model][name][key] for summary in summaries]):.3f}"
                            for model in models
                            for key in per_class_keys
                        ),
                    ]
                    for name in class_names
                ],
            )
        )
    blocks.append(Paragraph("Definitions of every measure: docs/explain.md in the vitswin repository."))
    return blocks


def _over_seeds(values: list[float]) -> str:
    """A measure's mean over seeds, followed by its value on each seed when there are several."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ({', '.join(f'{value:.3f}' for value in values)})"
