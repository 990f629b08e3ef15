"""The one place a Lightning Trainer is built, and the context every fit or predict call runs in.

Fit, test-set prediction and the training benchmarks all train or predict the same way: the study's
hardware, the recipe's precision, resident batch samplers (so no distributed sampler), no Lightning
logger (vitswin writes its own history), progress bars only on a terminal. What the hardware settings
resolve to on this machine (how many processes, which accelerator) is asked of a Trainer built here too.
"""

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.strategies import FSDPStrategy, Strategy
from torch import nn

from vitswin.config import Hardware
from vitswin.errors import VitswinError
from vitswin.model.architecture import block_types
from vitswin.training.distributed import launched_processes

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
    ".*module\\(s\\) in eval mode at the start of training.*",  # the moving average of the weights (train.ema_decay)
)


def quiet_lightning_logs() -> None:
    """Only Lightning's warnings in vitswin's output, not its info lines (set after Lightning's import, which
    sets its loggers' levels)."""
    for noisy in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def show_progress() -> bool:
    """Progress bars on an interactive terminal only: in logs and CI they would print thousands of lines."""
    return sys.stderr.isatty()


def build_trainer(hardware: Hardware, precision: str, network: nn.Module | None, **options: object) -> pl.Trainer:
    """A Trainer for `network` on `hardware` at `precision`, with vitswin's defaults; `options` are the
    remaining Trainer arguments of the caller (epochs, callbacks, checkpointing...) and override the defaults."""
    defaults = {
        "accelerator": hardware.accelerator,
        "devices": hardware.devices,
        "num_nodes": hardware.num_nodes,
        "strategy": _strategy(hardware.strategy, block_types(network) if network is not None else None),
        "precision": precision,
        "num_sanity_val_steps": 0,
        "enable_model_summary": False,
        "enable_progress_bar": show_progress(),
        "use_distributed_sampler": False,  # vitswin's batch samplers already give each process its share
        "logger": False,  # training passes the study's logger; benchmarks and prediction log nothing
    }
    quiet_lightning_logs()  # wherever vitswin runs (a notebook too), not only under its command line
    return pl.Trainer(**{**defaults, **options})


def _strategy(name: str, blocks: set[type[nn.Module]] | None) -> str | Strategy:
    if name != "fsdp":
        return name
    # One FSDP unit per block: parameters, gradients and optimizer state are sharded between the processes
    # and a block's full weights exist only while that block runs.
    return FSDPStrategy(auto_wrap_policy=blocks or None, state_dict_type="full")


def world_size(hardware: Hardware) -> int:
    """How many processes train together, as Lightning resolves `hardware` ('auto' devices included)."""
    return _resolved(hardware).world_size


def on_cpu(hardware: Hardware) -> bool:
    """Whether the training steps run on the CPU, as Lightning resolves the accelerator ('auto' included)."""
    return isinstance(_resolved(hardware).accelerator, CPUAccelerator)


def _resolved(hardware: Hardware) -> pl.Trainer:
    """A Trainer that does nothing but resolve `hardware` on this machine and launcher."""
    try:
        trainer = build_trainer(hardware, "32", None, enable_checkpointing=False, enable_progress_bar=False)
    except (MisconfigurationException, ValueError, RuntimeError) as error:  # e.g. more devices than the machine has
        raise VitswinError(
            f"the hardware settings (accelerator {hardware.accelerator}, devices {hardware.devices}, "
            f"num_nodes {hardware.num_nodes}, strategy {hardware.strategy}) cannot be used here: "
            f"{str(error).splitlines()[0]}"
        ) from None
    launched = launched_processes()
    if launched > 1 and launched != trainer.world_size:
        raise VitswinError(
            f"this command runs as one of {launched} processes started by torchrun or SLURM, but "
            f"the config trains with {trainer.world_size} (devices {hardware.devices} x num_nodes "
            f"{hardware.num_nodes}); set --devices to the processes per node and --num-nodes to the "
            f"nodes."
        )
    return trainer


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
