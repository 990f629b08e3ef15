"""Peak resident memory of a study on image folders of growing size, read from the decoded image store.

For each size, a folder of random JPEG images (10 classes, `<class>/*.jpg`) at --image-size pixels is generated, and
`vitswin study` trains the default study's ViT on it for one epoch (one seed, 10 % of the images held out for testing
and 10 % of the rest for validation), explains 16 test images with Grad-CAM and writes the report, in a fresh process
with an empty cache (so it decodes the store too) and then again into another folder (the store decoded already).
Measured for each: the peak resident memory of the largest process (the command or one of its decoders or DDP
processes: what `/usr/bin/time -v` reports), the wall time and the decoded data's size. With --limit-gb the commands
run in a memory cgroup (v1 or v2; needs root) with that limit, and its peak usage is recorded too.

Usage: python benchmarks/store_memory.py [--sizes 2000 8000 32000] [--image-size 128] [--devices 1] [--limit-gb G]
       [--folder DIR]; prints JSON.
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from vitswin.config import default_config_path

CLASSES = 10


def image_folder(root: Path, count: int, size: int) -> Path:
    """`count` random JPEG images of `size` pixels in 10 class folders (kept when already there)."""
    folder = root / f"images-{count}-{size}"
    if (folder / "done").is_file():
        return folder
    rng = np.random.default_rng(0)
    for index in range(count):
        label = index % CLASSES
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        # Smooth random images (a coarse grid scaled up), so the JPEGs are of a photo's size, not of noise's.
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
        image.save(folder / str(label) / f"{index}.jpg", quality=90)
    (folder / "done").touch()
    return folder


def study_config(root: Path, folder: Path, size: int, devices: int) -> Path:
    raw = yaml.safe_load(default_config_path().read_text())
    raw["models"] = {"vit": raw["models"]["vit"]}
    raw["models"]["vit"]["train"].update(max_epochs=1, patience=0)
    raw.update(name="store-memory", seeds=[0], jobs=1, explain={"images": 16, "road": False})
    raw["data"] = {
        "source": "imagefolder",
        "root": str(folder),
        "image_size": size,
        "test_split": 0.1,
        "val_split": 0.1,
        "cache_dir": str(root / f"cache-{folder.name}"),
    }
    if devices > 1:
        raw.update(accelerator="cpu", devices=devices)
    path = root / f"{folder.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@contextlib.contextmanager
def memory_cgroup(limit_gb: float | None) -> Iterator[tuple[list[str], Path | None]]:
    """A command prefix that starts a process in a new memory cgroup with the limit (and the file of its peak
    usage), or nothing without a limit."""
    if limit_gb is None:
        yield [], None
        return
    limit, name = str(int(limit_gb * 2**30)), f"vitswin-bench-{os.getpid()}"
    v1, v2 = Path("/sys/fs/cgroup/memory") / name, Path("/sys/fs/cgroup") / name
    if Path("/sys/fs/cgroup/memory").is_dir():
        v1.mkdir()
        (v1 / "memory.limit_in_bytes").write_text(limit)
        folder, peak = v1, v1 / "memory.max_usage_in_bytes"
    else:
        v2.mkdir()
        (v2 / "memory.max").write_text(limit)
        (v2 / "memory.swap.max").write_text("0")
        folder, peak = v2, v2 / "memory.peak"
    try:
        yield ["sh", "-c", f'echo $$ > {folder / "cgroup.procs"} && exec "$@"', "sh"], peak
    finally:
        time.sleep(1)  # the killed processes leave the cgroup
        folder.rmdir()


def run(command: list[str], prefix: list[str], peak: Path | None) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen(prefix + command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read() if process.stderr else ""
    # wait4's usage, as /usr/bin/time -v reads it: the peak of the command and of each process it waited for.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "exit_code": process.returncode,
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cgroup_peak_mb": round(int(peak.read_text()) / 2**20, 1) if peak else None,
        "last_line": stderr.strip().splitlines()[-1:] if process.returncode else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--limit-gb", type=float)
    parser.add_argument("--folder", type=Path, help="where the image folders are made and kept (default: a temporary one)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as temporary:
        root = args.folder or Path(temporary)
        for count in args.sizes:
            folder = image_folder(root, count, args.image_size)
            config = study_config(root, folder, args.image_size, args.devices)
            vitswin = [sys.executable, "-m", "vitswin.cli", "study", str(config)]
            row = {"images": count, "image_size": args.image_size, "decoded_mb": round(count * 3 * args.image_size**2 / 2**20, 1)}
            for phase in ("decode_and_study", "study"):
                out = root / f"runs-{phase}-{count}"
                shutil.rmtree(out, ignore_errors=True)  # nothing reused but the store, decoded in the first phase
                if phase == "decode_and_study":
                    shutil.rmtree(root / f"cache-{folder.name}", ignore_errors=True)
                with memory_cgroup(args.limit_gb) as (prefix, peak):
                    row[phase] = run([*vitswin, "--out", str(out)], prefix, peak)
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    print(json.dumps({"devices": args.devices, "limit_gb": args.limit_gb, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
