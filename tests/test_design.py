"""The package's shape: one owner per concept (checked by looking at the source), and style tools clean."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "vitswin"
RUFF = Path(sys.executable).parent / "ruff"


def sources(folder: Path = PACKAGE) -> dict[str, str]:
    return {str(path.relative_to(PACKAGE)): path.read_text() for path in sorted(folder.rglob("*.py"))}


def test_one_trainer_factory_and_one_network_factory() -> None:
    trainers = [name for name, text in sources().items() for _ in re.finditer(r"pl\.Trainer\(", text)]
    # trainer.py builds every Trainer; distributed.py asks Lightning how many processes a setting resolves to.
    assert sorted(trainers) == ["distributed.py", "trainer.py"]
    assert not [name for name, text in sources().items() if '"pretrained": "none"' in text]
    # export.py loads an exported model back with timm, as its users will, to check it.
    makers = [name for name, text in sources().items() if "timm.create_model(" in text]
    assert makers == ["bench/scaling.py", "export.py", "models.py"]


def test_the_report_measures_nothing_and_no_module_changes_global_state_on_import() -> None:
    for name, text in sources(PACKAGE / "report").items():
        assert not re.search(r"from vitswin\.(bench\.measure|models|cost) import", text), name
    for name, text in sources().items():
        assert not re.search(r"^warnings\.(filterwarnings|simplefilter)", text, re.MULTILINE), name


def test_artifact_names_are_known_to_the_study_folder_alone() -> None:
    artifacts = (
        "best.safetensors",
        "predictions.npz",
        "metrics.json",
        "train.json",
        "fit.json",
        "history.csv",
        "attention.json",
        "stages.json",
        "cost.json",
    )
    for name, text in sources().items():
        if name != "study_folder.py":
            assert not [artifact for artifact in artifacts if f'"{artifact}"' in text], name
            assert "seed-{" not in text, name  # how run and explanation folders are named per seed


@pytest.mark.skipif(not RUFF.is_file(), reason="needs ruff (./setup.sh --dev installs it)")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command: list[str]) -> None:
    result = subprocess.run([str(RUFF), *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
