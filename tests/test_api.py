"""The package as scripts and notebooks use it: top-level entry points, progress lines without any logging set-up,
the comparisons as records, and no Lightning banners."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_two_colour_folder, tiny_study, write_config


def test_import_vitswin_is_light_and_names_its_entry_points() -> None:
    code = "import sys, vitswin; print(sorted(vitswin.__all__)); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, torch_loaded = done.stdout.splitlines()
    assert "run_study" in names and "load_config" in names and "export_run" in names
    assert torch_loaded == "False"


@pytest.mark.slow
def test_a_fresh_python_runs_a_study_sees_its_progress_and_gets_the_comparisons(tmp_path: Path) -> None:
    root = make_two_colour_folder(tmp_path / "colours", per_class=150)  # both models learn it: a comparison to make
    config = write_config(tmp_path, tiny_study(tmp_path, source="imagefolder", root=str(root), train_size=None, test_size=None))
    script = (
        "import json, vitswin\n"
        f"result = vitswin.run_study(vitswin.load_config({config!r}), explain=False)\n"
        "print('COMPARISONS', json.dumps(result.comparisons()))\n"
        "print('RUNS', json.dumps(result.run_records()))\n"
        "print('REPORT', result.report_html)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    out = done.stdout
    assert "=== Training vit (vit_tiny_patch16_224), seed 0 ===" in out and "Epoch 3/3, Loss: " in out  # progress
    for banner in ("GPU available", "TPU available", "Tip:", "LOCAL_RANK"):
        assert banner not in out + done.stderr, banner
    tagged = [line.split(" ", 1) for line in out.splitlines() if line.startswith(("COMPARISONS ", "RUNS ", "REPORT "))]
    lines = dict(tagged)
    runs = json.loads(lines["RUNS"])
    accuracies = {run["model"]: run["test_acc"] for run in runs}
    assert sorted(accuracies) == ["swin", "vit"] and all(run["seed"] == 0 for run in runs)
    accuracy = next(row for row in json.loads(lines["COMPARISONS"]) if row["measure"] == "accuracy")
    expected = accuracies[accuracy["a"]] - accuracies[accuracy["b"]]
    assert accuracy["difference"] == pytest.approx(expected, abs=1e-9)
    if accuracy["tested"]:
        assert accuracy["interval_low"] <= accuracy["difference"] <= accuracy["interval_high"]
        assert accuracy["differ"] == (accuracy["p_adjusted"] < 0.05)
    else:  # both models right on the same images: nothing to test, and no number pretends otherwise
        assert accuracy["p_value"] is None and not accuracy["differ"]
    assert Path(lines["REPORT"]).is_file()
    assert json.loads((Path(lines["REPORT"]).parent / "findings.json").read_text())[0]["text"]
