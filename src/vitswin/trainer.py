"""The one place a Lightning Trainer is built, and the context every fit or predict call runs in.

Fit, test-set prediction and the training benchmarks all train or predict the same way: the study's
hardware, the recipe's precision, resident batch samplers (so no distributed sampler), no Lightning
logger (vitswin writes its own history), progress bars only on a terminal.
"""

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl
from torch import nn

from vitswin.architecture import block_types
from vitswin.distributed import Hardware

# Warnings from Lightning and PyTorch that do not apply to how vitswin runs them.
KNOWN_WARNINGS = (
    ".*does not have many workers.*",  # a loader of whole resident batches needs no worker processes
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",  # inside Lightning
    ".*Checkpoint directory .* exists and is not empty.*",  # a resumed run
    ".*but have no `val_dataloader`.*",  # the benchmarks time training alone
    ".*smaller than the logging interval.*",  # metrics are logged once per epoch, not every n steps
    # Harmless with timm's class token and position embedding (their gradients are views), and repeated by
    # every process; Lightning's own all_gather still uses the deprecated function.
    ".*Grad strides do not match bucket view strides.*",
    ".*torch.distributed.nn.functional.all_gather is deprecated.*",
)


def quiet_lightning_logs() -> None:
    """Only Lightning's warnings in vitswin's output, not its info lines (set after Lightning's import, which
    sets its loggers' levels)."""
    for noisy in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def show_progress() -> bool:
    """Progress bars on an interactive terminal only: in logs and CI they would print thousands of lines."""
    return sys.stderr.isatty()


def build_trainer(hardware: Hardware, precision: str, network: nn.Module, **options: object) -> pl.Trainer:
    """A Trainer for `network` on `hardware` at `precision`, with vitswin's defaults; `options` are the
    remaining Trainer arguments of the caller (epochs, callbacks, checkpointing...)."""
    return pl.Trainer(
        **hardware.trainer_arguments(block_types(network)),
        precision=precision,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_progress_bar=show_progress(),
        use_distributed_sampler=False,  # vitswin's batch samplers already give each process its share
        **{"logger": False, **options},  # training passes the study's logger; benchmarks and prediction log nothing
    )


@contextmanager
def running(trainer: pl.Trainer) -> Iterator[None]:
    """Around a Trainer's fit or predict: the known warnings above silenced for the call only, and Ctrl-C,
    which Lightning turns into a clean shutdown and exit(1), turned back into KeyboardInterrupt, so the
    command can say what is kept and how to resume."""
    with warnings.catch_warnings():
        for message in KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        try:
            yield
        except SystemExit:
            if trainer.interrupted:
                raise KeyboardInterrupt from None
            raise
