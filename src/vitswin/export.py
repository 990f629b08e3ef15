"""`vitswin export`: a trained run's selected weights in forms other code loads without vitswin, checked on export.

`timm` (or `hub`, the same folder: what `huggingface_hub.upload_folder` uploads as it is): model.safetensors and
config.json in timm's own hub layout (architecture, model_args, label names, input size, mean and std, and a
pretrained_cfg that describes this run, not the weights timm would download), loaded by
`timm.create_model("local-dir:DIR", pretrained=True)`. `onnx`: model.onnx (input "image", a batch of normalised
images at the model's input size; output "logits"; class names and preprocessing in its metadata) and
preprocessing.json, checked under onnxruntime against PyTorch on the run's test images. Every export has a model
card, README.md, written from the run's numbers.
"""

import importlib.util
import io
import json
import logging
import tempfile
import warnings
from pathlib import Path

import timm
import torch

from vitswin.artifacts import atomic_write_bytes, atomic_write_text, write_json
from vitswin.config import StudyConfig
from vitswin.data import load_data
from vitswin.errors import VitswinError
from vitswin.model.classifier import ImageClassifier, load_trained_run
from vitswin.model_card import model_card, run_pretrained_cfg
from vitswin.study_folder import RunFolder

log = logging.getLogger(__name__)
FORMATS = ("timm", "hub", "onnx")
CHECK_IMAGES = 32  # test images the exported model is checked on
TOLERANCE = 1e-4  # largest difference from PyTorch's logits an export may have


def export_run(run_dir: Path, form: str, out: Path, force: bool = False) -> list[Path]:
    """Export the run's selected weights as `form` ("timm", "hub" or "onnx") into folder `out`, which must be empty or
    new unless `force`; returns the files written. The exported model is loaded back and must give PyTorch's
    outputs on the run's test images."""
    if form not in FORMATS:
        raise VitswinError(f"unknown export format '{form}'; choose one of: {', '.join(FORMATS)}.")
    if form == "onnx":
        missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
        if missing:
            raise VitswinError(f"ONNX export needs the {' and '.join(missing)} package(s); pip install 'vitswin[export]'.")
    trained = load_trained_run(RunFolder(run_dir))
    config, class_names, module = trained.config, trained.class_names, trained.classifier
    if out.exists() and not out.is_dir():
        raise VitswinError(f"--out {out} is a file; give a folder for the exported model.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise VitswinError(f"--out {out} is not empty; choose a new folder, or add --force to overwrite what is there.")
    test = load_data(config.data).test
    inputs = module.transform(test.take(slice(CHECK_IMAGES)))
    with torch.no_grad():
        expected = module.network(inputs)
    inherited = dict(module.network.pretrained_cfg)  # timm's, for the architecture's default weights
    if form in ("timm", "hub"):
        files = _export_timm(module, config, class_names, out, run_pretrained_cfg(trained, inherited))
        try:
            reloaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
            with torch.no_grad():
                _check(reloaded(inputs), expected, "timm")
        except VitswinError:
            for path in files:
                path.unlink()
            raise
    else:
        files = _export_onnx(module, config, class_names, inputs, expected, out)
    card = out / "README.md"
    atomic_write_text(model_card(trained, inherited, [path.name for path in files]), card)
    files.append(card)
    log.info("Exported %s (%s) to %s: %s", trained.folder.label, form, out, ", ".join(path.name for path in files))
    return files


def preprocessing(module: ImageClassifier, config: StudyConfig, class_names: list[str]) -> dict:
    """What turns an image file into the exported model's input, as vitswin's evaluation does it."""
    return {
        "class_names": class_names,
        "image_size": config.data.image_size,
        "input_size": [3, module.transform.output_size, module.transform.output_size],
        "mean": list(config.data.mean),
        "std": list(config.data.std),
        "steps": (
            "read the image as RGB, resize it to image_size x image_size (bilinear), scale to [0, 1], subtract mean "
            "and divide by std per channel, then resize to the input size (bilinear, antialiased when shrinking); "
            "the logits' softmax gives the class probabilities, in the order of class_names"
        ),
    }


def _export_timm(
    module: ImageClassifier, config: StudyConfig, class_names: list[str], out: Path, pretrained_cfg: dict
) -> list[Path]:
    size = module.transform.output_size
    data_config = {"input_size": (3, size, size), "mean": config.data.mean, "std": config.data.std, "crop_pct": 1.0}
    data_config["interpolation"] = "bilinear"
    extra = {"label_names": class_names, "vitswin_preprocessing": preprocessing(module, config, class_names)}
    inherited = module.network.pretrained_cfg
    with tempfile.TemporaryDirectory() as folder:
        # timm's own writer, into a scratch folder; the files then reach `out` atomically. It copies the network's
        # pretrained_cfg, which names the weights timm would download (tag, licence): this run's goes in instead.
        module.network.pretrained_cfg = {**pretrained_cfg, **data_config}
        try:
            timm.models.save_for_hf(module.network, folder, model_config=extra, safe_serialization=True, data_config=data_config)
        finally:
            module.network.pretrained_cfg = inherited
        for name in ("model.safetensors", "config.json"):
            atomic_write_bytes((Path(folder) / name).read_bytes(), out / name)
    return [out / "model.safetensors", out / "config.json"]


def _export_onnx(
    module: ImageClassifier, config: StudyConfig, class_names: list[str], inputs: torch.Tensor, expected: torch.Tensor, out: Path
) -> list[Path]:
    import onnx
    import onnxruntime

    buffer = io.BytesIO()
    # The TorchScript exporter: seconds where the dynamo exporter takes minutes for a base model on a CPU; the
    # check below holds either to PyTorch's outputs. Its TracerWarnings (a Python branch on a tensor, traced as a
    # constant) are what that check is for: traced on one image, the export is checked on a batch of several.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module.network,
            (inputs[:1],),
            buffer,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    exported = onnx.load_from_string(buffer.getvalue())
    steps = preprocessing(module, config, class_names)
    onnx.helper.set_model_props(exported, {"class_names": json.dumps(class_names), "preprocessing": json.dumps(steps)})
    serialised = exported.SerializeToString()
    session = onnxruntime.InferenceSession(serialised, providers=["CPUExecutionProvider"])
    _check(torch.from_numpy(session.run(None, {"image": inputs.numpy()})[0]), expected, "ONNX")
    atomic_write_bytes(serialised, out / "model.onnx")
    write_json(steps, out / "preprocessing.json")
    return [out / "model.onnx", out / "preprocessing.json"]


def _check(outputs: torch.Tensor, expected: torch.Tensor, form: str) -> None:
    difference = float((outputs - expected).abs().max())
    if difference > TOLERANCE:
        raise VitswinError(
            f"the {form} export's outputs differ from PyTorch's by up to {difference:.2g} (more than {TOLERANCE:g}); "
            f"nothing was kept. Please report it with the model name."
        )
    log.info("%s export checked: largest difference from PyTorch %.2g on %d test images", form, difference, len(outputs))
