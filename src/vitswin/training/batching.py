"""Which images each process sees, batch by batch, from an ImageSet of uint8 images (in memory, or read from
its decoded image store: a batch reads only its own images).

A batch is one gather of whole tensors (no per-sample collation, no worker processes). Training batches
are seeded per epoch and split between processes; evaluation batches cover each process's contiguous share
of the set, so every image is evaluated exactly once, with no padding.
"""

import math
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vitswin.data.imageset import ImageSet
from vitswin.training.distributed import process_group


class _ResidentBatches(Dataset):
    """Indexed by a list of indices, returns that whole batch: one gather instead of per-sample collation."""

    def __init__(self, image_set: ImageSet) -> None:
        self.image_set = image_set

    def __len__(self) -> int:
        return len(self.image_set)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices)
        return self.image_set.take(index), self.image_set.labels[index]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness: different for every epoch, the same on every run."""
    return seed * 1_000_003 + epoch


class TrainingBatches(Sampler[list[int]]):
    """This process's training micro-batches for one epoch.

    An epoch's order depends only on (seed, epoch), so a resumed run sees the batches an uninterrupted run
    would have seen. Each step's batch of `batch_size` images is split evenly between the processes, and each
    process's part into `accumulate` micro-batches: together the processes see exactly the batch one process
    would see alone, so a recipe means the same on any number of devices. The process group is read when
    iterating, once Lightning has set it up.
    """

    def __init__(self, size: int, batch_size: int, accumulate: int = 1, seed: int = 0) -> None:
        self.size, self.batch_size, self.accumulate, self.seed = size, batch_size, accumulate, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # called by Lightning before every epoch
        self.epoch = epoch

    def _steps(self, pieces: int) -> int:
        # A last batch smaller than the number of micro-batches would leave some of them empty: it is dropped.
        full, rest = divmod(self.size, self.batch_size)
        return full + (rest >= pieces)

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = process_group()
        pieces = world * self.accumulate
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch)))
        for step in range(self._steps(pieces)):
            parts = order[step * self.batch_size : (step + 1) * self.batch_size].tensor_split(pieces)
            for part in parts[rank * self.accumulate : (rank + 1) * self.accumulate]:
                yield part.tolist()

    def __len__(self) -> int:
        pieces = process_group()[1] * self.accumulate
        return self._steps(pieces) * self.accumulate


class ShardBatches(Sampler[list[int]]):
    """Batches, in order, of this process's contiguous share of a set (shares differ in length by at most one)."""

    def __init__(self, size: int, batch_size: int) -> None:
        self.size, self.batch_size = size, batch_size

    def _share(self) -> range:
        rank, world = process_group()
        return range(self.size * rank // world, self.size * (rank + 1) // world)

    def __iter__(self) -> Iterator[list[int]]:
        share = self._share()
        for start in range(0, len(share), self.batch_size):
            yield list(share[start : start + self.batch_size])

    def __len__(self) -> int:
        return math.ceil(len(self._share()) / self.batch_size)


def resident_loader(image_set: ImageSet, sampler: Sampler[list[int]]) -> DataLoader:
    """Batches of (uint8 images, labels) from a resident ImageSet, in the sampler's batches of indices."""
    return DataLoader(_ResidentBatches(image_set), sampler=sampler, batch_size=None)
