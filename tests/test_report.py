"""The report: statistics against independent computations, findings that follow the numbers, and the
report of a fake study (no training) rendered as Markdown, as HTML, and in headless Chromium."""

import functools
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from scipy.stats import binomtest

from conftest import CONFIGS, tiny_study
from vitswin.artifacts import write_json, write_png
from vitswin.config import validate_config
from vitswin.errors import VitswinError
from vitswin.evaluation import Evaluation
from vitswin.explain.figures import ModelColumn, heatmap_grid
from vitswin.report.figures import reliability_diagrams, training_curves
from vitswin.report.stats import calibration, mcnemar, smoothed_loss_floor
from vitswin.study import report_study, run_config
from vitswin.study_folder import ExplanationFolder, ExplanationSummary, StudyFolder
from vitswin.training.fit import typical_epoch_time

SECTIONS = (
    "## Findings",
    "## Set-up",
    "## Results",
    "## Paired comparison",
    "## Training curves",
    "## Per class",
    "## Calibration",
    "## Cost",
    "## Explanations",
)


@pytest.mark.parametrize(("only_a", "only_b"), [(0, 0), (3, 0), (7, 12), (40, 25), (130, 170)])
def test_mcnemar_p_value_is_scipy_exact_binomial_test(only_a: int, only_b: int) -> None:
    correct_a = np.array([True] * 50 + [True] * only_a + [False] * only_b + [False] * 9)
    correct_b = np.array([True] * 50 + [False] * only_a + [True] * only_b + [False] * 9)
    table = mcnemar(correct_a, correct_b)
    assert (table.both_right, table.only_a_right, table.only_b_right, table.both_wrong) == (50, only_a, only_b, 9)
    expected = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    assert table.p_value == pytest.approx(expected, rel=1e-9)


def test_ece_of_a_hand_computed_case() -> None:
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55], [0.05, 0.95]])
    labels = np.array([0, 1, 1, 0, 1])
    # 15 bins of width 1/15: confidences 0.9 and 0.95 share bin (0.8667, 0.9333]? 0.9 yes, 0.95 no.
    # bins: {0.9}: acc 1, conf 0.9 | {0.8}: acc 0 | {0.7}: acc 1 | {0.55}: acc 0 | {0.95}: acc 1
    gaps = [abs(1 - 0.9), abs(0 - 0.8), abs(1 - 0.7), abs(0 - 0.55), abs(1 - 0.95)]
    result = calibration(probabilities, labels)
    assert result.ece == pytest.approx(sum(gaps) / 5)
    assert result.count.sum() == 5 and np.isnan(result.accuracy[0])  # an empty bin stays empty
    perfect = calibration(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))
    assert perfect.ece == pytest.approx(0)


def make_fake_study(
    tmp_path: Path,
    accuracy: dict[str, float | list[float]],
    explain: bool = True,
    seeds: tuple[int, ...] = (0,),
    side_by_side: bool = False,
    hypotheses: list[dict] | None = None,
) -> Path:
    """A study folder as `vitswin study` writes it, with made-up predictions and histories (no training); a model's
    accuracy is one number for every seed, or a list with one per seed; with `side_by_side` the runs of each seed
    trained at the same time on one machine, else one after another."""
    raw = tiny_study(tmp_path)
    raw["seeds"] = list(seeds)
    raw["hypotheses"] = hypotheses or []
    raw["models"] = {key: raw["models"].get(key, {"name": "resnet18", "input_size": 16}) for key in accuracy}
    config = validate_config(raw)
    study = StudyFolder.of(config)
    study.register(config)
    labels = torch.arange(10).repeat(30)
    rng = np.random.default_rng(0)
    for index, (key, levels) in enumerate(accuracy.items()):
        for seed_index, seed in enumerate(seeds):
            acc = levels[seed_index] if isinstance(levels, list) else levels
            run = study.run(key, seed)
            run.write_config(run_config(config, key, seed))
            right = torch.from_numpy(rng.random(len(labels)) < acc)
            predicted = torch.where(right, labels, (labels + 1) % 10)
            probabilities = torch.full((len(labels), 10), 0.02)
            probabilities[torch.arange(len(labels)), predicted] = 0.82
            Evaluation(probabilities, labels, [f"class{c}" for c in range(10)]).save(run)
            history = [
                {
                    "epoch": e,
                    "train_loss": 2 / e,
                    "train_acc": acc * e / 4,
                    "val_loss": 2.2 / e,
                    "val_acc": acc * e / 4,
                    "lr": 1e-3,
                    "epoch_time_s": 5.0 + index,
                }
                for e in range(1, 5)
            ]
            run.write_history(history)
            run.write_train(
                {
                    "model": key,
                    "seed": seed,
                    "architecture": config.models[key].name,
                    "test_acc": float(right.float().mean()),
                    "best_epoch": 4,
                    "best_val_acc": acc,
                    "epochs_run": 4,
                    "train_time_s": 20.0 + 4 * index,
                    "time_per_epoch_s": 5.0 + index,
                    "run_dir": str(run.path),
                    "validation": "held-out",
                    "train_images": 450,
                    "val_images": 50,
                    "test_images": len(labels),
                    "host": "machine",
                    "started_at": 100.0 * (seed_index if side_by_side else index * len(seeds) + seed_index),
                    "finished_at": 100.0 * (seed_index if side_by_side else index * len(seeds) + seed_index) + 90,
                    "cpu_threads": 1,
                }
            )
        if explain:
            for seed in seeds:
                _fake_explanation(study.explanation("gradcam", seed), list(accuracy), rng)
    return study.path


@functools.cache
def _heatmap_figure(models: tuple[str, ...], overlay: bool) -> bytes:
    """A grid of random heatmaps as the explain stage draws them (drawn once per set of models: it takes seconds)."""
    rng = np.random.default_rng(0)
    images, truths = rng.random((8, 16, 16, 3)), [f"class{i}" for i in range(8)]
    columns = [ModelColumn(model, rng.random((8, 16, 16)), truths) for model in models]
    with tempfile.TemporaryDirectory() as folder:
        write_png(heatmap_grid(images, truths, columns, overlay), Path(folder) / "grid.png")
        return (Path(folder) / "grid.png").read_bytes()


def _fake_explanation(folder: ExplanationFolder, models: list[str], rng: np.random.Generator) -> None:
    folder.path.mkdir(parents=True, exist_ok=True)
    for name, overlay in (("overlay.png", True), ("heatmaps.png", False)):
        (folder.path / name).write_bytes(_heatmap_figure(tuple(models), overlay))
    rows = [
        {
            "model": key,
            "test_index": i,
            "class": f"class{i % 10}",
            "top10_share": 0.2 + 0.1 * k + 0.01 * i,
            "deletion_auc": 0.3 - 0.05 * k,
            "pointing_hit": float(i % 2),
            "pointing_random": 0.3,
        }
        for k, key in enumerate(models)
        for i in range(12)
    ]
    means = {
        key: {"top10_share": 0.25 + 0.1 * k, "deletion_auc": 0.3 - 0.05 * k, "pointing_hit": 0.5, "pointing_random": 0.3}
        for k, key in enumerate(models)
    }
    folder.write_rows(rows, [])
    folder.write_summary(
        ExplanationSummary(
            options={},
            images=12,
            per_model=means,
            per_class={key: {f"class{c}": means[key] for c in range(10)} for key in models},
            agreement={"vit vs swin": {"rank_corr": 0.2, "top20_iou": 0.3}},
            sanity={},
            skipped={},
        )
    )


def findings_of(markdown: str) -> list[str]:
    section = markdown.split("## Findings")[1].split("## ")[0]
    return [line[2:] for line in section.strip().splitlines()]


def test_report_has_every_section_and_its_findings_change_with_the_outcome(tmp_path: Path) -> None:
    vit_wins = make_fake_study(tmp_path / "a", {"vit": 0.95, "swin": 0.6}, seeds=(0, 1, 2))
    swin_wins = make_fake_study(tmp_path / "b", {"vit": 0.6, "swin": 0.95}, seeds=(0, 1, 2))
    markdowns = []
    for study_dir in (vit_wins, swin_wins):
        html_path, markdown_path = report_study(study_dir)
        markdown = markdown_path.read_text()
        assert all(section in markdown for section in SECTIONS), markdown
        for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
            assert (study_dir / link).is_file(), link
        sources = ImageSources()
        sources.feed(html_path.read_text())
        assert len(sources.sources) == 5 and all(src.startswith("data:image/png;base64,") for src in sources.sources)
        markdowns.append(markdown)
        assert "report" in json.loads((study_dir / "stages.json").read_text())
    # The fake study's models differ in augmentation: the caveat comes first, then the primary comparison.
    for markdown, winner, loser in zip(markdowns, ("vit", "swin"), ("swin", "vit"), strict=True):
        caveat, primary = findings_of(markdown)[:2]
        assert caveat.startswith("vit and swin were not trained alike (augment.hflip True vs False)")
        assert primary.startswith(f"Test accuracy: {winner} is more accurate than {loser} across 3 seeds (model plus recipe)")
    # The paired section states the findings' own decision, at the same level.
    paired = markdowns[0].split("## Paired comparison")[1].split("\n## ")[0]
    assert "95 % interval" in paired and ": a difference, as in the findings." in paired


def results_table(markdown: str) -> dict[str, list[float]]:
    """Per model, the per-seed test accuracies of the report's Results table."""
    lines = markdown.split("## Results")[1].split("\n\n")[1].splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    columns = [i for i, name in enumerate(header) if name.startswith("test accuracy, seed")]
    table = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        table[cells[0]] = [float(cells[i].removesuffix(" %")) for i in columns]
    return table


@pytest.mark.parametrize(
    "accuracy",
    [
        {"vit": [0.89, 0.90, 0.90], "swin": [0.96, 0.77, 0.80]},  # the seeds disagree
        {"vit": [0.95, 0.94, 0.96], "swin": [0.60, 0.62, 0.61]},  # a consistent large difference
        {"vit": [0.80, 0.80, 0.80], "swin": [0.80, 0.80, 0.80]},  # no difference
    ],
)
def test_no_finding_contradicts_the_per_seed_table(tmp_path: Path, accuracy: dict[str, list[float]]) -> None:
    markdown = report_study(make_fake_study(tmp_path, accuracy, seeds=(0, 1, 2)))[1].read_text()
    table = results_table(markdown)
    finding = next(line for line in findings_of(markdown) if line.startswith("Test accuracy"))
    means = re.search(r": vit ([\d.]+) %, swin ([\d.]+) % \(mean over 3 seeds\)", finding)
    assert means, finding
    assert float(means[1]) == pytest.approx(np.mean(table["vit"]), abs=0.011)
    assert float(means[2]) == pytest.approx(np.mean(table["swin"]), abs=0.011)
    if "vit is more accurate than swin" in finding:
        assert all(v > s for v, s in zip(table["vit"], table["swin"], strict=True))
    elif "swin is more accurate than vit" in finding:
        assert all(s > v for v, s in zip(table["vit"], table["swin"], strict=True))
    if won := re.search(r"vit was higher on seeds? ([\d, ]+), swin on seeds? ([\d, ]+)", finding):
        for seed in map(int, won[1].split(", ")):
            assert table["vit"][seed] > table["swin"][seed]
        for seed in map(int, won[2].split(", ")):
            assert table["swin"][seed] > table["vit"][seed]
    if accuracy["vit"][1] < accuracy["swin"][0]:  # the disagreeing seeds: no architecture-level claim
        assert "not shown to differ" in finding and "includes 0" in finding and "was higher on" in finding


class ImageSources(HTMLParser):
    """Every src and href in an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.sources += [value for name, value in attrs if name == "src" and value]
        self.links += [value for name, value in attrs if name == "href" and value]


def test_report_without_explanations_says_how_to_add_them(tmp_path: Path) -> None:
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.8}, explain=False)
    markdown = report_study(study_dir)[1].read_text()
    assert "No explanations yet: run 'vitswin explain'" in markdown
    # One seed: the seed caveat, the recipe caveat (vit flips, swin does not), accuracy, training and inference
    # speed, calibration as numbers, size, the correction.
    assert len(findings_of(markdown)) == 8, findings_of(markdown)
    assert "trained while other runs" not in markdown and markdown.count("| alone |") == 2  # one at a time


def test_report_says_which_runs_shared_the_machine_while_they_trained(tmp_path: Path) -> None:
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.8}, explain=False, seeds=(0, 1), side_by_side=True)
    # swin seed 1 trained after the others, so vit seed 1 trained alone too (the issue: a run that trained alone
    # recorded runs_at_once 2 all the same).
    record = json.loads((study_dir / "swin" / "seed-1" / "train.json").read_text())
    write_json({**record, "started_at": 1000.0, "finished_at": 1090.0}, study_dir / "swin" / "seed-1" / "train.json")
    markdown = report_study(study_dir)[1].read_text()
    assert "2 of the 4 runs trained while other runs of the study trained on the same machine" in markdown
    assert "they say nothing about the models' speeds" in markdown
    assert markdown.count("| beside 1 other run at a time |") == 2 and markdown.count("| alone |") == 2
    speeds = [line for line in findings_of(markdown) if "speed" in line]
    assert speeds and all("timing rounds" in line for line in speeds)


def test_report_refuses_incomplete_studies(tmp_path: Path) -> None:
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.8})
    (study_dir / "swin" / "seed-0" / "history.csv").unlink()
    with pytest.raises(VitswinError, match=r"run folder .*swin/seed-0 lacks history.csv; finish the study"):
        report_study(study_dir)
    with pytest.raises(VitswinError, match="is not a study folder"):
        report_study(tmp_path / "nowhere")


def test_replicate_studies_join_as_more_seeds(tmp_path: Path) -> None:
    main = make_fake_study(tmp_path / "a", {"vit": 0.9, "swin": 0.8}, seeds=(0, 1))
    other = make_fake_study(tmp_path / "b", {"vit": 0.7, "swin": 0.8}, seeds=(2,))
    markdown = report_study(main, (other,))[1].read_text()
    accuracies = [
        json.loads((folder / "vit" / f"seed-{seed}" / "train.json").read_text())["test_acc"]
        for folder, seed in ((main, 0), (main, 1), (other, 2))
    ]
    assert results_table(markdown)["vit"] == pytest.approx([100 * value for value in accuracies], abs=0.006)
    assert f"| {100 * np.mean(accuracies):.2f} % | {100 * np.std(accuracies, ddof=1):.2f} points |" in markdown
    with pytest.raises(VitswinError, match="is not the same study as .* with other seeds"):
        report_study(main, (main,))
    with pytest.raises(VitswinError, match=r"repeats seed\(s\) 0 already in the report"):
        report_study(main, (make_fake_study(tmp_path / "c", {"vit": 0.7, "swin": 0.8}, seeds=(0,)),))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (./setup.sh --dev installs Debian's chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    html_path, _ = report_study(make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.8}))
    # A copy that reports, once loaded, how many images the browser could decode.
    probe = html_path.with_name("probe.html")
    probe.write_text(
        html_path.read_text().replace(
            "</body>",
            (
                "<script>window.addEventListener('load', () => { const all = [...document.images]; "
                "const page = document.body.clientWidth; document.title = "
                "'IMAGES ' + all.length + ' LOADED ' + all.filter(i => i.complete && i.naturalWidth > 0).length + "
                "' NARROWEST ' + Math.min(...all.map(i => i.getBoundingClientRect().width / page)).toFixed(2) + "
                "' CONTENTS ' + document.querySelectorAll('nav.contents a').length; });"
                "</script></body>"
            ),
        )
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<title>IMAGES 5 LOADED 5 NARROWEST ([0-9.]+) CONTENTS (\d+)</title>", dom.stdout)
    assert found, dom.stdout[:500] + dom.stderr[-2000:]
    narrowest, sections = float(found.group(1)), int(found.group(2))
    assert narrowest >= 0.5, f"a figure takes {narrowest:.0%} of the page's width"  # every figure uses the page
    assert sections == len(re.findall(r"^## ", html_path.with_suffix(".md").read_text(), flags=re.MULTILINE)) > 5
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,2400", f"--screenshot={screenshot}", html_path.as_uri()],
        capture_output=True,
        timeout=120,
    )
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (2400, 1200) and pixels.std() > 10  # not a blank page


def test_a_rebuilt_report_is_the_same_file_for_file(tmp_path: Path) -> None:
    """The report measures nothing while it is built (costs come from each run's cost.json, speeds from the study's
    speed.json), so building it again from the same folders gives identical files."""
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.8})
    written = [study_dir / "report.html", study_dir / "report.md"]

    def contents() -> dict[Path, bytes]:
        return {path: path.read_bytes() for path in [*written, *sorted((study_dir / "report_files").iterdir())]}

    report_study(study_dir)
    first = contents()
    costs = {key: (study_dir / key / "seed-0" / "cost.json").read_text() for key in ("vit", "swin")}
    speed = (study_dir / "speed.json").read_text()
    report_study(study_dir)
    assert contents() == first and len(first) == 6
    assert {key: (study_dir / key / "seed-0" / "cost.json").read_text() for key in ("vit", "swin")} == costs  # not re-measured
    assert (study_dir / "speed.json").read_text() == speed


def test_the_smoothed_loss_floor_is_the_best_reachable_cross_entropy() -> None:
    target = torch.full((1, 10), 0.1 / 10)
    target[0, 3] += 0.9
    best = torch.nn.functional.cross_entropy(target.log(), torch.tensor([3]), label_smoothing=0.1)
    assert smoothed_loss_floor(0.1, 10) == pytest.approx(float(best), abs=1e-6) == pytest.approx(0.50, abs=0.005)
    assert smoothed_loss_floor(0.0, 10) == 0.0


def test_the_loss_figure_says_which_loss_is_smoothed() -> None:
    history = [{"epoch": e, "train_loss": 0.6, "train_acc": 0.9, "val_loss": 0.3, "val_acc": 0.9} for e in (1, 2)]
    figure = training_curves(
        {"vit": [history, history], "swin": [history]}, {"vit": [1, 2], "swin": [2]}, {"vit": 0.0, "swin": 0.1}, 10
    )
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == [
        "vit train (2 seeds)",
        "vit val (no smoothing)",
        "swin train (label smoothing 0.1)",
        "swin val (no smoothing)",
        "swin train floor 0.50",
    ]
    assert len(figure.axes[0].lines) == 2 * 2 + 2 + 1  # a line per seed, once labelled; the floor


def test_the_recipe_table_shows_every_training_difference(tmp_path: Path) -> None:
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.8})
    facts = {
        "vit": {"head": "linear 768 -> 10", "drop_path_rate": 0.0, "pretrained_mean": [0.5] * 3, "pretrained_std": [0.5] * 3},
        "swin": {"head": "dropout 0.2, then linear 1024 -> 10", "drop_path_rate": 0.1,
                 "pretrained_mean": [0.485, 0.456, 0.406], "pretrained_std": [0.229, 0.224, 0.225]},
    }  # fmt: skip
    for key, network in facts.items():
        record = json.loads((study_dir / key / "seed-0" / "train.json").read_text())
        write_json({**record, "network": network, "validation": "test"}, study_dir / key / "seed-0" / "train.json")
    config = yaml.safe_load((study_dir / "swin" / "seed-0" / "config.yaml").read_text())
    config["models"]["swin"]["pretrained"] = "hub"
    (study_dir / "swin" / "seed-0" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    study_config = yaml.safe_load((study_dir / "config.yaml").read_text())
    study_config["models"]["swin"]["pretrained"] = "hub"
    (study_dir / "config.yaml").write_text(yaml.safe_dump(study_config, sort_keys=False))

    markdown = report_study(study_dir)[1].read_text()
    assert "| head | linear 768 -> 10 | dropout 0.2, then linear 1024 -> 10 |" in markdown
    assert "| stochastic depth (highest drop-path rate) | 0 | 0.1 |" in markdown
    cifar = "0.4914, 0.4822, 0.4465 / 0.247, 0.2435, 0.2616"
    assert f"| input normalisation (mean / std) | {cifar} | {cifar} |" in markdown
    assert (
        "| pretraining normalisation (mean / std) | - (random initialisation) | 0.485, 0.456, 0.406 / 0.229, 0.224, 0.225 |"
        in markdown
    )
    assert findings_of(markdown)[0].startswith("The test set also selected each model's checkpoint")
    assert "optimistic" in findings_of(markdown)[0]


def test_three_models_are_compared_pair_by_pair_with_holm(tmp_path: Path) -> None:
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.6, "cnn": 0.88}, seeds=(0, 1, 2))
    markdown = report_study(study_dir)[1].read_text()
    for pair in ("vit vs swin", "vit vs cnn", "swin vs cnn"):
        assert f"### {pair}" in markdown
    assert markdown.count("Holm-adjusted over the 3 accuracy comparisons") == 3  # the paired section, over seeds
    assert len(re.findall(r"\(Holm [\d.e-]+\)", markdown)) == 9  # McNemar per seed and pair
    accuracy = [line for line in findings_of(markdown) if line.startswith("Test accuracy")]
    assert len(accuracy) == 3 and all("Holm-adjusted" in line for line in accuracy)
    assert any(line.startswith("Test accuracy: vit is more accurate than swin") for line in accuracy)
    attention = [line for line in findings_of(markdown) if line.startswith("Share of gradcam")]
    assert len(attention) == 3
    assert "with Holm's correction over its 3 comparisons" in findings_of(markdown)[-1]


def test_reliability_panels_wrap_for_many_models() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    probabilities = rng.dirichlet(np.ones(3), 60)
    figure = reliability_diagrams({f"model{i}": calibration(probabilities, labels) for i in range(5)})
    visible = [axis for axis in figure.axes if axis.axison]
    assert len(figure.axes) == 6 and len(visible) == 5  # 2 rows of 3, the last place left empty
    assert figure.get_size_inches()[0] == pytest.approx(3 * 4.0)


def test_time_per_epoch_is_the_median_epoch_after_the_first() -> None:
    # The ViT run: start-up and other work on the machine slowed the first epochs.
    assert typical_epoch_time([31.9, 13.4, 21.5, 17.9, 9.7, 8.8, 8.8, 9.1]) == pytest.approx(9.7)
    assert typical_epoch_time([4.0]) == 4.0 and typical_epoch_time([9.0, 2.0, 3.0]) == pytest.approx(2.5)


def test_explanations_of_other_images_are_not_compared_image_by_image(tmp_path: Path) -> None:
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.6}, seeds=(0, 1, 2))
    folder = ExplanationFolder(study_dir / "explain" / "gradcam" / "seed-1")
    rows = [row for model_rows in folder.read_rows().values() for row in model_rows]
    shifted = [{**row, "test_index": int(row["test_index"]) + 100} for row in rows]  # as many images, other ones
    folder.write_rows(shifted, [])
    markdown = report_study(study_dir)[1].read_text()
    found = findings_of(markdown)
    assert any(
        line.startswith("The gradcam measurements are not compared: the explanations of seed(s) 0, 1, 2") for line in found
    )
    assert not any("gradcam mass" in line or "pointing game" in line for line in found)


def test_the_cost_table_shows_the_timing_rounds_spread(tmp_path: Path) -> None:
    study_dir = make_fake_study(tmp_path, {"vit": 0.9, "swin": 0.8}, explain=False)
    markdown = report_study(study_dir)[1].read_text()
    speed = json.loads((study_dir / "speed.json").read_text())
    rounds = speed["models"]["vit"]["inference_images_per_s"]
    assert f"{np.median(rounds):.0f} ({min(rounds):.0f} to {max(rounds):.0f})" in markdown
    assert f"in {speed['rounds']} rounds taking turns (speed.json)" in markdown


def test_the_seed_configs_published_claims_open_the_report_with_their_verdicts(tmp_path: Path) -> None:
    claims = yaml.safe_load((CONFIGS / "seed-cifar10.yaml").read_text())["hypotheses"]
    study_dir = make_fake_study(tmp_path, {"vit": 0.6, "swin": 0.95}, seeds=(0, 1, 2), hypotheses=claims)
    markdown = report_study(study_dir)[1].read_text()
    assert [line for line in markdown.splitlines() if line.startswith("## ")][:2] == ["## Hypotheses", "## Findings"]
    rows = markdown.split("## Hypotheses")[1].split("## Findings")[0].strip().splitlines()[-len(claims) :]
    verdicts = {claim["claim"]: row for claim, row in zip(claims, rows, strict=True)}
    assert all(claim["claim"] in row for claim, row in zip(claims, rows, strict=True))
    assert "| supported |" in verdicts["Swin is more accurate (98.59 % against 96.14 %)"]
    assert "has no recipe axis" in verdicts["Swin's accuracy gain is due to its architecture"]  # no swap was trained
    assert "| not decided |" in verdicts["ViT learns faster (best at epoch 3, Swin at 26)"]  # every run's best was epoch 4
