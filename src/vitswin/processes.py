"""Worker processes that cannot outlive the command that started them (side-by-side runs, decoding processes)."""

import contextlib
import ctypes
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies (linux/prctl.h)
PARENT_POLL_S = 1.0


def die_with(parent: int) -> None:
    """Stop this worker when `parent` dies: at once by the kernel on Linux (the parent-death signal), else (and
    should the parent have died already) when a watcher sees this process adopted by another."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)  # no clean-up to wait for: what workers write is atomic or redone, and locks die with them

    threading.Thread(target=watch, name="vitswin-parent-watch", daemon=True).start()
