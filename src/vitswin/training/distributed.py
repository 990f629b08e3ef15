"""Distributed runs through Lightning: how many processes a launcher started, which process this is, and the few
collective steps vitswin adds to Lightning's (splitting the batch, gathering test predictions).

Every process of a distributed run executes the whole command (Lightning's launcher re-runs it, and so do
torchrun and SLURM); only the main process writes artifacts.
"""

import os

import lightning.pytorch as pl
import torch
import torch.distributed as dist

from vitswin.errors import VitswinError


def launched_processes() -> int:
    """How many processes an external launcher started for this job (torchrun: WORLD_SIZE; SLURM: SLURM_NTASKS),
    or 0 when no launcher did."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env:
        return int(env.get("WORLD_SIZE", 0))
    return int(env.get("SLURM_NTASKS", 0))


def process_group() -> tuple[int, int]:
    """(rank, world size) of the running process group; (0, 1) in a single-process run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Whether this process writes artifacts: global rank 0. Before Lightning has set up the process group,
    the launcher's environment tells (torchrun: RANK; Lightning: LOCAL_RANK and NODE_RANK; SLURM: SLURM_PROCID)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    env = os.environ
    if "RANK" in env:
        return env["RANK"] == "0"
    if "LOCAL_RANK" in env or "NODE_RANK" in env:  # checked before SLURM: Lightning may launch inside a SLURM job
        return env.get("LOCAL_RANK", "0") == "0" and env.get("NODE_RANK", "0") == "0"
    return env.get("SLURM_PROCID", "0") == "0"


def barrier() -> None:
    """Wait for every process (a no-op in a single-process run), e.g. until the main process has written a file."""
    if process_group()[1] > 1:
        dist.barrier()


def split_batch(batch_size: int, micro_batch_size: int | None, world_size: int) -> tuple[int, int]:
    """(images per forward pass on one process, gradient accumulation steps) that make up one optimizer step of
    `batch_size` images over `world_size` processes."""
    per_process, rest = divmod(batch_size, world_size)
    if rest or per_process == 0:
        raise VitswinError(
            f"train.batch_size {batch_size} cannot be split evenly between {world_size} processes; "
            f"choose a batch size that is a multiple of {world_size}."
        )
    micro = micro_batch_size or per_process
    accumulate, rest = divmod(per_process, micro)
    if rest or accumulate == 0:
        raise VitswinError(
            f"train.micro_batch_size {micro} does not divide the {per_process} images each of the "
            f"{world_size} processes gets per step (train.batch_size {batch_size}); choose a divisor "
            f"of {per_process}."
        )
    return micro, accumulate


def gather_shards(local: torch.Tensor, trainer: pl.Trainer) -> torch.Tensor:
    """Every process's rows, concatenated in rank order on every process. Shards may differ in length by one
    (see `vitswin.training.batching.ShardBatches`), so they are padded for the collective and trimmed after it."""
    if trainer.world_size == 1:
        return local
    device = trainer.strategy.root_device
    lengths = trainer.strategy.all_gather(torch.tensor([len(local)], device=device)).flatten().tolist()
    padded = local.new_zeros((max(lengths), *local.shape[1:]))
    padded[: len(local)] = local
    gathered = trainer.strategy.all_gather(padded.to(device)).cpu()
    return torch.cat([rows[:length] for rows, length in zip(gathered, lengths, strict=True)])
