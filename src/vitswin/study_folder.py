"""The study folder: the one module that knows where a study's artifacts live, what they are called, when a
run is finished, and how each artifact is read and written. Every stage goes through it, so any stage can
re-run alone on the files the others left.

    <out_dir>/<study>/                  StudyFolder
        config.yaml                     the resolved study config (its seeds: every seed trained into the folder)
        summary.json, summary.csv       every run's headline numbers, one row per model and seed
        stages.json                     which stages completed, and when
        speed.json                      every network's training and inference speed, timed in interleaved rounds
        .lock                           held while a process updates the files above
        <model>/seed-<k>/               RunFolder, one per model and training seed
            config.yaml                 the study config narrowed to this model and this seed
            .lock                       held by the process training this run
            history.csv                 one row per epoch
            checkpoints/best.ckpt, checkpoints/last.ckpt
            best.safetensors            the selected weights
            fit.json                    written last by training: the fit is finished
            train.json                  the run's summary, sizes, hardware and software
            metrics.json, predictions.npz   the test set, evaluated once
            cost.json                   parameters and FLOPs (the cost stage)
            logs/                       the configured Lightning logger's files (TensorBoard events by default)
        explain/<method>/seed-<k>/      ExplanationFolder: every model of one seed, on the same test images
            overlay.png, heatmaps.png, maps.npz, attention.csv, agreement.csv, attention.json
        bench/<benchmark>.json, .csv    what 'vitswin bench' measured
        report.html, report.md, report_files/
        vitswin-error.log               the traceback of the last unexpected error of a command on this study

Every (model, seed) run is independent: separate processes (one per run, on as many machines) can train into
one study folder at once; each run folder is locked by the process training it, and the study-level files are
updated under the study's lock.
"""

import csv
import json
import os
import tempfile
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vitswin.artifacts import atomic_write_text, remove_stale_temporaries, write_csv, write_json, write_npz, write_png
from vitswin.config import NO_DESIGN, ExplainConfig, StudyConfig, load_config, to_yaml
from vitswin.errors import VitswinError
from vitswin.locking import locked

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CONFIG = "config.yaml"
LOCK = ".lock"
ERROR_LOG = "vitswin-error.log"
SEED_PREFIX = "seed-"


def same_study(a: StudyConfig, b: StudyConfig) -> bool:
    """Whether two configs describe the same study, wherever their files are kept: the output folder (however it
    was spelled: runs, runs/, the absolute path), the decoded-image cache and the logger are not part of what the
    results are, nor how many runs train at once, how the study explains its models (explanations are files of
    their own), which comparison its report puts first or which hypotheses it judges. Like its seeds, the values of
    its design may grow."""
    return _what(a) == _what(b)


def _what(config: StudyConfig) -> StudyConfig:
    return config.model_copy(
        update={
            "out_dir": "",
            "logger": "none",
            "jobs": 1,
            "explain": ExplainConfig(),
            "primary": "accuracy",
            **NO_DESIGN,
            "hypotheses": (),
            "data": config.data.model_copy(update={"cache_dir": ""}),
        }
    )


def write_error_log(text: str, folder: Path | None) -> Path:
    """Keep the details of an unexpected error in `folder` (the study or run folder the command worked on), or in
    a temporary file where there is none or it cannot be written; returns the log's path."""
    if folder is not None and folder.is_dir():
        try:
            atomic_write_text(text, folder / ERROR_LOG)
            return folder / ERROR_LOG
        except OSError:
            pass
    handle, name = tempfile.mkstemp(prefix="vitswin-error-", suffix=".log")
    with os.fdopen(handle, "w") as log_file:
        log_file.write(text)
    return Path(name)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _seed_of(path: Path) -> int:
    """The seed a run or explanation folder is for, from its name seed-<k>."""
    name = path.name
    if not (name.startswith(SEED_PREFIX) and name.removeprefix(SEED_PREFIX).isdigit()):
        raise VitswinError(
            f"{path} is not a run folder: run folders are <study>/<model>/{SEED_PREFIX}<k>, e.g. runs/default/vit/seed-0."
        )
    return int(name.removeprefix(SEED_PREFIX))


class _SeedFolder:
    """A folder of one seed within a group (a model's runs, a method's explanations): `<group>/seed-<k>/`."""

    STAGE = ""  # the kind of stage its completion is recorded as in stages.json

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def seed(self) -> int:
        """The training seed (from the folder's name, seed-<k>)."""
        return _seed_of(self.path)

    @property
    def stage(self) -> str:
        """The stage this folder's completion is recorded as, e.g. "train/vit/seed-0"."""
        return f"{self.STAGE}/{self.path.parent.name}/{self.path.name}"


@dataclass(frozen=True)
class RunSummary:
    """One run's headline numbers: the first fields of its train.json, and its row of the study summary."""

    model: str
    seed: int
    architecture: str
    test_acc: float
    best_epoch: int
    best_val_acc: float
    epochs_run: int
    train_time_s: float
    time_per_epoch_s: float  # the median epoch after the first (start-up makes the first one slow)
    run_dir: str


@dataclass(frozen=True)
class Predictions:
    """A run's test-set class probabilities, in test-set order, with the labels they were scored against."""

    probabilities: np.ndarray  # (N, C)
    labels: np.ndarray  # (N,)
    class_names: list[str]

    @property
    def correct(self) -> np.ndarray:
        return self.probabilities.argmax(1) == self.labels


@dataclass(frozen=True)
class ExplanationSummary:
    """attention.json: one explanation's measures averaged per model, per model and class, and per model pair;
    the built-in sanity checks; the models it could not explain (and why); the options it was made with. Measures
    are keyed by their column names (vitswin.registry.MEASURES)."""

    options: dict[str, Any]
    images: int
    per_model: dict[str, dict[str, float]]  # model -> measure -> mean over the images
    per_class: dict[str, dict[str, dict[str, float]]]  # model -> class -> measure -> mean over its images
    agreement: dict[str, dict[str, float]]  # "a vs b" -> rank_corr / top20_iou -> mean over the images
    sanity: dict[str, dict[str, float]]  # model -> check -> value
    skipped: dict[str, str]  # model -> why it was not explained


@dataclass(frozen=True)
class NetworkSpeed:
    """One model's network timed by the cost stage: images/s per round."""

    network: str  # what the network is (name, input size, options): models with equal strings were timed once
    train_images_per_s: list[float]
    inference_images_per_s: list[float]


@dataclass(frozen=True)
class StudySpeed:
    """speed.json: every model's network timed by the cost stage in interleaved rounds, on one machine."""

    machine: dict[str, Any]  # cpu, gpu, device (the one timed on), threads
    batch: int  # images per timed training step and inference batch
    rounds: int
    models: dict[str, NetworkSpeed]  # model key -> its network's rounds


def _record(kind: type, raw: Any, path: Path) -> Any:
    """A typed record from its JSON, or one sentence when the file does not hold one."""
    try:
        return kind(**raw)
    except TypeError:
        raise VitswinError(
            f"{path} is not as vitswin writes it (its keys differ); delete it and run the stage that writes it again."
        ) from None


class RunFolder(_SeedFolder):
    """One model trained with one seed: `<study>/<model>/seed-<k>/`."""

    STAGE = "train"

    # What a finished run holds (the cost is a later stage of its own); what the report reads from a run; what the
    # cost stage needs (the architecture and its number of classes).
    FINISHED = ("config.yaml", "fit.json", "best.safetensors", "train.json", "metrics.json", "predictions.npz")
    REPORTED = ("config.yaml", "train.json", "history.csv", "metrics.json", "predictions.npz", "cost.json")
    EVALUATED = ("config.yaml", "metrics.json")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.config_file = self.path / CONFIG
        self.history_file = self.path / "history.csv"
        self.checkpoints = self.path / "checkpoints"
        self.best_checkpoint = self.checkpoints / "best.ckpt"
        self.last_checkpoint = self.checkpoints / "last.ckpt"
        self.weights_file = self.path / "best.safetensors"
        self.fit_file = self.path / "fit.json"  # written last by training: the fit is finished
        self.train_file = self.path / "train.json"
        self.metrics_file = self.path / "metrics.json"
        self.predictions_file = self.path / "predictions.npz"
        self.cost_file = self.path / "cost.json"
        self.logs = self.path / "logs"  # Lightning's logger (TensorBoard events, CSV, ...)

    @property
    def key(self) -> str:
        """The model's key in the study config (the parent folder's name)."""
        return self.path.parent.name

    @property
    def label(self) -> str:
        """How reports and logs name the run: model and seed."""
        return f"{self.key} seed {self.seed}"

    @property
    def study(self) -> "StudyFolder":
        """The study folder this run belongs to (<study>/<model>/seed-<k>)."""
        return StudyFolder(self.path.parent.parent)

    def __repr__(self) -> str:
        return f"RunFolder({self.path})"

    def claimed(self) -> AbstractContextManager[None]:
        """Hold the run folder for training: a second process asking for it gets one sentence naming the holder."""
        return locked(
            self.path / LOCK,
            busy=f"{self.path} is being trained by {{holder}}; wait for it to finish (a rerun then reuses the run), "
            f"or choose another --out.",
        )

    def last_holder(self) -> str:
        """The process that last claimed the run folder ("process <pid> on <host>"), even after it died; "" if none."""
        lock = self.path / LOCK
        return lock.read_text().strip() if lock.is_file() else ""

    def remove_stale_temporaries(self) -> int:
        """Delete partial files an interrupted run left in this folder; only while holding it (`claimed`)."""
        return remove_stale_temporaries(self.path) if self.path.is_dir() else 0

    def missing(self, names: tuple[str, ...] = FINISHED) -> list[str]:
        """Which of the artifacts `names` the folder lacks."""
        return [name for name in names if not (self.path / name).is_file()]

    def is_trained(self) -> bool:
        """Whether training finished: the selected weights are exported and the fit recorded."""
        return self.fit_file.is_file() and self.weights_file.is_file()

    def is_finished(self) -> bool:
        """Whether training and the test-set evaluation both finished."""
        return not self.missing()

    def check_config(self, config: StudyConfig) -> None:
        """Refuse a folder started with another config: its results must not be mixed with this one's."""
        if self.config_file.is_file() and not same_study(self.read_config(), config):
            raise VitswinError(
                f"{self.path} holds a run with a different config; choose another --out or study name, "
                f"or delete that folder to start it again."
            )

    def read_config(self) -> StudyConfig:
        return load_config(self.config_file)

    def write_config(self, config: StudyConfig) -> None:
        atomic_write_text(to_yaml(config), self.config_file)

    def trained_config(self) -> StudyConfig:
        """The config of a trained run folder; one sentence when the folder is not one."""
        if not self.config_file.is_file() or not self.weights_file.is_file():
            raise VitswinError(
                f"{self.path} is not a finished run folder (it needs config.yaml and best.safetensors); "
                f"train the model first with 'vitswin train'."
            )
        return self.read_config()

    def read_fit(self) -> dict:
        return _read_json(self.fit_file)

    def write_fit(self, record: dict) -> None:
        write_json(record, self.fit_file)

    def read_train(self) -> dict:
        return _read_json(self.train_file)

    def read_summary(self) -> RunSummary:
        saved = self.read_train()
        return RunSummary(**{field: saved[field] for field in RunSummary.__dataclass_fields__})

    def write_train(self, record: dict) -> None:
        write_json(record, self.train_file)

    def read_history(self) -> list[dict[str, float]]:
        return [{key: float(value) for key, value in row.items()} for row in _read_csv(self.history_file)]

    def write_history(self, rows: list[dict[str, float]]) -> None:
        write_csv(rows, self.history_file)

    def read_metrics(self) -> dict:
        return _read_json(self.metrics_file)

    def write_evaluation(self, metrics: dict, predictions: Predictions) -> None:
        """The test-set metrics and the per-image probabilities they were computed from."""
        write_json(metrics, self.metrics_file)
        write_npz(
            self.predictions_file,
            probabilities=predictions.probabilities,
            labels=predictions.labels,
            class_names=np.array(predictions.class_names),
        )

    def read_predictions(self) -> Predictions:
        if not self.predictions_file.is_file():
            raise VitswinError(f"{self.predictions_file} is missing; run 'vitswin evaluate {self.path}' first.")
        with np.load(self.predictions_file) as saved:
            return Predictions(saved["probabilities"], saved["labels"], [str(name) for name in saved["class_names"]])

    def read_cost(self) -> dict | None:
        return _read_json(self.cost_file) if self.cost_file.is_file() else None

    def write_cost(self, cost: dict) -> None:
        write_json(cost, self.cost_file)


def run_names(runs: list[RunFolder]) -> list[str]:
    """How tables and figures name runs shown side by side: the model keys, or keys with seeds when one model
    appears with several seeds, or with their study's folder name too when runs of several studies share both."""
    paths = [run.path.resolve() for run in runs]
    if len(set(paths)) < len(paths):
        twice = next(path for path in paths if paths.count(path) > 1)
        raise VitswinError(f"the run folder {twice} is given twice; pass each run once.")
    for name in (lambda run: run.key, lambda run: run.label, lambda run: f"{run.study.path.name}/{run.label}"):
        names = [name(run) for run in runs]
        if len(set(names)) == len(names):
            return names
    return [str(run.path) for run in runs]  # studies whose folders share a name too: the whole path tells them apart


class ExplanationFolder(_SeedFolder):
    """One explanation method's outputs for the runs of one seed: `<study>/explain/<method>/seed-<k>/`."""

    STAGE = "explain"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.overlay = self.path / "overlay.png"
        self.heatmaps = self.path / "heatmaps.png"
        self.maps_file = self.path / "maps.npz"
        self.rows_file = self.path / "attention.csv"
        self.agreement_file = self.path / "agreement.csv"
        self.summary_file = self.path / "attention.json"  # written last: the explanation is complete

    @property
    def method(self) -> str:
        return self.path.parent.name

    def is_complete(self) -> bool:
        return self.summary_file.is_file()

    def holds(self, runs: list[RunFolder], options: dict) -> bool:
        """Whether this explanation is complete, was made after every run's weights and with these options (then
        making it again would give the same)."""
        if not self.is_complete() or self.read_summary().options != options:
            return False
        made = self.summary_file.stat().st_mtime
        return all(made >= run.weights_file.stat().st_mtime for run in runs)

    def write_figure(self, figure: "Figure", overlay: bool, dpi: int) -> None:
        write_png(figure, self.overlay if overlay else self.heatmaps, dpi)

    def write_maps(self, **arrays: np.ndarray) -> None:
        write_npz(self.maps_file, **arrays)

    def write_rows(self, rows: list[dict], agreement_rows: list[dict]) -> None:
        write_csv(rows, self.rows_file)
        if agreement_rows:
            write_csv(agreement_rows, self.agreement_file)

    def write_summary(self, summary: ExplanationSummary) -> None:
        write_json(asdict(summary), self.summary_file)

    def read_summary(self) -> ExplanationSummary:
        return _record(ExplanationSummary, _read_json(self.summary_file), self.summary_file)

    def read_rows(self) -> dict[str, list[dict[str, str]]]:
        """The per-image rows of attention.csv, grouped by model."""
        rows: dict[str, list[dict[str, str]]] = {}
        for row in _read_csv(self.rows_file):
            rows.setdefault(row["model"], []).append(row)
        return rows


def bench_folder(root: Path) -> Path:
    """Where benchmarks write under `root` (a study folder, or the --out of 'vitswin bench scaling')."""
    return Path(root) / "bench"


class StudyFolder:
    """A whole study: `<out_dir>/<study>/`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config_file = self.path / CONFIG
        self.summary_json = self.path / "summary.json"
        self.summary_csv = self.path / "summary.csv"
        self.stages_file = self.path / "stages.json"  # which stages completed, and when
        self.speed_file = self.path / "speed.json"  # the cost stage's interleaved timing of every network
        self.report_html = self.path / "report.html"
        self.report_markdown = self.path / "report.md"
        self.findings_file = self.path / "findings.json"  # the report's findings as records, for code and notebooks
        self.report_files = self.path / "report_files"  # the Markdown report's figures
        self.bench = bench_folder(self.path)

    @classmethod
    def of(cls, config: StudyConfig) -> "StudyFolder":
        """The folder a study config writes to."""
        return cls(config.study_dir)

    def __repr__(self) -> str:
        return f"StudyFolder({self.path})"

    def run(self, key: str, seed: int) -> RunFolder:
        return RunFolder(self.path / key / f"{SEED_PREFIX}{seed}")

    def runs(self, config: StudyConfig, seed: int | None = None) -> list[RunFolder]:
        """The run folders of every model and seed of `config` (of `seed` alone, when given), model by model
        in config order."""
        seeds = config.seeds if seed is None else (seed,)
        return [self.run(key, each) for key in config.cells for each in seeds]

    def finished_runs(self) -> list[RunFolder]:
        """Every finished run folder in the study, whatever config trained it."""
        runs = (RunFolder(path.parent) for path in sorted(self.path.glob(f"*/{SEED_PREFIX}*/train.json")))
        return [run for run in runs if run.is_finished()]

    def locked(self) -> AbstractContextManager[None]:
        """Hold the study's lock while updating its shared files (config, summary, stages): other processes
        training runs of the same study wait their turn."""
        return locked(self.path / LOCK)

    def read_config(self) -> StudyConfig:
        if not self.config_file.is_file():
            raise VitswinError(
                f"{self.path} is not a study folder (it has no config.yaml); pass the folder 'vitswin study' wrote, "
                f"e.g. runs/default."
            )
        return load_config(self.config_file)

    def register(self, config: StudyConfig) -> StudyConfig:
        """Record that `config`'s runs are trained into this folder and return the study config it now holds:
        the same study with every seed trained into it so far (other processes may add theirs). Refuses a
        folder that holds a different study before anything is written, not even the lock file."""
        self._held_config_if_same(config)  # config.yaml is written atomically: whole without the lock
        with self.locked():
            held = self._held_config_if_same(config)  # again: another process may have registered meanwhile
            if held is not None:
                config = self._joined(held, config)
            atomic_write_text(to_yaml(config), self.config_file)
        return config

    def _joined(self, held: StudyConfig, config: StudyConfig) -> StudyConfig:
        """The study with every seed and every run of the design trained into it so far: a design may add runs (a
        recipe axis where there was none) or train some of them, but not change one or drop one it never had."""
        seeds = (*held.seeds, *(s for s in config.seeds if s not in held.seeds))
        held_cells, cells = held.cells, config.cells
        if changed := [key for key in held_cells.keys() & cells.keys() if held_cells[key] != cells[key]]:
            raise VitswinError(
                f"{self.path} holds the run {sorted(changed)[0]} trained differently (another recipe, size or weights "
                f"under the same name); give the changed recipe a new name, or choose another --out."
            )
        if held_cells.keys() <= cells.keys():
            design = config
        elif cells.keys() <= held_cells.keys():
            design = held
        else:
            lacking = ", ".join(sorted(held_cells.keys() - cells.keys()))
            raise VitswinError(
                f"{self.path} holds a study whose design has runs this one lacks ({lacking}) and this one has runs it "
                f"lacks; make the config's design include the study's, or choose another --out."
            )
        # The hypotheses are the report's analysis: the latest config's stand.
        update = {"seeds": seeds, "hypotheses": config.hypotheses, **{key: getattr(design, key) for key in NO_DESIGN}}
        return held.model_copy(update=update)

    def _held_config_if_same(self, config: StudyConfig) -> StudyConfig | None:
        """The config this folder holds (None when it holds none yet); refuses one that is another study."""
        if not self.config_file.is_file():
            return None
        held = self.read_config()
        if not same_study(held.model_copy(update={"seeds": config.seeds}), config):
            raise VitswinError(
                f"{self.path} holds a study with a different config; choose another --out or study name, "
                f"or delete that folder to start it again."
            )
        return held

    def update_summary(self) -> list[dict]:
        """Rewrite summary.json and summary.csv from every finished run of the study (one row per model and seed,
        whichever process trained it); return the rows."""
        with self.locked():
            config = self.read_config()
            finished = [run for run in self.runs(config) if run.is_finished()]
            rows = [asdict(run.read_summary()) for run in finished]
            validation = finished[0].read_train().get("validation") if finished else None
            summary = {"study": config.name, "seeds": list(config.seeds), "validation": validation, "runs": rows}
            write_json(summary, self.summary_json)
            write_csv(rows, self.summary_csv)
        return rows

    def record_stage(self, stage: str) -> None:
        """Note in stages.json that `stage` (e.g. "train/vit/seed-0", "explain/gradcam", "report") completed."""
        with self.locked():
            stages = _read_json(self.stages_file) if self.stages_file.is_file() else {}
            stages[stage] = datetime.now(UTC).isoformat(timespec="seconds")
            write_json(stages, self.stages_file)

    def explanation(self, method: str, seed: int) -> ExplanationFolder:
        return ExplanationFolder(self.path / "explain" / method / f"{SEED_PREFIX}{seed}")

    def explanations(self) -> list[ExplanationFolder]:
        """Every complete explanation of the study, by method name, then seed."""
        found = [ExplanationFolder(path.parent) for path in self.path.glob(f"explain/*/{SEED_PREFIX}*/attention.json")]
        return sorted(found, key=lambda folder: (folder.method, folder.seed))

    def read_speed(self) -> StudySpeed | None:
        if not self.speed_file.is_file():
            return None
        raw = _read_json(self.speed_file)
        models = raw.get("models", {}) if isinstance(raw, dict) else {}
        raw = {**raw, "models": {key: _record(NetworkSpeed, value, self.speed_file) for key, value in models.items()}}
        return _record(StudySpeed, raw, self.speed_file)

    def write_speed(self, speed: StudySpeed) -> None:
        write_json(asdict(speed), self.speed_file)

    def write_findings(self, records: list[dict[str, object]]) -> None:
        write_json(records, self.findings_file)

    def read_findings(self) -> list[dict[str, object]]:
        return list(_read_json(self.findings_file))

    def read_bench(self, name: str) -> dict | None:
        """What 'vitswin bench <name>' wrote for this study, or None when it has not run."""
        path = self.bench / f"{name}.json"
        return _read_json(path) if path.is_file() else None


def write_bench(folder: Path, name: str, rows: list[dict], extra: dict | None = None) -> Path:
    """One benchmark's rows as `<folder>/<name>.json` (with `extra` beside them) and `.csv`; returns the JSON path."""
    path = folder / f"{name}.json"
    write_json({"rows": rows, **(extra or {})}, path)
    write_csv(rows, folder / f"{name}.csv")
    return path
