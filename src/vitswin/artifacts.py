"""Writing run artifacts atomically: a crash leaves the old complete file or the new one, never half of one."""

import csv
import io
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


TEMPORARY_PATTERN = ".*.tmp"  # what atomic_write_bytes writes before renaming


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporary files a killed process left under `folder` (never complete results); return how many."""
    stale = [path for path in Path(folder).rglob(TEMPORARY_PATTERN) if path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, then rename it over `path`. The file gets
    the permissions of any file the user creates (0644 under umask 022): created with mode 0666 for the kernel to
    apply the umask, where tempfile.mkstemp would leave every result readable by its owner alone (0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(text: str, path: Path) -> None:
    """Write `text` as UTF-8, atomically."""
    atomic_write_bytes(text.encode(), path)


def write_json(data: Any, path: Path) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write_text(json.dumps(data, indent=2) + "\n", path)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Rows of equal keys as CSV with a header line."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(buffer.getvalue(), path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` of `obj`, atomically (for Lightning checkpoints)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Named arrays as a compressed NumPy archive, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(buffer.getvalue(), path)


def write_png(figure: "Figure", path: Path, dpi: int = 100) -> None:
    """Render a matplotlib figure to PNG at its own size and write it atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(buffer.getvalue(), path)
