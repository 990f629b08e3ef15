"""The decoded image store: decoded once, in processes, resumable, never used half-written, read by index by every process."""

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_image_folder, session_processes
from test_data import folder_config
from vitswin.data import load_data, read_source
from vitswin.data import store as store_module
from vitswin.data.imagefolder import decode_image
from vitswin.data.store import CHUNK, build_store, open_store


def test_a_folder_is_decoded_once_into_a_store(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images", per_class=5)
    train, test = read_source(folder_config(root, tmp_path, test_split=0.4))
    (store,) = (tmp_path / "cache").glob("store-*[!k]")
    assert train.store == store and not (tmp_path / "cache" / f"{store.name}.partial").exists()
    mapped = np.load(store / "images.npy", mmap_mode="r")
    assert mapped.shape == (10, 3, 8, 8) and train.pixels.shape == (10, 3, 8, 8)
    assert len(train) + len(test) == 10 and train.rows is not None  # subsets are positions into the one store
    expected = torch.from_numpy(np.stack([decode_image(path, 8) for path in sorted((root / "cat").glob("*.png"))]))
    cats = train.take(torch.nonzero(train.labels == 0).squeeze(1))
    assert all(any(torch.equal(cat, other.permute(2, 0, 1)) for other in expected) for cat in cats)
    stamp = (store / "images.npy").stat().st_mtime_ns
    read_source(folder_config(root, tmp_path, test_split=0.4))
    assert (store / "images.npy").stat().st_mtime_ns == stamp  # not decoded again


def test_a_pickled_set_carries_its_stores_path_not_its_images(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images", per_class=40)
    splits = load_data(folder_config(root, tmp_path, test_split=0.25))
    pickled = pickle.dumps(splits.train)
    assert len(pickled) < splits.train.pixels.numel() / 4
    again = pickle.loads(pickled)
    assert torch.equal(again.images, splits.train.images) and torch.equal(again.labels, splits.train.labels)


def _sources(count: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), index % 251, dtype=np.uint8) for index in range(count)]


def _as_is(pixels: np.ndarray, image_size: int) -> np.ndarray:
    if pixels[0, 0, 0] == 13:
        raise ValueError("thirteen is unlucky")
    return pixels


def test_a_killed_decode_continues_where_it_stopped_and_is_never_used_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 3 * CHUNK + 7  # four chunks: the three left after the kill are decoded in worker processes
    sources, labels = _sources(count), [index % 3 for index in range(count)]
    calls = []
    real = store_module._decode_chunk

    def dies_after_one(task: tuple) -> list:
        if calls:
            raise KeyboardInterrupt  # as a kill would stop it, after the first chunk is recorded
        calls.append(task[1])
        return real(task)

    monkeypatch.setattr(store_module, "_decode_chunk", dies_after_one)
    monkeypatch.setattr(store_module.os, "cpu_count", lambda: 1)  # in this process, so the patch applies
    with pytest.raises(KeyboardInterrupt):
        build_store(tmp_path, "abc", sources, labels, ["a", "b", "c"], 4, _as_is, "test")
    assert not (tmp_path / "store-abc").exists()  # a half-written store never has the final name
    assert [path.name for path in (tmp_path / "store-abc.partial" / "chunks").iterdir()] == ["0.json"]
    monkeypatch.setattr(store_module, "_decode_chunk", real)
    monkeypatch.undo()  # the rest in worker processes, as a rerun would
    store, bad = build_store(tmp_path, "abc", sources, labels, ["a", "b", "c"], 4, _as_is, "test")
    assert not (tmp_path / "store-abc.partial").exists()
    assert bad == [(position, "thirteen is unlucky") for position in (13, 264, 515, 766)]
    assert store.unreadable == [13, 264, 515, 766] and len(store.readable_rows()) == count - 4
    keep = store.readable_rows()
    assert torch.equal(store.pixels[keep][:, 0, 0, 0], torch.tensor([index % 251 for index in keep.tolist()], dtype=torch.uint8))
    assert torch.equal(store.labels, torch.tensor(labels))
    assert json.loads((tmp_path / "store-abc" / "store.json").read_text())["fingerprint"] == "abc"
    assert open_store(tmp_path / "store-abc").class_names == ["a", "b", "c"]


def _grey(level: int, image_size: int) -> np.ndarray:
    return np.full((image_size, image_size, 3), level % 251, dtype=np.uint8)


def _file_pages_resident() -> int:
    """Bytes of files mapped into this process and resident (Linux): what a memory-mapped store would add."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("RssFile:")[1].split()[0]) * 1024


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_reading_every_batch_of_a_store_adds_nothing_to_the_process_resident_memory(tmp_path: Path) -> None:
    count, size = 2 * CHUNK - 12, 128  # 24 MB of images, decoded in this process
    store, _ = build_store(tmp_path, "big", list(range(count)), [0] * count, ["grey"], size, _grey, "test")
    before = _file_pages_resident()
    order = torch.randperm(count, generator=torch.Generator().manual_seed(0))
    for batch in order.split(64):
        images = store.pixels[batch]
        assert torch.equal(images[:, 0, 0, 0], (batch % 251).to(torch.uint8))
    assert torch.equal(store.pixels[5:9][:, 1, 2, 3], torch.tensor([5, 6, 7, 8], dtype=torch.uint8))
    assert _file_pages_resident() - before < store.nbytes / 10
    with pytest.raises(IndexError, match=f"of a store of {count} images"):
        store.pixels[torch.tensor([count])]


def _slow_grey(level: int, image_size: int) -> np.ndarray:
    time.sleep(0.004)  # a chunk takes about a second: slow enough to be killed halfway
    return _grey(level, image_size)


DECODE = """
import sys
from pathlib import Path
sys.path[:0] = {paths!r}
from test_store import _slow_grey
from vitswin.data.store import build_store
build_store(Path({cache!r}), "k", list(range({count})), [i % 3 for i in range({count})], list("abc"), 16, _slow_grey, "t")
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_decode_killed_by_sigkill_leaves_no_decoder_and_its_rerun_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    count, labels = 6 * CHUNK, [index % 3 for index in range(6 * CHUNK)]
    script = DECODE.format(paths=sys.path, cache=str(tmp_path / "killed"), count=count)
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True, start_new_session=True)
    chunks, deadline = tmp_path / "killed" / "store-k.partial" / "chunks", time.monotonic() + 120
    while not (chunks.is_dir() and any(chunks.iterdir())):  # the first chunk is recorded
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read() if process.stderr else ""
        time.sleep(0.02)
    process.kill()  # the command only, as kill -9 of its pid: its decoders must notice and stop
    process.wait(timeout=10)
    stopped = time.monotonic() + 10
    while session_processes(process.pid) and time.monotonic() < stopped:
        time.sleep(0.1)
    assert not session_processes(process.pid), f"decoders left running after 10 s: {session_processes(process.pid)}"
    assert not (tmp_path / "killed" / "store-k").exists() and len(list(chunks.iterdir())) < 6
    resumed, _ = build_store(tmp_path / "killed", "k", list(range(count)), labels, list("abc"), 16, _slow_grey, "t")
    whole, _ = build_store(tmp_path / "whole", "k", list(range(count)), labels, list("abc"), 16, _grey, "t")
    for name in ("images.npy", "labels.npy", "store.json"):
        assert (resumed.path / name).read_bytes() == (whole.path / name).read_bytes()
