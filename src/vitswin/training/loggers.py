"""Lightning's own loggers, one per run folder, so the curves can be watched live where people look for them
(TensorBoard by default: `tensorboard --logdir runs/<study>` finds every run)."""

import importlib.util

from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger

from vitswin.errors import VitswinError
from vitswin.study_folder import RunFolder

_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def check_logger(kind: str) -> None:
    """Fail before training when the logger's package is missing."""
    package = _PACKAGES.get(kind)
    if package and importlib.util.find_spec(package) is None:
        raise VitswinError(f"logger '{kind}' needs the {package} package; install it (pip install {package}) or set logger: csv.")


def run_logger(kind: str, run: RunFolder) -> Logger | bool:
    """The logger `kind` writing into `run`'s logs/ folder (MLflow: the study's mlruns/ store, one MLflow run per
    vitswin run); False for "none"."""
    if kind == "none":
        return False
    check_logger(kind)
    if kind == "mlflow":
        study = run.study.path
        return MLFlowLogger(experiment_name=study.name, run_name=run.label, tracking_uri=(study / "mlruns").resolve().as_uri())
    # name "" and version "logs": the files go to <run>/logs/ itself, with no version_<n>/ folders under it.
    if kind == "csv":
        return CSVLogger(save_dir=run.logs.parent, name="", version=run.logs.name)
    return TensorBoardLogger(save_dir=run.logs.parent, name="", version=run.logs.name, default_hp_metric=False)


FINAL_NUMBERS = ("hp/test_acc", "hp/best_val_acc", "hp/best_epoch")


def log_recipe(logger: Logger | bool, recipe: dict[str, object]) -> None:
    """Before training: the run's recipe as the logger's hyperparameters (hparams.yaml), paired in TensorBoard's
    HParams tab with the final numbers that `log_final` logs (0 until then)."""
    recipe = {key: list(value) if isinstance(value, tuple) else value for key, value in recipe.items()}  # plain YAML
    if isinstance(logger, TensorBoardLogger):
        logger.log_hyperparams(recipe, metrics=dict.fromkeys(FINAL_NUMBERS, 0.0))
    elif logger:
        logger.log_hyperparams(recipe)


def log_final(logger: Logger | bool, final: dict[str, float], step: int) -> None:
    """After the test: the run's final numbers (FINAL_NUMBERS), at the last epoch's step."""
    if logger:
        logger.log_metrics(final, step=step)
        logger.save()
