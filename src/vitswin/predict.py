"""`vitswin predict`: classify new images with trained runs, side by side, optionally with a Grad-CAM overlay.

Images are read as the `imagefolder` source reads them (any mode converted to RGB, resized to the run's
`data.image_size`) and go through the run's own evaluation transform, batched on the device, so an image of
the test set gets exactly the probabilities in the run's predictions.npz.
"""

import glob
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vitswin.artifacts import write_csv, write_json, write_png
from vitswin.data.imagefolder import IMAGE_SUFFIXES, decode_image
from vitswin.data.imageset import ImageSet
from vitswin.errors import VitswinError
from vitswin.evaluation import predict
from vitswin.explain.figures import DPI, ModelColumn, heatmap_grid
from vitswin.explain.methods import explain_batch
from vitswin.explain.metrics import resize_maps
from vitswin.explain.targets import cam_target
from vitswin.model.classifier import TrainedRun, load_trained_run
from vitswin.study_folder import RunFolder, run_names

log = logging.getLogger(__name__)
CAM_DISPLAY = 160  # pixels per side of each image in a --cam figure


@dataclass(frozen=True)
class Classified:
    """Every readable input image with each run's top-k classes and probabilities, and the inputs that failed."""

    images: list[Path]
    runs: list[str]
    top: dict[str, list[list[tuple[str, float]]]]  # run name -> per image -> (class, probability), best first
    problems: list[str]

    def rows(self) -> list[dict]:
        """One CSV row per image: for every run, its top classes and probabilities side by side."""
        rows = []
        for index, image in enumerate(self.images):
            row: dict = {"image": str(image)}
            for name in self.runs:
                for rank, (label, probability) in enumerate(self.top[name][index], start=1):
                    row[f"{name} class {rank}"] = label
                    row[f"{name} probability {rank}"] = round(probability, 6)
            rows.append(row)
        return rows

    def records(self) -> list[dict]:
        """The same as nested records, for JSON."""
        return [
            {
                "image": str(image),
                "predictions": {
                    name: [{"class": label, "probability": p} for label, p in self.top[name][index]] for name in self.runs
                },
            }
            for index, image in enumerate(self.images)
        ]


def find_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """The image files named by `inputs` (files, folders searched recursively, glob patterns), in order and each
    once, and one sentence for every input that names none."""
    found: dict[Path, None] = {}
    problems = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not matches:
            what = "is an empty folder" if path.is_dir() else "does not exist and matches no file"
            problems.append(f"{text} {what}; pass image files, folders of images or glob patterns.")
        found.update(dict.fromkeys(matches))
    return list(found), problems


def classify(run_dirs: list[Path], inputs: list[str], top_k: int = 3, cam_dir: Path | None = None) -> Classified:
    """Classify the images named by `inputs` with every run of `run_dirs`; with `cam_dir`, also write one figure
    per image there: the image and each run's Grad-CAM for its predicted class."""
    if top_k < 1:
        raise VitswinError(f"--top-k must be at least 1, got {top_k}.")
    runs = [RunFolder(path) for path in run_dirs]
    names = run_names(runs)
    models = [load_trained_run(run) for run in runs]
    paths, problems = find_images(inputs)
    decoded: dict[int, tuple[dict[Path, int], torch.Tensor]] = {}  # per image size: row of each image, images
    for size in sorted({model.image_size for model in models}):
        readable, images, unreadable = _decode(paths, size)
        decoded[size] = ({path: row for row, path in enumerate(readable)}, images)
        problems += [problem for problem in unreadable if problem not in problems]
    readable = [path for path in paths if all(path in rows for rows, _ in decoded.values())]
    top: dict[str, list[list[tuple[str, float]]]] = {}
    maps: dict[str, ModelColumn] = {}
    for name, model in zip(names, models, strict=True):
        rows, images = decoded[model.image_size]
        images = images[[rows[path] for path in readable]]
        class_names = model.class_names
        probabilities = _probabilities(model, images, class_names)
        best = probabilities.topk(min(top_k, len(class_names)), dim=1)
        top[name] = [
            [(class_names[c], float(p)) for p, c in zip(values, indices, strict=True)]
            for values, indices in zip(best.values.tolist(), best.indices.tolist(), strict=True)
        ]
        if cam_dir is not None and readable:
            maps[name] = _cam_column(name, model, images, probabilities.argmax(1), class_names)
    if cam_dir is not None and readable:
        _write_cams(cam_dir, readable, decoded, names, maps)
    return Classified(readable, names, top, problems)


def _decode(paths: list[Path], size: int) -> tuple[list[Path], torch.Tensor, list[str]]:
    """The readable images of `paths` as uint8 (N, 3, size, size), and one sentence per unreadable file."""
    readable, arrays, problems = [], [], []
    for path in paths:  # the images given to classify: few enough to hold, decoded as a store decodes them
        try:
            arrays.append(decode_image(path, size))
            readable.append(path)
        except ValueError as error:
            problems.append(f"{path} is not a readable image ({error}); it was left out.")
    images = (
        torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        if arrays
        else torch.empty(0, 3, size, size, dtype=torch.uint8)
    )
    return readable, images, problems


def _probabilities(model: TrainedRun, images: torch.Tensor, class_names: list[str]) -> torch.Tensor:
    if len(images) == 0:
        return torch.empty(0, len(class_names))
    unlabelled = ImageSet(images, torch.zeros(len(images), dtype=torch.long), class_names)
    return predict(model.classifier, unlabelled, model.hardware).probabilities


def _cam_column(
    name: str, model: TrainedRun, images: torch.Tensor, predicted: torch.Tensor, class_names: list[str]
) -> ModelColumn:
    """Grad-CAM of each image for the class the run predicted, at display size."""
    module = model.classifier.cpu().eval()
    size = module.transform.output_size
    target = cam_target(module.network, (size, size), model.model.explain_layer)
    maps = [
        explain_batch(
            module.network, module.transform(images[start : start + 16]), predicted[start : start + 16], "gradcam", target
        )
        for start in range(0, len(images), 16)
    ]
    return ModelColumn(name, resize_maps(np.concatenate(maps), (CAM_DISPLAY, CAM_DISPLAY)), [class_names[c] for c in predicted])


def _write_cams(cam_dir: Path, paths: list[Path], decoded: dict, names: list[str], columns: dict[str, ModelColumn]) -> None:
    """One figure per image: the image, then each run's Grad-CAM over it, titled with the run's prediction."""
    rows, images = next(iter(decoded.values()))
    shown = images[[rows[path] for path in paths]].float() / 255
    shown = F.interpolate(shown, size=(CAM_DISPLAY, CAM_DISPLAY), mode="bilinear", align_corners=False)
    shown = shown.clamp(0, 1).permute(0, 2, 3, 1).numpy()
    for index, path in enumerate(paths):
        row = [ModelColumn(n, columns[n].maps[index : index + 1], columns[n].predictions[index : index + 1]) for n in names]
        figure = heatmap_grid(shown[index : index + 1], [None], row, overlay=True, titles=[path.name])
        write_png(figure, cam_dir / f"{index:04d}-{path.stem}.png", DPI)
    log.info("Grad-CAM overlays of %d image(s) written to %s", len(paths), cam_dir)


def check_out_file(out: Path) -> None:
    """Refuse an output file of a format predictions are not written in, before any work."""
    if out.suffix.lower() not in (".csv", ".json"):
        raise VitswinError(f"--out {out} must end in .csv or .json, the two formats predictions are written in.")


def write_predictions(classified: Classified, out: Path) -> None:
    """The predictions as CSV (one row per image, the runs side by side) or JSON, by the file's suffix."""
    check_out_file(out)
    if out.suffix.lower() == ".json":
        write_json({"runs": classified.runs, "images": classified.records(), "problems": classified.problems}, out)
    else:
        write_csv(classified.rows(), out)
