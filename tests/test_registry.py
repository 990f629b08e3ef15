"""One place per addition: a toy data source, explanation method, explanation measure and report section, each
registered with one line, are accepted by the config and the CLI, run, and reported end to end."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli, tiny_study
from vitswin.config import validate_config
from vitswin.data.imageset import ImageSet
from vitswin.errors import VitswinError
from vitswin.registry import (
    MEASURES,
    METHODS,
    SECTIONS,
    SOURCES,
    DataSource,
    ExplanationMeasure,
    ExplanationMethod,
    ReportSection,
    compared_measures,
)
from vitswin.report.document import Heading, Paragraph
from vitswin.study import run_study


def bright_or_dark(config) -> tuple[ImageSet, None]:
    """Two classes of flat grey images; no test set of its own, so data.test_split of it is held out."""
    generator = torch.Generator().manual_seed(config.seed)
    labels = torch.arange(240) % 2
    level = torch.where(labels == 1, 200, 40) + torch.randint(-20, 21, (240,), generator=generator)
    size = config.image_size
    images = level.view(-1, 1, 1, 1).expand(-1, 3, size, size).to(torch.uint8).contiguous()
    return ImageSet(pixels=images, labels=labels, class_names=["dark", "bright"]), None


def centre_map(network, inputs, classes, target) -> np.ndarray:
    """A map that always points at the middle of the image, whatever the network."""
    size = inputs.shape[-1]
    grid = torch.linspace(-1, 1, size)
    bump = torch.exp(-(grid[:, None] ** 2 + grid[None] ** 2) * 4)
    return bump.expand(len(inputs), size, size).numpy().astype(np.float32)


def peak_value(batch) -> dict[str, np.ndarray]:
    return {"toy_peak": batch.maps.reshape(len(batch.maps), -1).max(1).astype(np.float64)}


def model_count(report) -> list:
    return [Heading("Toy section"), Paragraph(f"The toy section saw {len(report.inputs.runs)} models.")]


@pytest.fixture
def toys() -> Iterator[None]:
    entries = [
        (SOURCES, DataSource("toy", bright_or_dark, lambda data: "toy grey images")),
        (METHODS, ExplanationMethod("toy-centre", centre_map)),
        (MEASURES, ExplanationMeasure("toy", peak_value, {"toy_peak": "toy peak"})),
        (SECTIONS, ReportSection("toy", model_count)),
    ]
    for registry, entry in entries:
        registry.add(entry)
    yield
    for registry, entry in entries:
        registry.remove(entry.name)


def toy_config(tmp_path: Path) -> dict:
    raw = tiny_study(tmp_path, source="toy", train_size=None, test_size=None, test_split=0.25)
    for model in raw["models"].values():
        model["train"]["max_epochs"] = 1
    return {**raw, "explain": {"method": "toy-centre", "images": 4, "road": False}}


def test_unregistered_names_get_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(VitswinError, match="config key 'data.source' has bad value 'toy': input should be 'shapes', "):
        validate_config(toy_config(tmp_path))
    raw = {**toy_config(tmp_path), "data": {"source": "shapes"}}
    with pytest.raises(VitswinError, match="config key 'explain.method' has bad value 'toy-centre'"):
        validate_config(raw)
    with pytest.raises(VitswinError, match="unknown explanation method 'toy-centre'; choose one of: gradcam, "):
        METHODS["toy-centre"]


@pytest.mark.slow
def test_a_toy_of_each_kind_is_used_end_to_end(toys: None, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = validate_config(toy_config(tmp_path))  # the config accepts the registered names
    run_study(config)
    study = config.study_dir
    rows = (study / "explain" / "toy-centre" / "seed-0" / "attention.csv").read_text().splitlines()
    assert "toy_peak" in rows[0].split(",")
    report = (study / "report.md").read_text()
    assert "toy grey images" in report  # the source's own words in the setup
    assert "## Toy section" in report and "The toy section saw 2 models." in report
    assert "| toy peak |" in report  # the measure's column in the explanation table, after the built-in ones
    assert report.index("## Toy section") > report.index("## Explanations")
    assert "toy_peak" not in compared_measures()  # shown, not compared: it declares no comparison
    # The CLI's choices read the same table: `vitswin explain --method toy-centre` runs the toy method.
    runs = [str(study / key / "seed-0") for key in ("vit", "swin")]
    code, err = run_cli(
        capsys, "explain", *runs, "--method", "toy-centre", "--images", "2", "--no-road", "--out", str(tmp_path / "x")
    )
    assert code == 0, err
    assert (tmp_path / "x" / "attention.json").is_file()


def test_the_docs_name_every_registered_source_method_and_compared_measure() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs"
    configuration, explain = (docs / "configuration.md").read_text(), (docs / "explain.md").read_text()
    assert [name for name in SOURCES.names() if f"`{name}`" not in configuration] == []
    assert [name for name in METHODS.names() if f"`{name}`" not in configuration or f"`{name}`" not in explain] == []
    assert [key for key in compared_measures() if f"`{key}`" not in configuration] == []
