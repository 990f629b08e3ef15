"""The `vitswin` command: parse arguments, build the config, call one library function per command.

The error boundary: errors from bad input reach the user as one line on stderr and exit code 2; any other
exception as one line naming a log file that holds its traceback, and exit code 1 (`--debug` or VITSWIN_DEBUG=1
shows the traceback instead). Never a traceback by surprise.
"""

import argparse
import errno
import logging
import os
import sys
import traceback
from pathlib import Path

from tqdm import tqdm

from vitswin.config import ExplainConfig, load_config
from vitswin.errors import VitswinError
from vitswin.registry import METHODS

log = logging.getLogger("vitswin")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)

EXAMPLES = """examples:
  vitswin study                                     # built-in default: small ViT and Swin on synthetic shapes
  vitswin study configs/cpu-cifar10.yaml --set data.root=../shared/datasets/cifar10-jpg
  vitswin study configs/seed-cifar10.yaml           # the published recipe (GPU and internet for the weights)
  vitswin study --set 'seeds=[3,4,5]'                # the default study with three other training seeds
  vitswin train configs/cpu-cifar10.yaml --model vit --set 'seeds=[1]'   # one run (one job of a grid)
  vitswin evaluate runs/cpu-cifar10/vit/seed-0
  vitswin explain runs/default/vit/seed-0 runs/default/swin/seed-0 --images 16 --method gradcam
  vitswin report runs/default                       # rebuild report.html and report.md
  vitswin export runs/default/swin/seed-0 --format onnx --out exported/swin
  vitswin predict runs/default/vit/seed-0 runs/default/swin/seed-0 photos/ --out predictions.csv --cam cams/
  vitswin bench models configs/seed-cifar10.yaml --compare-options   # speed, FLOPs, memory, share of peak
  vitswin bench scaling                             # ViT-B and Swin-B cost from 32 to 384 pixels
  vitswin bench epoch configs/seed-cifar10.yaml --set models.vit.train.precision=bf16-mixed   # GPU epoch time
"""


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="study config YAML (default: the built-in synthetic study)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set models.swin.train.lr=2e-4 (repeatable)",
    )
    parser.add_argument("--out", help="folder for results (default: the config's out_dir, 'runs')")
    hardware = parser.add_argument_group("hardware (see docs/distributed.md)")
    hardware.add_argument(
        "--accelerator",
        choices=("auto", "cpu", "gpu", "cuda", "mps"),
        help="where to train (default: the config's accelerator, 'auto')",
    )
    hardware.add_argument(
        "--devices",
        help="devices per node, or 'auto' for all; more than one trains with DDP, "
        "each step's train.batch_size split between them (default: 1)",
    )
    hardware.add_argument("--num-nodes", type=int, help="machines, started by torchrun or SLURM (default: 1)")
    hardware.add_argument(
        "--strategy",
        choices=("auto", "ddp", "fsdp"),
        help="'ddp' copies the model to every process, 'fsdp' shards it (default: auto)",
    )


def _add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        help="runs (model and seed) trained at once, each in its own process with its share of the CPU threads; "
        "'auto': one per CPU thread when training on the CPU, else one (default: the config's jobs, 1; "
        "the built-in study: auto)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `vitswin` argument parser with every command and its options."""
    parser = argparse.ArgumentParser(
        prog="vitswin",
        description="Fine-tune, evaluate and compare Vision and Swin Transformers on your images.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get("VITSWIN_DEBUG", "") not in ("", "0"),
        help="show the full traceback of an unexpected error instead of writing it to a log file (also VITSWIN_DEBUG=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    study = commands.add_parser(
        "study",
        help="train, evaluate and explain every model of a study, then write the report",
        description="Train and evaluate every model of the study once per seed of 'seeds' (the default "
        "study: three), all on the same data and 'jobs' runs at a time, print a summary table, explain the models "
        "of each seed with Grad-CAM (as 'vitswin explain' does, with the config's explain.images and explain.road) "
        "time every network's training and inference speed in interleaved rounds (speed.json) and write the "
        "report (report.html, report.md). Results go to <out>/<name>/, one folder per model and seed (<model>/seed-<k>/). "
        "More seeds later (--set 'seeds=[3,4]') train only the new runs and join the same report.",
    )
    _add_config_arguments(study)
    _add_jobs_argument(study)
    study.add_argument(
        "--no-explain",
        dest="explain",
        action="store_false",
        help="skip the Grad-CAM explanations after training (the report then has no explanation section)",
    )

    train = commands.add_parser(
        "train",
        help="train and evaluate one model of a study, once per seed",
        description="Train one model of the study (selected by --model) once per seed of the config's "
        "'seeds', select each run's best epoch on validation and evaluate it once on the test set. "
        "Separate 'vitswin train --model M --set seeds=[K]' processes (one per model and seed, e.g. a "
        "SLURM job array) can train into one study folder at once; 'vitswin report' then collects them "
        "(docs/distributed.md).",
    )
    _add_config_arguments(train)
    _add_jobs_argument(train)
    train.add_argument(
        "--model",
        "--cell",
        dest="model",
        required=True,
        help="key of the model under 'models' in the config, or a cell of its design (e.g. vit+recipe-swin, swin+train-500)",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="re-evaluate a finished run folder on its test set",
        description="Evaluate a run folder's selected weights (best.safetensors) on "
        "its test set and rewrite metrics.json and predictions.npz.",
    )
    evaluate.add_argument("run_dir", type=Path, help="a run folder, e.g. runs/default/vit/seed-0")
    _add_explain_parser(commands)
    report = commands.add_parser(
        "report",
        help="rebuild a study's report.html and report.md from its folders",
        description="Build the comparison report of a finished study from its run and "
        "explanation folders, without retraining: report.html (self-contained) "
        "and report.md in the study folder. A run whose parameters and FLOPs are not yet in its "
        "cost.json is measured first, and the study's networks are timed (speed.json) when they have "
        "not been; otherwise nothing is measured, so a rebuilt report shows the same numbers.",
    )
    report.add_argument("study_dir", type=Path, help="a study folder, e.g. runs/default")
    report.add_argument(
        "replicates",
        type=Path,
        nargs="*",
        metavar="REPLICATE_DIR",
        help="the same study trained into other folders with other seeds: their runs join this study's as more "
        "seeds (every seed once)",
    )
    _add_predict_parser(commands)
    export = commands.add_parser(
        "export",
        help="a trained run's weights for timm or ONNX Runtime",
        description="Write a finished run's selected weights in a form other code loads without vitswin, checked "
        "on export against PyTorch on the run's test images: 'timm' writes model.safetensors and config.json "
        "(timm loads it with create_model('local-dir:DIR', pretrained=True), label names and preprocessing included); "
        "'hub' writes the same folder, which huggingface_hub's upload_folder uploads as it is; 'onnx' writes model.onnx "
        "(class names and preprocessing in its metadata) and preprocessing.json. Every export has a model card, README.md, "
        "written from the run's numbers (see README, 'Using the trained models').",
    )
    export.add_argument("run_dir", type=Path, help="a finished run folder, e.g. runs/default/vit/seed-0")
    export.add_argument("--format", dest="form", choices=("timm", "hub", "onnx"), required=True, help="what to write")
    export.add_argument("--out", type=Path, required=True, help="folder for the exported files (new or empty)")
    export.add_argument("--force", action="store_true", help="overwrite the files of a folder that is not empty")
    _add_bench_parser(commands)
    return parser


def _add_predict_parser(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="classify new images with trained runs, side by side",
        description="Classify images with one or more finished run folders (e.g. every model of a study): the "
        "first arguments that are run folders are the models, the rest are images, folders of images (searched "
        "recursively) or glob patterns. Images are read as the imagefolder source reads them (any format and "
        "mode, resized to the run's data.image_size) and batched on the device. Prints each run's top classes "
        "per image; an unreadable image gets one sentence and the rest are still classified (exit code 2 then).",
    )
    predict.add_argument(
        "paths", nargs="+", metavar="RUN_DIR... INPUT", help="run folders, then images, folders or glob patterns"
    )
    predict.add_argument("--top-k", type=int, default=3, help="classes listed per image and run (default: 3)")
    predict.add_argument("--out", type=Path, help="also write the predictions to this .csv or .json file")
    predict.add_argument("--cam", type=Path, metavar="DIR", help="write a Grad-CAM overlay figure per image into DIR")


def _add_bench_parser(commands: argparse._SubParsersAction) -> None:
    from vitswin.bench import SCALING_MODELS, SCALING_SIZES

    bench = commands.add_parser(
        "bench",
        help="measure speed and cost: models, input pipeline, training engine, resolution scaling",
        description="Benchmarks on this machine (medians of repeated runs after warm-up). Results are printed "
        "and written as JSON and CSV to <study>/bench/ (scaling: <out>/bench/); the report shows the "
        "models, pipeline and engine benchmarks. See docs/performance.md for measured results.",
    )
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    models = kinds.add_parser(
        "models",
        help="parameters, FLOPs, training/inference images/s, memory and share of the matmul peak for each model of a study",
    )
    _add_config_arguments(models)
    models.add_argument("--model", dest="keys", action="append", help="only this model key (repeatable)")
    models.add_argument("--batch", type=int, default=16, help="images per training step (default: 16)")
    models.add_argument("--precision", choices=("32", "bf16-mixed"), default="32", help="default: 32")
    models.add_argument("--channels-last", action="store_true", help="NHWC memory layout")
    models.add_argument("--compile", action="store_true", help="torch.compile the network")
    models.add_argument("--fused-optimizer", action="store_true", help="AdamW's fused kernel")
    models.add_argument(
        "--compare-options", action="store_true", help="also measure the other precision and each option switched on alone"
    )
    models.add_argument("--repeats", type=int, default=3, help="timed repeats, the median is reported (default: 3)")
    pipeline = kinds.add_parser(
        "pipeline", help="the batched input pipeline against the classic per-image one, and against each model's training speed"
    )
    _add_config_arguments(pipeline)
    pipeline.add_argument("--batches", type=int, default=20, help="batches timed per pipeline (default: 20)")
    pipeline.add_argument("--workers", type=int, default=2, help="DataLoader workers of the classic pipeline (default: 2)")
    pipeline.add_argument(
        "--rounds", type=int, default=3, help="rounds the pipelines take turns, the median is reported (default: 3)"
    )
    engine = kinds.add_parser("engine", help="the Lightning training loop against a bare PyTorch loop")
    _add_config_arguments(engine)
    engine.add_argument("--model", dest="key", default="vit", help="model key (default: vit)")
    engine.add_argument("--steps", type=int, default=30, help="timed steps per round (default: 30)")
    engine.add_argument("--rounds", type=int, default=3, help="alternating rounds, the median is reported (default: 3)")
    epoch = kinds.add_parser(
        "epoch",
        help="one training epoch of each model's recipe, as training runs it (micro-batches and "
        "accumulation included), on synthetic data resident on the device (compare with the published "
        "epoch times)",
    )
    _add_config_arguments(epoch)
    epoch.add_argument("--model", dest="keys", action="append", help="only this model key (repeatable)")
    epoch.add_argument("--images", type=int, default=50_000, help="images in the epoch (default: 50000, CIFAR-10's training set)")
    scaling = kinds.add_parser("scaling", help="FLOPs, memory and speed of ViT-B and Swin-B from 32 to 384 pixels")
    scaling.add_argument("--models", nargs="+", default=list(SCALING_MODELS), help="timm names (default: %(default)s)")
    scaling.add_argument("--sizes", nargs="+", type=int, default=list(SCALING_SIZES), help="input sizes in pixels")
    scaling.add_argument("--out", type=Path, default=Path("runs"), help="results go to <out>/bench/ (default: runs)")
    scaling.add_argument("--accelerator", choices=("cpu", "cuda"), default="cpu", help="default: cpu")


def _add_explain_parser(commands: argparse._SubParsersAction) -> None:
    defaults = ExplainConfig()
    slow = [method.name for method in METHODS if method.slow]
    explain = commands.add_parser(
        "explain",
        help="heatmaps of what each model looks at, with the figures and attention measured",
        description="Explain finished runs of one study on the same test images: overlay and heatmap grids "
        "(one row per image, one column per model), the raw maps, and measurements of each map "
        "(concentration, agreement between models, deletion/insertion faithfulness, ROAD, and on "
        "'shapes' data the pointing game against the object masks). Results go to "
        "<study>/explain/<method>/seed-<k>/ when the runs are one seed of one study, else to --out.",
    )
    explain.add_argument(
        "run_dirs",
        type=Path,
        nargs="+",
        metavar="RUN_DIR",
        help="finished run folders, e.g. runs/default/vit/seed-0 runs/default/swin/seed-0",
    )
    explain.add_argument(
        "--method",
        choices=METHODS.names(),
        default=defaults.method,
        help=f"heatmap method (default: {defaults.method}); rollout is for ViT only; "
        f"{' and '.join(slow)} run one forward pass per channel and are slow "
        f"(minutes per image for base models on a CPU)",
    )
    explain.add_argument(
        "--images",
        type=int,
        default=defaults.images,
        help=f"number of test images measured, spread over the classes (default: {defaults.images})",
    )
    explain.add_argument(
        "--show",
        type=int,
        default=defaults.show,
        help=f"how many of them the figures show, one row each (default: {defaults.show})",
    )
    explain.add_argument(
        "--target",
        choices=("pred", "true"),
        default=defaults.target,
        help="explain each model's predicted class or the true class (default: pred)",
    )
    explain.add_argument(
        "--select",
        choices=("sample", "disagree", "wrong"),
        default=defaults.select,
        help="which images: a seeded sample, those the models disagree on, or those any model gets wrong (default: sample)",
    )
    explain.add_argument("--seed", type=int, default=defaults.seed, help="seed of the image sample (default: 0)")
    explain.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help=f"images per batch (default: {defaults.batch_size})"
    )
    explain.add_argument(
        "--no-road",
        dest="road",
        action="store_false",
        help="skip the ROAD faithfulness score (it solves a sparse system per image)",
    )
    explain.add_argument("--out", type=Path, help="output folder (default: <study>/explain/<method>/seed-<k>)")


class _TqdmHandler(logging.Handler):
    """Log lines printed through tqdm, so they do not break a progress bar in the middle."""

    def emit(self, record: logging.LogRecord) -> None:
        # A file name that is not valid UTF-8 is shown escaped rather than failing to print.
        tqdm.write(self.format(record).encode("utf-8", "backslashreplace").decode(), file=sys.stdout)


def _configure_logging() -> None:
    from vitswin.training.distributed import is_main_process  # PyTorch and Lightning: imported once a command runs
    from vitswin.training.trainer import quiet_lightning_logs

    if not any(isinstance(handler, _TqdmHandler) for handler in log.handlers):  # once, however often main() runs
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    # In a distributed run every process runs the command; the others' lines would repeat the main one's.
    log.setLevel(logging.INFO if is_main_process() else logging.WARNING)
    quiet_lightning_logs()


def _config(args: argparse.Namespace):
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"out_dir={args.out}")
    for key in ("accelerator", "devices", "num_nodes", "strategy", "jobs"):
        if getattr(args, key, None) is not None:  # bench commands have no --jobs
            overrides.append(f"{key}={getattr(args, key)}")
    return load_config(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    """Carry out one parsed command; return its exit code."""
    from vitswin.evaluation import evaluate_run
    from vitswin.study import report_study, run_study, summary_table, train_models

    if args.command == "study":
        run_study(_config(args), explain=args.explain)
    elif args.command == "train":
        log.info("\n%s", summary_table(train_models(_config(args), [args.model])))
    elif args.command == "evaluate":
        metrics = evaluate_run(args.run_dir)
        log.info(
            "Test accuracy: %.2f%% on %d images (metrics in %s)", 100 * metrics["accuracy"], metrics["num_images"], args.run_dir
        )
    elif args.command == "explain":
        from vitswin.explain.runner import explain_runs

        log.info("Figures, maps and measurements written to %s", explain_runs(args.run_dirs, _explain_options(args), args.out))
    elif args.command == "report":
        report_study(args.study_dir, tuple(args.replicates))
    elif args.command == "predict":
        return _predict(args)
    elif args.command == "export":
        from vitswin.export import export_run

        export_run(args.run_dir, args.form, args.out, args.force)
    elif args.command == "bench":
        _bench(args)
    return 0


def _explain_options(args: argparse.Namespace) -> ExplainConfig:
    """The explain command's options as the config section they are, with one sentence for a bad number."""
    for name in ("images", "show", "batch_size", "seed"):
        least = 0 if name == "seed" else 1
        if getattr(args, name) < least:
            raise VitswinError(f"--{name.replace('_', '-')} must be at least {least}, got {getattr(args, name)}.")
    fields = ("method", "images", "show", "target", "select", "seed", "batch_size", "road")
    return ExplainConfig(**{name: getattr(args, name) for name in fields})


def _predict(args: argparse.Namespace) -> int:
    from vitswin.predict import check_out_file, classify, write_predictions
    from vitswin.study_folder import RunFolder

    paths = [Path(path) for path in args.paths]
    count = next((index for index, path in enumerate(paths) if not RunFolder(path).weights_file.is_file()), len(paths))
    if count == 0:
        raise VitswinError(f"{paths[0]} is not a finished run folder; start with one or more, e.g. runs/default/vit/seed-0.")
    if count == len(paths):
        raise VitswinError("no images given after the run folders; add image files, folders or glob patterns.")
    if args.out:
        check_out_file(args.out)
    classified = classify(paths[:count], args.paths[count:], args.top_k, args.cam)
    for index, image in enumerate(classified.images):
        guesses = " | ".join(
            f"{name}: " + ", ".join(f"{label} {probability:.3f}" for label, probability in classified.top[name][index])
            for name in classified.runs
        )
        log.info("%s: %s", image, guesses)
    if args.out:
        write_predictions(classified, args.out)
        log.info("Predictions of %d image(s) written to %s", len(classified.images), args.out)
    for problem in classified.problems:
        print(f"vitswin: error: {one_line(problem)}", file=sys.stderr)
    return 2 if classified.problems else 0


def _bench(args: argparse.Namespace) -> None:
    from vitswin.bench import runner
    from vitswin.bench.measure import TrainSettings

    if args.bench == "scaling":
        path = runner.bench_scaling(args.out, tuple(args.models), tuple(args.sizes), args.accelerator)
    elif args.bench == "models":
        settings = TrainSettings(args.batch, args.precision, args.channels_last, args.compile, args.fused_optimizer)
        path = runner.bench_models(_config(args), args.keys, settings, args.compare_options, args.repeats)[1]
    elif args.bench == "epoch":
        path = runner.bench_epoch(_config(args), args.keys, args.images)
    elif args.bench == "pipeline":
        path = runner.bench_pipeline(_config(args), args.batches, args.workers, args.rounds)
    else:
        path = runner.bench_engine(_config(args), args.key, args.steps, args.rounds)
    log.info("Written to %s (and .csv)", path)


def one_line(text: str) -> str:
    """`text` with control characters (newlines, form feeds, escapes) written as escapes: an error stays one line,
    however odd the input it quotes."""
    return "".join(char if char.isprintable() or char == " " else repr(char)[1:-1] for char in text)


def _working_folder(args: argparse.Namespace) -> Path | None:
    """The study or run folder the command works on, where an unexpected error's log is kept (None: none yet)."""
    for name in ("run_dir", "study_dir"):
        if getattr(args, name, None) is not None:
            return getattr(args, name)
    if getattr(args, "run_dirs", None):
        return args.run_dirs[0]
    if hasattr(args, "config") and args.command != "bench":
        try:
            return _config(args).study_dir
        except Exception:  # a config that cannot be read has no folder: the log goes elsewhere
            return None
    return None


def _report_unexpected(args: argparse.Namespace, error: BaseException) -> None:
    from vitswin.study_folder import write_error_log

    details = f"vitswin {' '.join(args.command_line)}\n\n{''.join(traceback.format_exception(error))}"
    log_path = write_error_log(details, _working_folder(args))
    reason = one_line((str(error).strip().splitlines() or [type(error).__name__])[0][:200])
    print(
        f"vitswin: error: '{args.command}' stopped on an unexpected {type(error).__name__} ({reason}); the details "
        f"are in {log_path} (rerun with --debug to see them here; please report it if the cause is not your input).",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command in `argv` (default: the process's arguments); return the exit code."""
    args = build_parser().parse_args(argv)
    args.command_line = sys.argv[1:] if argv is None else argv  # for the error log
    try:
        _configure_logging()
        code = run(args)
    except VitswinError as error:
        print(f"vitswin: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "vitswin: interrupted; finished runs and the last epoch's checkpoint are kept: run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    except OSError as error:
        if error.errno not in DISK_FULL:
            return _unexpected(args, error)
        folder = _working_folder(args)
        print(
            f"vitswin: error: the disk{f' holding {folder}' if folder else ''} is full ({error.strerror}); free some space "
            f"and run the same command again to resume: finished files and the last complete checkpoint are kept.",
            file=sys.stderr,
        )
        return 2
    except Exception as error:
        return _unexpected(args, error)
    return code


def _unexpected(args: argparse.Namespace, error: Exception) -> int:
    if args.debug:
        raise error
    _report_unexpected(args, error)
    return 1


if __name__ == "__main__":
    sys.exit(main())
