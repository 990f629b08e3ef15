"""The decoded image store: a source's images decoded once into files on disk that every process reads by index.

A store is a folder `<cache_dir>/store-<fingerprint>/` holding `images.npy` (uint8, N x 3 x S x S, NumPy's format: a
flat array behind a small header), `labels.npy` (int64) and `store.json` (class names, the unreadable images left
out, the fingerprint). The fingerprint is a hash of what the images were decoded from (the files' names, sizes and
times, or a dataset's fingerprint) and of the decoding settings, so a changed file or setting is a new store.

Batches are read by index with positioned reads (`StoredPixels`), never mapped whole: the file's pages belong to the
page cache, so DDP ranks, side-by-side workers and separate commands on one machine share one copy, a machine reads
only the batches it gathers, and neither a process's resident memory nor its address space grows with the store (under
a memory limit the cached pages are reclaimable, not the process's own). A store is decoded into
`store-<fingerprint>.partial/` chunk by chunk, in parallel processes; each finished chunk is recorded, so a killed
decode continues where it stopped, and the folder gets its final name (atomically) only when every chunk is in.
"""

import contextlib
import errno
import io
import json
import logging
import math
import multiprocessing
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vitswin.artifacts import atomic_write_text
from vitswin.errors import VitswinError
from vitswin.locking import locked
from vitswin.memory import gigabytes
from vitswin.processes import die_with

log = logging.getLogger(__name__)

STORE_VERSION = 1  # bump when the layout or the decoding changes, so older stores are not reused
CHUNK = 256  # images per decoding task: small enough that a killed decode loses little
Decoder = Callable[[object, int], np.ndarray]  # (source, image_size) -> (S, S, 3) uint8


class StoredPixels:
    """The images of a store's images.npy, uint8 (N, 3, S, S), gathered by index like a tensor: `pixels[index]` reads
    just those rows (runs of consecutive rows in one read) into a new tensor. Pickled as the file's name and shape."""

    dtype = torch.uint8
    ndim = 4

    def __init__(self, file: Path) -> None:
        self.file = file
        with open(file, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran_order, dtype = read_header[version](stream)
            self.offset = stream.tell()
        if dtype != np.uint8 or fortran_order or len(shape) != 4:
            raise ValueError(f"images.npy holds {dtype} {shape}, not uint8 (N, 3, S, S) in C order")
        self.shape = torch.Size(shape)
        self._row_bytes = math.prod(shape[1:])
        size, expected = file.stat().st_size, self.offset + self.numel()
        if size != expected:
            raise ValueError(f"images.npy has {size} bytes, its header says {expected}")
        self._stream: io.FileIO | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def numel(self) -> int:
        return math.prod(self.shape)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        rows = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index, dtype=np.int64).reshape(-1)
        if rows.size and not (rows.min() >= 0 and rows.max() < len(self)):
            raise IndexError(f"rows {rows.min()} to {rows.max()} of a store of {len(self)} images")
        images = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        flat = images.reshape(len(rows), -1)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for first, end in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
            self._read_into(memoryview(flat[first:end]).cast("B"), self.offset + int(rows[first]) * self._row_bytes)
        return torch.from_numpy(images)

    def _read_into(self, buffer: memoryview, position: int) -> None:
        if self._stream is None:
            self._stream = io.FileIO(self.file, "r")
        while buffer:
            count = os.preadv(self._stream.fileno(), [buffer], position)
            if count == 0:
                raise OSError(errno.EIO, f"{self.file} ended early")
            buffer, position = buffer[count:], position + count

    def __getstate__(self) -> dict[str, object]:
        return self.__dict__ | {"_stream": None}  # each process opens the file for itself


@dataclass(frozen=True)
class Store:
    """An opened store: its images read by index from disk, its labels and facts in memory."""

    path: Path
    pixels: StoredPixels  # uint8 (N, 3, S, S), read from images.npy
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    unreadable: list[int]  # positions of images that could not be decoded (left out of every set)
    fingerprint: str

    @property
    def nbytes(self) -> int:
        return self.pixels.numel()

    def readable_rows(self) -> torch.Tensor:
        keep = torch.ones(len(self.labels), dtype=torch.bool)
        keep[self.unreadable] = False
        return keep.nonzero().squeeze(1)


def open_store(path: Path) -> Store:
    """The finished store in `path`; a damaged one is one sentence naming it."""
    try:
        facts = json.loads((path / "store.json").read_text())
        pixels = StoredPixels(path / "images.npy")
        labels = np.load(path / "labels.npy")
    except (OSError, ValueError, KeyError) as error:
        raise VitswinError(
            f"the decoded image store {path} is damaged ({type(error).__name__}: {error}); delete it and run again "
            f"to decode the images anew."
        ) from None
    return Store(
        path=path,
        pixels=pixels,
        labels=torch.from_numpy(labels),
        class_names=list(facts["class_names"]),
        unreadable=list(facts["unreadable"]),
        fingerprint=facts["fingerprint"],
    )


def build_store(
    cache_dir: Path,
    fingerprint: str,
    sources: Sequence[object],
    labels: Sequence[int],
    class_names: list[str],
    image_size: int,
    decoder: Decoder,
    what: str,
) -> tuple[Store, list[tuple[int, str]]]:
    """The store of `sources` decoded by `decoder` at `image_size`: opened when it exists, else decoded (resuming a
    partial one), with the (position, reason) of every source that could not be decoded. One process decodes a
    store at a time; the others wait for it and open what it wrote."""
    final = cache_dir / f"store-{fingerprint}"
    try:
        with locked(cache_dir / f"store-{fingerprint}.lock"):
            store = _open_sound(final)
            if store is None:
                _decode_into(final, fingerprint, sources, labels, class_names, image_size, decoder, what)
                store = open_store(final)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # a full disk: the CLI's sentence, and the same command continues the decode once there is room
        raise VitswinError(
            f"cannot write the decoded image store to {cache_dir} ({error.strerror or error}); set data.cache_dir to a "
            f"writable folder with room for the decoded images."
        ) from None
    bad = json.loads((final / "store.json").read_text())["reasons"]
    return store, [(int(position), reason) for position, reason in bad]


def _open_sound(final: Path) -> Store | None:
    """The finished store in `final`, or None when there is none or it is damaged (then it is removed, to be
    decoded again)."""
    if not (final / "store.json").is_file():
        return None
    try:
        return open_store(final)
    except VitswinError:
        log.warning("the decoded image store %s is damaged; decoding the images again.", final)
        shutil.rmtree(final)
        return None


def _decode_into(
    final: Path,
    fingerprint: str,
    sources: Sequence[object],
    labels: Sequence[int],
    class_names: list[str],
    image_size: int,
    decoder: Decoder,
    what: str,
) -> None:
    count = len(sources)
    partial = final.with_name(final.name + ".partial")
    images_file, done_dir = partial / "images.npy", partial / "chunks"
    shape = (count, 3, image_size, image_size)
    if images_file.is_file() and _header_shape(images_file) != shape:
        shutil.rmtree(partial)  # another decode's leftovers under the same name: not ours to continue
    if not images_file.is_file():
        _check_disk(final.parent, count * 3 * image_size**2, what)
        done_dir.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(images_file, mode="w+", dtype=np.uint8, shape=shape).flush()
    chunks = range(0, count, CHUNK)
    todo = [start for start in chunks if not (done_dir / f"{start}.json").is_file()]
    if len(todo) < len(chunks):
        log.info("continuing the decoding of %s: %d of %d chunks were done", what, len(chunks) - len(todo), len(chunks))
    tasks = [(images_file, start, list(sources[start : start + CHUNK]), image_size, decoder) for start in todo]
    left = sum(len(task[2]) for task in tasks)
    # A few chunks decode faster here than processes start.
    workers = min(os.cpu_count() or 1, len(tasks)) if len(tasks) > 2 else 1
    bar = tqdm(total=count, initial=count - left, desc=f"decoding {what}", unit="img", disable=None)
    with bar, _pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
        decoded = pool.map(_decode_chunk, tasks) if pool else map(_decode_chunk, tasks)
        for (_, start, chunk, *_), bad in zip(tasks, decoded, strict=True):
            atomic_write_text(json.dumps(bad), done_dir / f"{start}.json")
            bar.update(len(chunk))
    reasons = sorted(
        (position, reason) for start in chunks for position, reason in json.loads((done_dir / f"{start}.json").read_text())
    )
    np.save(partial / "labels.npy", np.asarray(labels, dtype=np.int64))
    facts = {
        "version": STORE_VERSION,
        "fingerprint": fingerprint,
        "class_names": class_names,
        "image_size": image_size,
        "unreadable": [position for position, _ in reasons],
        "reasons": reasons,
    }
    atomic_write_text(json.dumps(facts), partial / "store.json")
    shutil.rmtree(done_dir)
    partial.rename(final)  # only a complete store ever has the final name


def _decode_chunk(task: tuple[Path, int, list[object], int, Decoder]) -> list[tuple[int, str]]:
    """Decode one chunk into its rows of the partial store; (position, reason) for each unreadable source."""
    images_file, start, sources, image_size, decoder = task
    images = np.load(images_file, mmap_mode="r+")
    bad = []
    for offset, source in enumerate(sources):
        try:
            images[start + offset] = decoder(source, image_size).transpose(2, 0, 1)
        except ValueError as error:
            bad.append((start + offset, str(error)))
    images.flush()
    return bad


def _pool(workers: int) -> ProcessPoolExecutor:
    # Spawned, not forked: the parent may hold PyTorch's threads, which a fork would copy in a broken state. A killed
    # command takes its decoders with it: their unrecorded chunks are decoded again by the rerun.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with, initargs=(os.getpid(),))


def _header_shape(images_file: Path) -> tuple[int, ...] | None:
    try:
        return tuple(StoredPixels(images_file).shape)
    except (OSError, ValueError):
        return None


def _check_disk(folder: Path, needed: int, what: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise VitswinError(
            f"decoding {what} needs about {gigabytes(needed)} of disk in {folder}, but it has {gigabytes(free)} free; "
            f"free some space, set data.cache_dir to a folder with room, or lower data.image_size."
        )
