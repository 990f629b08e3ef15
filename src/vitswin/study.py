"""A study, end to end: every model of a config trained and evaluated on the same data, one after another,
then measured (cost), explained (Grad-CAM) and compared in a report.

`run_study` is the whole pipeline (what `vitswin study` runs); `train_models` is its training stage alone.
Every stage reads and writes its files through `vitswin.study_folder`, so each can also run on its own.
"""

import errno
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vitswin.config import NO_DESIGN, ModelConfig, StudyConfig
from vitswin.cost import measure_costs
from vitswin.data import DataSplits, load_data
from vitswin.environment import describe_environment
from vitswin.errors import VitswinError
from vitswin.evaluation import predict
from vitswin.explain.runner import explain_runs
from vitswin.memory import check_memory
from vitswin.model.architecture import final_reduction, network_facts, parameter_count
from vitswin.model.classifier import build_classifier, check_optimizer, load_weights
from vitswin.model.network import build_network, check_model_name
from vitswin.report.build import build_report
from vitswin.seeding import seed_training
from vitswin.study_folder import RunFolder, RunSummary, StudyFolder
from vitswin.training.distributed import is_main_process, process_group
from vitswin.training.fit import FitResult, fit
from vitswin.training.jobs import check_reproducible, cpu_threads, job_count, run_threads, train_side_by_side
from vitswin.training.loggers import FINAL_NUMBERS, check_logger, log_final, log_recipe, run_logger
from vitswin.training.trainer import on_cpu, world_size

log = logging.getLogger(__name__)


def run_config(config: StudyConfig, key: str, seed: int) -> StudyConfig:
    """The study config narrowed to run `key` (a model, or a cell of the design: a model with one recipe) and
    training seed `seed`: what a run folder records."""
    cells = config.cells
    if key not in cells:
        raise VitswinError(f"the config has no model '{key}'; choose one of: {', '.join(cells)}.")
    return config.model_copy(update={"models": {key: cells[key]}, **NO_DESIGN, "hypotheses": (), "seeds": (seed,)})


def train_model(config: StudyConfig, key: str, seed: int, splits: DataSplits) -> RunSummary:
    """Train model `key` of the study with training seed `seed`, select its best epoch on validation, evaluate it
    once on the test set. A finished run is reused; an interrupted one resumes from its last checkpoint."""
    this_run = run_config(config, key, seed)
    study = StudyFolder.of(config)
    run = study.run(key, seed)
    run.check_config(this_run)
    main = is_main_process()
    with run.claimed() if main else nullcontext():  # one process trains a run; in DDP the main one holds it
        if run.is_finished():
            log.info("=== %s is already trained and evaluated in %s; reusing it ===", run.label, run.path)
            return run.read_summary()
        if main:
            if removed := run.remove_stale_temporaries():
                log.info("Removed %d partial files left by an interrupted run", removed)
            run.write_config(this_run)
        log.info("=== Training %s (%s), seed %d ===", key, this_run.models[key].name, seed)
        summary = _train_and_test(this_run, key, seed, splits, run, main)
    if main:
        study.record_stage(run.stage)
    return summary


def _train_and_test(config: StudyConfig, key: str, seed: int, splits: DataSplits, run: RunFolder, main: bool) -> RunSummary:
    started = time.time()  # with the host, tells the report which runs shared a machine while they trained
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()  # this run's peak, not an earlier run's in the same process
    splits = splits.with_training_subset(config.models[key].train_images, config.data.seed)
    seed_training(seed)
    module = build_classifier(config, key, len(splits.class_names))
    hardware = config.hardware
    logger = run_logger(config.logger, run)
    if main:
        log_recipe(logger, config.models[key].recipe())
    result = fit(module, splits.train, splits.val, run, hardware, seed, logger=logger)
    load_weights(module, run)
    # Every process predicts its share of the test set; all of them get the whole set's predictions back.
    evaluation = predict(module, splits.test, hardware)
    if not main:
        return _summary(key, seed, config, result, evaluation.metrics()["accuracy"], run)
    summary = _summary(key, seed, config, result, evaluation.save(run)["accuracy"], run)
    final = (summary.test_acc, summary.best_val_acc, summary.best_epoch)
    log_final(logger, dict(zip(FINAL_NUMBERS, final, strict=True)), step=summary.epochs_run)
    run.write_train(
        {
            **asdict(summary),
            "validation": "test" if splits.val_is_test else "held-out",
            "train_images": len(splits.train),
            "val_images": len(splits.val),
            "test_images": len(splits.test),
            "skipped_images": splits.skipped_images,
            "data_stores": splits.stores,
            "processes": process_group()[1],
            "host": socket.gethostname(),
            "started_at": started,
            "finished_at": time.time(),
            "cpu_threads": torch.get_num_threads(),
            "peak_gpu_memory_mb": _peak_gpu_memory_mb(),
            "network": network_facts(module.network),
            # Which weights were validated, selected, tested and kept in best.safetensors.
            "weights_kept": "the moving average of the weights" if module.ema is not None else "the trained weights",
            "environment": describe_environment(),
        }
    )
    return summary


def _summary(key: str, seed: int, config: StudyConfig, result: FitResult, test_acc: float, run: RunFolder) -> RunSummary:
    return RunSummary(
        model=key,
        seed=seed,
        architecture=config.models[key].name,
        test_acc=test_acc,
        best_epoch=result.best_epoch,
        best_val_acc=result.best_val_acc,
        epochs_run=len(result.history),
        train_time_s=result.train_time_s,
        time_per_epoch_s=result.time_per_epoch_s,
        run_dir=str(run.path),
    )


def _peak_gpu_memory_mb() -> float | None:
    """Peak GPU memory PyTorch allocated in this process since the run started, or None on a CPU run."""
    if not torch.cuda.is_available() or torch.cuda.max_memory_allocated() == 0:
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def preflight(config: StudyConfig, keys: list[str]) -> None:
    """Fail before any data is read, any file written or any model trained: for the models `keys`, weights files
    (or hub weights) that cannot be read or do not fit and inputs too small for the model; unusable hardware
    settings, an unwritable output folder, too little disk space for the checkpoints."""
    needed = 0
    for key in keys:
        model = config.cells[key]
        check_model_name(model.name)
        check_optimizer(key, model.train.optimizer)
        # On the meta device: shapes only, no memory for the network; its configured weights are read (and
        # fetched into the hub cache, as training would) and checked against the shapes, then dropped.
        with torch.device("meta"):
            network = build_network(model, num_classes=1000)
            activations = _activations_per_image(key, model, network)
        if on_cpu(config.hardware):
            _check_step_memory(key, model, network, activations, config.data.image_size)
        needed += _checkpoint_bytes(network)
    check_logger(config.logger)
    world_size(config.hardware)  # hardware this machine or launcher cannot provide fails here
    study_dir = config.study_dir
    # The nearest folder that exists: a refused run must not leave even an empty study folder behind.
    existing = next(folder for folder in (study_dir, *study_dir.parents) if folder.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise VitswinError(f"cannot write to {study_dir} ({error.strerror}); choose a writable folder with --out.") from None
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise VitswinError(
            f"{study_dir} has {free / 2**20:.0f} MB free but the checkpoints need about "
            f"{needed / 2**20:.0f} MB; free some space or choose another folder with --out."
        )


def _activations_per_image(key: str, model: ModelConfig, network: torch.nn.Module) -> int:
    """Float values one training image keeps for the backward pass (at least: every layer's output), from one
    forward pass on the meta device; an input smaller than a patch or a downsampling step fails here, in the user's
    terms, instead of in the first training step."""
    size, kept = model.input_size, [0]

    def count(module: torch.nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and not isinstance(module, (torch.nn.Identity, torch.nn.Dropout)):
            kept[0] += output.numel()  # an identity's output is its input, already counted

    layers = [module for module in network.modules() if not any(module.children())]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    try:
        network(torch.zeros(1, 3, size, size))
    except RuntimeError:
        step = final_reduction(network)
        raise VitswinError(
            f"models.{key}.input_size {size} is too small for {model.name} with these options (one position of its "
            f"last feature map spans {step} pixels); use a multiple of {step}, e.g. {step * max(1, -(-size // step))}."
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
    return kept[0]


def _check_step_memory(key: str, model: ModelConfig, network: torch.nn.Module, activations: int, stored: int) -> None:
    """On the CPU, refuse a model whose training step cannot fit in free memory (weights, gradients and AdamW's two
    moments, one forward pass's activations, float32, and the batch as gathered from the store at `stored` pixels,
    uint8 and float32): an input size, image size or batch far too large would otherwise stop on an allocation error
    after the data is read, or be killed without a word."""
    batch = model.train.micro_batch_size or model.train.batch_size
    check_memory(
        4 * (4 * parameter_count(network) + batch * activations) + batch * 3 * stored**2 * (1 + 4),
        f"one training step of {key} ({batch} images of data.image_size {stored} at models.{key}.input_size {model.input_size})",
        f"lower data.image_size, models.{key}.input_size or models.{key}.train.batch_size (or set micro_batch_size)",
    )


def _checkpoint_bytes(network: torch.nn.Module) -> int:
    """Disk a model's run needs: best and last checkpoints (weights and two AdamW moments each), a temporary
    copy while one is rewritten, and the exported weights; float32 throughout."""
    return parameter_count(network) * 4 * (3 * 3 + 1)


def train_models(config: StudyConfig, keys: list[str] | None = None) -> list[RunSummary]:
    """The training stage: train and evaluate the models `keys` (default: every model of the study) once per seed,
    all on the same data, reusing finished runs and resuming interrupted ones, `config.jobs` runs at a time; update
    the study summary. Other processes may train other runs of the same study at the same time
    (docs/distributed.md)."""
    keys = list(config.cells) if keys is None else keys
    for key in keys:
        run_config(config, key, config.seeds[0])  # an unknown model fails before anything is read or written
    preflight(config, keys)
    study = StudyFolder.of(config)
    runs = [(key, seed) for key in keys for seed in config.seeds]
    unfinished = sum(not study.run(key, seed).is_finished() for key, seed in runs)
    jobs = job_count(config.jobs, config.hardware, unfinished)  # refused before anything is written
    splits = load_data(config.data)
    log.info(
        "Data: %d train, %d validation (%s), %d test images, %d classes; %d seed(s): %s",
        len(splits.train),
        len(splits.val),
        "test set" if splits.val_is_test else "held out",
        len(splits.test),
        len(splits.class_names),
        len(config.seeds),
        ", ".join(map(str, config.seeds)),
    )
    for key in keys:  # a design's training-set sizes must fit the data, before anything is written
        splits.training_images(config.cells[key].train_images, key)
    threads = run_threads(config.jobs, config.hardware)
    if unfinished:
        check_reproducible(study, threads, config.hardware)
    main = is_main_process()
    if main:
        study.register(config)
    if jobs > 1:
        summaries = train_side_by_side(train_model, config, runs, splits, jobs, threads)
    else:
        with cpu_threads(threads):
            summaries = [train_model(config, key, seed, splits) for key, seed in runs]
    if main:
        study.update_summary()
    return summaries


@dataclass(frozen=True)
class StudyResult:
    """What `run_study` gives back: every run's summary, the report's findings as records (each comparison with its
    models, estimate, interval, p-values and verdict; the same as the study's findings.json) and the report's files
    (None in the other processes of a distributed run)."""

    runs: list[RunSummary]
    findings: list[dict[str, object]]
    report_html: Path | None
    report_markdown: Path | None

    def run_records(self) -> list[dict[str, object]]:
        """A record per run (model, seed, test accuracy, epochs, times): `pandas.DataFrame(result.run_records())`."""
        return [asdict(run) for run in self.runs]

    def comparisons(self) -> list[dict[str, object]]:
        """The findings that compare two models (or cells), as records: `pandas.DataFrame(result.comparisons())`."""
        return [finding for finding in self.findings if finding.get("a")]


def run_study(config: StudyConfig, explain: bool = True) -> StudyResult:
    """The whole study, as `vitswin study` runs it: train and evaluate every model with every seed, measure each
    run's cost, explain the models of each seed (unless `explain` is False; Grad-CAM as 'vitswin explain' does it,
    with the config's `explain` options; an explanation made with the same options after its runs' weights is
    reused) and write the report. In a distributed run only the main process measures, explains and reports.
    Progress lines go to standard output unless logging is configured (in a notebook too).
    """
    show_progress_lines()
    summaries = train_models(config)
    if not is_main_process():
        return StudyResult(summaries, [], None, None)
    log.info("\n%s", summary_table(summaries))
    study = StudyFolder.of(config)
    if explain:
        for seed in config.seeds:
            _explain_seed(study, config, seed)
    html, markdown = report_study(study.path)
    return StudyResult(summaries, study.read_findings(), html, markdown)


def show_progress_lines() -> None:
    """vitswin's progress lines on standard output, as the command line prints them, where nothing else has been
    set up to receive them (a script or notebook without a logging configuration)."""
    logger = logging.getLogger("vitswin")
    if logger.hasHandlers():  # the command line's own handler, or the application's logging configuration
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _explain_seed(study: StudyFolder, config: StudyConfig, seed: int) -> None:
    options = config.explain
    runs, folder = study.runs(config, seed), study.explanation(options.method, seed)
    if folder.holds(runs, options.model_dump()):
        log.info("Reusing the explanations in %s", folder.path)
        return
    try:
        log.info("Figures, maps and measurements written to %s", explain_runs([run.path for run in runs], options))
    except VitswinError as error:  # after training, a report without explanations beats no report
        log.warning("No explanations for seed %d: %s The report is written without them.", seed, error)


def report_study(study_dir: Path, replicate_dirs: tuple[Path, ...] = ()) -> tuple[Path, Path]:
    """Measure the cost of any run that lacks it, then (re)build the study's report from its folders; returns
    the paths of report.html and report.md. `replicate_dirs` are the same study with other seeds."""
    study = StudyFolder(study_dir)
    for folder in (study, *(StudyFolder(path) for path in replicate_dirs)):
        measure_costs(folder)
    html_path, markdown_path = build_report(study.path, replicate_dirs)
    log.info("Report written to %s and %s", html_path, markdown_path)
    return html_path, markdown_path


def summary_table(summaries: list[RunSummary]) -> str:
    """The study's results as a plain-text table."""
    header = (
        f"{'model':<12} {'seed':>4} {'architecture':<32} {'test acc':>9} {'best ep':>7} {'epochs':>6} {'train s':>8} "
        f"{'s/epoch':>8}"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        lines.append(
            f"{s.model:<12} {s.seed:>4} {s.architecture:<32} {100 * s.test_acc:>8.2f}% {s.best_epoch:>7} "
            f"{s.epochs_run:>6} {s.train_time_s:>8.1f} {s.time_per_epoch_s:>8.1f}"
        )
    return "\n".join(lines)
