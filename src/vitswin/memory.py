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
    """Bytes as a short display string: '0.25 GB', '48,000 GB'."""
    value = count / 1e9
    return f"{value:,.0f} GB" if value >= 100 else f"{value:.2g} GB"


def check_memory(needed: int, what: str, fix: str) -> None:
    """One sentence when `what` needs more than the free memory: 'WHAT needs about N of memory, but this machine has M
    free; FIX.'"""
    free = available_memory()
    if needed > free:
        raise VitswinError(
            f"{what} needs about {gigabytes(needed)} of memory, but this machine has {gigabytes(free)} free; {fix}."
        )
