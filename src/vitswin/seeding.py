"""The one place vitswin sets the global random generators, which the libraries draw from with no generator
argument of their own (timm's weight initialisation, dropout, on-device augmentation, grad-cam's ROAD noise).
Everything else draws from a torch.Generator or numpy Generator of its own."""

from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl
import torch


def seed_training(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators for a training run (its initialisation and batch order)."""
    pl.seed_everything(seed, verbose=False)


def seed_batch(epoch_seed: int, batch: int, rank: int) -> None:
    """Seed PyTorch's generator for one training batch of the epoch seeded `epoch_seed`: its augmentation and
    dropout become a function of (seed, epoch, batch, process) alone, whatever else drew from the generator before
    (a resume changes that)."""
    step_seed = (epoch_seed * 1_000_003 + batch) * 1_009
    torch.manual_seed((step_seed + rank) % 2**63)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """PyTorch's generators seeded with `seed` inside the block and restored after it, so the block's draws are
    reproducible and nothing outside it sees a changed generator."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield
