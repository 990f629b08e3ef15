"""`vitswin explain`: heatmaps, figures and attention measurements for finished runs on the same images.

Writes into `<study>/explain/<method>/seed-<k>/`: overlay.png and heatmaps.png (the published figures),
maps.npz (raw maps at each model's input size), attention.csv (one row per model and image),
agreement.csv (one row per model pair and image) and attention.json (means per model and class,
agreement, and the built-in sanity checks).
"""

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vitswin.config import ExplainConfig, ModelConfig
from vitswin.data import ImageSet, load_data
from vitswin.errors import VitswinError
from vitswin.explain import metrics
from vitswin.explain.figures import DPI, ModelColumn, heatmap_grid
from vitswin.explain.measures import MeasureBatch
from vitswin.explain.methods import explain_batch
from vitswin.explain.selection import select_images
from vitswin.explain.summary import ModelExplanation, agreement_rows, image_rows, summarise
from vitswin.explain.targets import UnexplainableModelError, cam_target
from vitswin.model.classifier import ImageClassifier, load_trained_run
from vitswin.model.network import build_network
from vitswin.registry import MEASURES, resolve
from vitswin.seeding import seeded
from vitswin.study_folder import ExplanationFolder, RunFolder, StudyFolder, run_names

log = logging.getLogger(__name__)

DISPLAY_MIN = 128  # figures show small images enlarged to at least this many pixels


def explain_runs(run_dirs: list[Path], options: ExplainConfig, out_dir: Path | None = None) -> Path:
    """Explain every run on the same test images; write figures, maps and measurements into `out_dir` (default,
    for runs of one seed of one study: the study's explain/<method>/seed-<k>/); return that folder."""
    runs = [RunFolder(run_dir) for run_dir in run_dirs]
    names = run_names(runs)
    configs = [run.trained_config() for run in runs]
    _check_same_data(runs, configs)
    test = load_data(configs[0].data).test
    saved = [_saved_predictions(run, test) for run in runs] if options.select != "sample" else []
    chosen_indices = select_images(test.labels, options.images, options.seed, options.select, saved)
    chosen = test.subset(chosen_indices)
    study = runs[0].study
    folder = ExplanationFolder(out_dir) if out_dir else _study_folder_for(runs, study, options.method)

    total = len(runs) * -(-len(chosen) // options.batch_size)
    explanations: list[ModelExplanation] = []
    skipped: dict[str, str] = {}  # model -> why it could not be explained
    with tqdm(total=total, desc=f"explain ({options.method})", unit="batch", disable=None) as progress:
        for name, run in zip(names, runs, strict=True):
            trained = load_trained_run(run, test.class_names)
            try:
                # Seeded the same for every model: the randomised twin's weights and ROAD's noise.
                with seeded(options.seed + 1):
                    explanations.append(_explain_model(name, trained.classifier, trained.model, chosen, options, progress))
            except UnexplainableModelError as error:
                log.warning("%s is not explained: %s", name, error)
                skipped[name] = str(error)
    if not explanations:
        raise VitswinError(f"no model could be explained with {options.method}: " + " ".join(skipped.values()))
    _write_outputs(folder, chosen, chosen_indices, explanations, options, skipped)
    if out_dir is None:
        study.record_stage(folder.stage)
    return folder.path


def _study_folder_for(runs: list[RunFolder], study: StudyFolder, method: str) -> ExplanationFolder:
    """Where the explanation of runs of one seed of one study goes; other mixes need a folder of their own."""
    if any(run.study.path.resolve() != study.path.resolve() or run.seed != runs[0].seed for run in runs):
        raise VitswinError(
            "these runs are not one seed of one study (e.g. runs/default/vit/seed-0 runs/default/swin/seed-0); "
            "choose a folder for their explanations with --out."
        )
    return study.explanation(method, runs[0].seed)


def _check_same_data(runs: list[RunFolder], configs: list) -> None:
    first = configs[0]
    for run, config in zip(runs[1:], configs[1:], strict=True):
        if config.data != first.data:
            raise VitswinError(
                f"{run.path} was trained on different data than {runs[0].path}; "
                f"explain runs of one study together, so every model sees the same test images."
            )


def _saved_predictions(run: RunFolder, test: ImageSet) -> np.ndarray:
    """The run's saved test-set predictions, checked against the test set they claim to describe."""
    saved = run.read_predictions()
    if not np.array_equal(saved.labels, test.labels.numpy()):
        raise VitswinError(
            f"{run.predictions_file} does not match the run's test set; run 'vitswin evaluate {run.path}' to refresh it."
        )
    return saved.probabilities.argmax(1)


def _explain_model(
    name: str,
    module: ImageClassifier,
    model: ModelConfig,
    chosen: ImageSet,
    options: ExplainConfig,
    progress: tqdm,
) -> ModelExplanation:
    network = module.network.eval()
    input_size = (module.transform.output_size, module.transform.output_size)
    target = cam_target(network, input_size, model.explain_layer)  # refuses a model it cannot read, before any work
    randomised = build_network(model, chosen.num_classes, weights="random").eval()  # the model-randomisation check
    randomised_target = cam_target(randomised, input_size, model.explain_layer)
    stored_size = chosen.image_size
    generator = torch.Generator().manual_seed(options.seed)  # random maps: the deletion / insertion baseline
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(chosen), options.batch_size):
        images = chosen.take(slice(start, start + options.batch_size))
        inputs = module.transform(images)
        with torch.no_grad():
            probabilities = network(inputs).float().softmax(1)
        predictions = probabilities.argmax(1)
        classes = chosen.labels[start : start + options.batch_size] if options.target == "true" else predictions
        probability = probabilities.gather(1, classes.unsqueeze(1))[:, 0].numpy()  # of the explained class
        input_maps = explain_batch(network, inputs, classes, options.method, target)
        baseline_maps = metrics.random_maps(len(inputs), target.grid, input_size, generator)
        maps = metrics.resize_maps(input_maps, stored_size)
        randomised_maps = metrics.resize_maps(
            explain_batch(randomised, inputs, classes, options.method, randomised_target), stored_size
        )
        masks = chosen.take_masks(slice(start, start + options.batch_size))
        masks = None if masks is None else masks.numpy()
        measured = MeasureBatch(network, inputs, input_maps, maps, baseline_maps, randomised_maps, classes, masks, options.steps)
        batch = {
            "input_maps": input_maps,
            "maps": maps,
            "predictions": predictions.numpy(),
            "explained": classes.numpy(),
            "probability": probability.astype(np.float64),
            **_measure(measured, options),
        }
        for key, value in batch.items():
            parts.setdefault(key, []).append(value)
        progress.update()
    joined = {key: np.concatenate(values) for key, values in parts.items()}
    fixed = ("input_maps", "maps", "predictions", "explained")
    return ModelExplanation(name, *(joined.pop(key) for key in fixed), scores=joined)


def _measure(batch: MeasureBatch, options: ExplainConfig) -> dict[str, np.ndarray]:
    """Every registered explanation measure that applies (masks where it needs them, not switched off)."""
    scores: dict[str, np.ndarray] = {}
    for measure in MEASURES:
        if (measure.needs_masks and batch.masks is None) or (measure.switch and not getattr(options, measure.switch)):
            continue
        scores |= resolve(measure.compute)(batch)
    return scores


def _write_outputs(
    folder: ExplanationFolder,
    chosen: ImageSet,
    indices: torch.Tensor,
    explanations: list[ModelExplanation],
    options: ExplainConfig,
    skipped: dict[str, str],
) -> None:
    names = chosen.class_names
    shown = min(options.show, len(chosen))
    true_names = [names[label] for label in chosen.labels[:shown]]
    display = max(DISPLAY_MIN, *chosen.image_size, *(e.input_maps.shape[-1] for e in explanations))
    images = (
        F.interpolate(chosen.take(slice(shown)).float() / 255, size=(display, display), mode="bilinear", align_corners=False)
        .clamp(0, 1)
        .permute(0, 2, 3, 1)
        .numpy()
    )
    columns = [
        ModelColumn(
            e.name, metrics.resize_maps(e.input_maps[:shown], (display, display)), [names[p] for p in e.predictions[:shown]]
        )
        for e in explanations
    ]
    for overlay in (True, False):
        folder.write_figure(heatmap_grid(images, true_names, columns, overlay), overlay, DPI)

    folder.write_maps(
        indices=indices.numpy(),
        labels=chosen.labels.numpy(),
        class_names=np.array(names),
        **{f"{e.name}/maps": e.input_maps for e in explanations},
        **{f"{e.name}/predictions": e.predictions for e in explanations},
    )
    agreement = agreement_rows(explanations, indices)
    folder.write_rows(image_rows(explanations, chosen, indices), agreement)
    summary = summarise(explanations, chosen, agreement, options.model_dump(), skipped)
    folder.write_summary(summary)  # last: marks the explanation as complete
    for e in explanations:
        log.info("%s: %s", e.name, ", ".join(f"{key} {value:.3f}" for key, value in summary.sanity[e.name].items()))
