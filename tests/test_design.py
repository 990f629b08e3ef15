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
    # Fit, prediction, the benchmarks and the question "how many processes does this resolve to" all build it here.
    assert trainers == ["training/trainer.py"]
    assert not [name for name, text in sources().items() if '"pretrained": "none"' in text]
    # export.py loads an exported model back with timm, as its users will, to check it.
    makers = [name for name, text in sources().items() if "timm.create_model(" in text]
    assert makers == ["export.py", "model/network.py"]


def test_one_loader_of_trained_runs_and_no_hidden_state() -> None:
    code = sources()
    # A finished run is loaded through classifier.load_trained_run alone; training selects its own best weights.
    assert [name for name, text in code.items() if re.search(r"\bload_weights\(", text)] == ["model/classifier.py", "study.py"]
    assert [name for name, text in code.items() if "def load_trained_run" in text] == ["model/classifier.py"]
    assert not [name for name, text in code.items() if re.search(r"^\s*global\s", text, re.MULTILINE)]
    global_seeding = r"(torch\.manual_seed|torch\.cuda\.manual_seed|random\.seed|np\.random\.seed|seed_everything)\("
    assert [name for name, text in code.items() if re.search(global_seeding, text)] == ["seeding.py"]
    # A run folder knows its study: RunFolder.study is the one place that walks up from a run.
    assert [name for name, text in code.items() if "parent.parent" in text] == ["study_folder.py"]


def test_the_config_imports_no_stage() -> None:
    imported = re.findall(r"^from (vitswin[.\w]*) import|^import (vitswin[.\w]*)", sources()["config.py"], re.MULTILINE)
    assert sorted({name for pair in imported for name in pair if name}) == ["vitswin.errors", "vitswin.registry"]
    registry = re.findall(r"^(?:from|import) (\S+)", sources()["registry.py"], re.MULTILINE)
    assert not [name for name in registry if name.split(".")[0] in ("torch", "lightning", "timm", "numpy", "pytorch_grad_cam")]


def test_the_report_measures_nothing_and_no_module_changes_global_state_on_import() -> None:
    for name, text in sources(PACKAGE / "report").items():
        assert not re.search(r"from vitswin\.(bench\.measure|model\.network|cost) import", text), name
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
