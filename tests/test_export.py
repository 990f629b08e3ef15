"""`vitswin export`: timm and ONNX exports load back and reproduce the run's test predictions."""

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import timm
import torch

from vitswin.cli import main
from vitswin.data import load_data
from vitswin.model.transforms import BatchTransform
from vitswin.study_folder import RunFolder


@pytest.fixture
def runs(colour_study: tuple) -> list[Path]:
    return colour_study[1]


def exported_input(run_dir: Path) -> tuple[torch.Tensor, np.ndarray]:
    """The run's test images as the exported model's input (by its preprocessing.json or config.json), and the
    class predictions the run saved for them."""
    run = RunFolder(run_dir)
    config = run.trained_config()
    model = next(iter(config.models.values()))
    images = load_data(config.data).test.images
    transform = BatchTransform(model.input_size, config.data.mean, config.data.std, model.augment)
    return transform(images), run.read_predictions().probabilities.argmax(1)


@pytest.mark.parametrize("index", [0, 1], ids=["vit", "swin"])
def test_the_timm_export_loads_both_ways_and_predicts_as_the_run(runs: list[Path], tmp_path: Path, index: int) -> None:
    out = tmp_path / "timm"
    assert main(["export", str(runs[index]), "--format", "timm", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["label_names"] == RunFolder(runs[index]).read_predictions().class_names
    inputs, saved = exported_input(runs[index])
    by_folder = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    by_overlay = timm.create_model(
        config["architecture"],
        pretrained=True,
        pretrained_cfg_overlay={"file": str(out / "model.safetensors"), "num_classes": config["num_classes"]},
        **config["model_args"],
    ).eval()
    with torch.no_grad():
        for model in (by_folder, by_overlay):
            np.testing.assert_array_equal(model(inputs).argmax(1).numpy(), saved)
    assert config["pretrained_cfg"]["mean"] == pytest.approx(list(RunFolder(runs[index]).trained_config().data.mean))
    # The weights are this run's, trained from scratch: no tag, hub id or licence of timm's pretrained weights.
    assert not {"tag", "hf_hub_id", "license", "url"} & set(config["pretrained_cfg"])
    assert config["pretrained_cfg"]["description"].startswith("trained by vitswin on imagefolder from ")
    assert ", from scratch (random initialisation), seed 0" in config["pretrained_cfg"]["description"]
    card = (out / "README.md").read_text()
    accuracy = json.loads((runs[index] / "metrics.json").read_text())["accuracy"]
    assert f"Test accuracy **{100 * accuracy:.2f} %**" in card and "library_name: timm" in card
    assert "This is one trained model" in card and "| `train.lr` |" in card


@pytest.mark.parametrize("index", [0, 1], ids=["vit", "swin"])
def test_the_onnx_export_predicts_as_the_run(runs: list[Path], tmp_path: Path, index: int, capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "onnx"
    capfd.readouterr()
    assert main(["export", str(runs[index]), "--format", "onnx", "--out", str(out)]) == 0
    assert "Warning" not in capfd.readouterr().err  # timm's traced branches are checked, not printed
    # Exporting again into the same folder is refused, unless told to overwrite.
    assert main(["export", str(runs[index]), "--format", "onnx", "--out", str(out)]) == 2
    assert f"--out {out} is not empty; choose a new folder, or add --force" in capfd.readouterr().err
    assert main(["export", str(runs[index]), "--format", "onnx", "--out", str(out), "--force"]) == 0
    steps = json.loads((out / "preprocessing.json").read_text())
    inputs, saved = exported_input(runs[index])
    assert steps["input_size"] == list(inputs.shape[1:])
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": inputs.numpy()})[0]
    np.testing.assert_array_equal(logits.argmax(1), saved)
    metadata = session.get_modelmeta().custom_metadata_map  # what onnxruntime alone reads, without the side file
    assert json.loads(metadata["class_names"]) == steps["class_names"] == RunFolder(runs[index]).read_predictions().class_names
    assert json.loads(metadata["preprocessing"])["mean"] == steps["mean"]
    assert (out / "README.md").is_file()


def test_the_hub_export_is_the_timm_folder_with_its_card(runs: list[Path], tmp_path: Path) -> None:
    assert main(["export", str(runs[0]), "--format", "hub", "--out", str(tmp_path / "hub")]) == 0
    assert sorted(path.name for path in (tmp_path / "hub").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (tmp_path / "hub" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: timm\npipeline_tag: image-classification\n")


def test_bad_export_arguments(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(tmp_path), "--format", "timm", "--out", str(tmp_path / "x")]) == 2
    assert "is not a finished run folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["export", str(runs[0]), "--format", "onnx", "--out", str(tmp_path / "file")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"vitswin: error: --out {tmp_path / 'file'} is a file; give a folder for the exported model."
    )


def test_a_fine_tuned_export_names_its_base_weights_and_their_licence_as_theirs() -> None:
    from types import SimpleNamespace

    from vitswin.model_card import origin

    inherited = timm.create_model("vit_tiny_patch16_224", pretrained=False).pretrained_cfg
    fine_tuned = SimpleNamespace(model=SimpleNamespace(pretrained="hub"))
    assert origin(fine_tuned, inherited) == (
        "starting from timm's pretrained weights timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k; "
        "those weights' licence: apache-2.0"
    )
    assert origin(SimpleNamespace(model=SimpleNamespace(pretrained="my.safetensors")), inherited) == (
        "starting from the weights file my.safetensors"
    )
