"""The one place vitswin sets the global random generators, which the libraries draw from with no generator
argument of their own (timm's weight initialisation, dropout, on-device augmentation, grad-cam's ROAD noise).
Everything else draws from a torch.Generator or numpy Generator of its own."""

import random
from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl
import numpy as np
import torch


def seed_training(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators for a training run (its initialisation and batch order)."""
    pl.seed_everything(seed, verbose=False)


def seed_batch(epoch_seed: int, batch: int, rank: int) -> None:
    """Seed the generators for one training batch of the epoch seeded `epoch_seed` (PyTorch's for augmentation and
    dropout; Python's and NumPy's, which timm's random erasing and Mixup draw from): they become a function of (seed,
    epoch, batch, process) alone, whatever else drew from the generators before (a resume changes that)."""
    step_seed = (epoch_seed * 1_000_003 + batch) * 1_009 + rank
    torch.manual_seed(step_seed % 2**63)
    random.seed(step_seed)
    np.random.seed(step_seed % 2**32)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """PyTorch's generators seeded with `seed` inside the block and restored after it, so the block's draws are
    reproducible and nothing outside it sees a changed generator."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield
