"""Advisory file locks (flock): one process at a time trains a run folder, and a study's shared files are updated
by one process at a time. The kernel drops a lock when its process ends, however it ends, so a killed run never
leaves a stale lock behind."""

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vitswin.errors import VitswinError


@contextmanager
def locked(lock_file: Path, busy: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created if missing) for the duration of the block. Without `busy`,
    wait for another holder to finish; with it, fail at once with that sentence, where `{holder}` names the
    process holding the lock."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy else 0))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise VitswinError(busy.format(holder=holder)) from None  # type: ignore[union-attr]
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
