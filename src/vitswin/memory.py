"""How much memory this machine (or this process's container) has free, and one sentence when a need exceeds it.

Checked before work that would otherwise fail part way with an allocation error, or be killed without a word.
"""

import os
from pathlib import Path

from vitswin.errors import VitswinError


def available_memory() -> int:
    """Bytes this process can still allocate: the kernel's estimate (MemAvailable), lowered to what is left of the
    container's limit (cgroup v2 memory.max) where one is set."""
    free = _meminfo_available()
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free, max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return free


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def gigabytes(count: int | float) -> str:
    """Bytes as a short display string: '6,144 bytes', '3.1 MB', '19 GB', '48,000 GB'."""
    if count >= 100e9:
        return f"{count / 1e9:,.0f} GB"
    if count >= 1e9:
        return f"{count / 1e9:.2g} GB"
    return f"{count / 1e6:.2g} MB" if count >= 1e6 else f"{count:,.0f} bytes"


def check_memory(needed: int, what: str, fix: str) -> None:
    """One sentence when `what` needs more than the free memory: 'WHAT needs about N of memory, but this machine has M
    free; FIX.'"""
    free = available_memory()
    if needed > free:
        raise VitswinError(
            f"{what} needs about {gigabytes(needed)} of memory, but this machine has {gigabytes(free)} free; {fix}."
        )
