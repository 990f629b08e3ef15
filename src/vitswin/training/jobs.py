"""Runs side by side: several (model, seed) runs of a study trained at once on one machine, each in a worker
process of its own with its share of the CPU threads.

Small models cannot keep many threads busy in one process; separate runs need no coordination. On 2 cores the
gain is small (1.06-1.22x, docs/performance.md), on more cores it grows. The workers are fresh processes
(spawn: a fork would inherit the parent's OpenMP thread pool), so each pays the imports once; the data travel
to them in shared memory. Every run still claims its own folder, so workers and separate `vitswin train` jobs
never train the same run twice (docs/distributed.md).

A worker cannot outlive the command: it asks the kernel to kill it when its parent dies (Linux's parent-death
signal) and, everywhere, watches its parent's pid, so a killed `vitswin study` leaves no process training and its
run locks free for the rerun. A worker that dies (killed, out of memory) stops the others with it and is named in
one sentence; every run continues from its last checkpoint on the rerun.
"""

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import torch

from vitswin.config import Hardware, StudyConfig
from vitswin.data import DataSplits
from vitswin.errors import VitswinError
from vitswin.processes import die_with
from vitswin.study_folder import RunSummary, StudyFolder
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


def run_threads(jobs: int | str, hardware: Hardware) -> int:
    """The CPU threads each run trains with: this process's share for one of `jobs` runs at once, whether or not
    that many are left to train, so a run's numbers (which depend on how PyTorch splits its sums between threads)
    are the same however many runs train beside it, and a resumed run's are the same as before."""
    requested = job_count(jobs, hardware, runs=torch.get_num_threads())
    return max(1, torch.get_num_threads() // requested)


def check_reproducible(study: StudyFolder, threads: int, hardware: Hardware) -> None:
    """Refuse to train runs on the CPU with another thread count than the study's finished runs were trained with:
    their numbers would not reproduce each other's (on GPUs and in distributed runs the count plays no part)."""
    if world_size(hardware) > 1 or not on_cpu(hardware):
        return
    trained = [run.read_train() for run in study.finished_runs()]
    recorded = {train["cpu_threads"] for train in trained if train.get("peak_gpu_memory_mb") is None and "cpu_threads" in train}
    if recorded and recorded != {threads}:
        had = ", ".join(map(str, sorted(recorded)))
        raise VitswinError(
            f"the runs in {study.path} were trained with {had} CPU thread(s) each and these would get {threads}, so "
            f"their numbers would not reproduce each other's; set jobs (--jobs) so that each run gets {had} "
            f"(threads / jobs), or train into another --out."
        )


@contextlib.contextmanager
def cpu_threads(threads: int) -> Iterator[None]:
    """PyTorch at `threads` threads in this process for the block (a run left to train alone keeps its share)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_side_by_side(
    train: TrainRun, config: StudyConfig, runs: list[tuple[str, int]], splits: DataSplits, jobs: int, threads: int
) -> list[RunSummary]:
    """`train(config, key, seed, splits)` for every (key, seed) of `runs`, `jobs` at a time, each worker with
    `threads` CPU threads; the summaries in the order of `runs`. After a failed run the runs already handed to a
    worker finish, the others are not started, then the first failure is raised; a worker that dies stops every
    run, and says which one it was training and why."""
    log.info("Training %d runs, %d at a time (%d CPU thread(s) each)", len(runs), jobs, threads)
    context = multiprocessing.get_context("spawn")
    initargs = (threads, os.getpid())
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=initargs) as pool:
        futures: list[Future] = [pool.submit(_labelled, train, config, key, seed, splits) for key, seed in runs]
        try:
            return [future.result() for future in futures]
        except BrokenProcessPool:
            raise VitswinError(_died(pool, StudyFolder.of(config), runs)) from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _died(pool: ProcessPoolExecutor, study: StudyFolder, runs: list[tuple[str, int]]) -> str:
    """One sentence on the worker that died: the run it was training (the last holder its run lock records) and the
    signal or exit code it ended with."""
    holders = {study.run(key, seed).last_holder(): (key, seed) for key, seed in runs}
    processes = dict(getattr(pool, "_processes", None) or {})  # the executor keeps its workers by pid
    names = {pid: f"process {pid} on {socket.gethostname()}" for pid in processes}
    training = {pid: holders[name] for pid, name in names.items() if name in holders}
    for process in processes.values():
        process.join(timeout=5)
    # The executor terminates the other workers once one has died: the one that died first did not end by SIGTERM.
    dead = [(pid, process.exitcode) for pid, process in processes.items() if process.exitcode not in (None, 0)]
    dead.sort(key=lambda each: (each[1] == -signal.SIGTERM, each[0] not in training))
    pid, code = dead[0] if dead else (0, None)
    run = f"run {training[pid][0]} seed {training[pid][1]}" if pid in training else "a run"
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        cause = f"was killed by {name}" + (" (out of memory, or killed by hand)" if name == "SIGKILL" else "")
    else:
        cause = f"exited with code {code}" if code is not None else "stopped"
    return (
        f"the worker process training {run} {cause}, so the runs beside it were stopped too; run the same command "
        f"again: every run continues from its last checkpoint."
    )


def _start_worker(threads: int, parent: int) -> None:
    die_with(parent)
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
