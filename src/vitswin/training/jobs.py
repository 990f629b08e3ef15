"""Runs side by side: several (model, seed) runs of a study trained at once on one machine, each in a worker
process of its own with its share of the CPU threads.

Small models cannot keep many threads busy in one process; separate runs need no coordination. On 2 cores the
gain is small (1.06-1.22x, docs/performance.md), on more cores it grows. The workers are fresh processes
(spawn: a fork would inherit the parent's OpenMP thread pool), so each pays the imports once; the data travel
to them in shared memory. Every run still claims its own folder, so workers and separate `vitswin train` jobs
never train the same run twice (docs/distributed.md).
"""

import logging
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

import torch

from vitswin.config import Hardware, StudyConfig
from vitswin.data import DataSplits
from vitswin.errors import VitswinError
from vitswin.study_folder import RunSummary
from vitswin.training.trainer import on_cpu, quiet_lightning_logs, world_size

log = logging.getLogger(__name__)

TrainRun = Callable[[StudyConfig, str, int, DataSplits], RunSummary]


def job_count(jobs: int | str, hardware: Hardware, runs: int) -> int:
    """How many of `runs` runs train at once: `jobs`, or for "auto" one per CPU thread this process may use when
    training on the CPU, one on GPUs; never more than there are runs, and one in a distributed run."""
    if world_size(hardware) > 1:
        if jobs not in ("auto", 1):
            raise VitswinError(
                f"jobs {jobs} cannot be combined with training in several processes (devices {hardware.devices}, "
                f"num_nodes {hardware.num_nodes}); set jobs to 1, or start one 'vitswin train' per run instead."
            )
        return 1
    if jobs == "auto":
        jobs = torch.get_num_threads() if on_cpu(hardware) else 1
    return max(1, min(int(jobs), runs))


def train_side_by_side(
    train: TrainRun, config: StudyConfig, runs: list[tuple[str, int]], splits: DataSplits, jobs: int
) -> list[RunSummary]:
    """`train(config, key, seed, splits)` for every (key, seed) of `runs`, `jobs` at a time, each worker with an
    equal share of this process's CPU threads; the summaries in the order of `runs`. After a failed run the
    runs already handed to a worker finish, the others are not started, then the first failure is raised."""
    threads = max(1, torch.get_num_threads() // jobs)
    log.info("Training %d runs, %d at a time (%d CPU thread(s) each)", len(runs), jobs, threads)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(threads,)) as pool:
        futures: list[Future] = [pool.submit(_labelled, train, config, key, seed, splits) for key, seed in runs]
        try:
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _start_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for anything the run starts in turn
    torch.set_num_threads(threads)
    handler = logging.StreamHandler(sys.stdout)  # where the main process's lines go (vitswin.cli)
    logging.getLogger("vitswin").addHandler(handler)
    logging.getLogger("vitswin").setLevel(logging.INFO)
    quiet_lightning_logs()


def _labelled(train: TrainRun, config: StudyConfig, key: str, seed: int, splits: DataSplits) -> RunSummary:
    """One run in a worker, every line it logs starting with the run's name: the runs' lines interleave."""
    for handler in logging.getLogger("vitswin").handlers:
        handler.setFormatter(logging.Formatter(f"[{key} seed {seed}] %(message)s"))
    return train(config, key, seed, splits)
