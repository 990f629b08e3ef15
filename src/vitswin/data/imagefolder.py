"""`imagefolder`: any folder of class subfolders, decoded once into a decoded image store (`vitswin.data.store`).

Layouts: `root/train/<class>/*` and `root/test/<class>/*`, or `root/<class>/*` (split by the tool).
Every image is converted to RGB (grayscale, RGBA, palette, 16-bit) and resized to a square of
`image_size`. The store is keyed by the files' names, sizes and times, so a second run does not decode the
images again.
"""

import hashlib
import io
import logging
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from vitswin.config import DataConfig
from vitswin.data.imageset import ImageSet
from vitswin.data.store import STORE_VERSION, build_store
from vitswin.errors import VitswinError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def has_split_folders(root: Path) -> bool:
    """Whether `root` holds separate train/ and test/ folders."""
    return (root / "train").is_dir() and (root / "test").is_dir()


def class_folders(root: Path) -> list[str]:
    """The class names under `root`: its visible subfolders, sorted."""
    if not root.is_dir():
        raise VitswinError(f"data folder {root} does not exist; set data.root to a folder of class subfolders.")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise VitswinError(f"data folder {root} has no class subfolders; put the images in {root}/<class name>/.")
    for name in names:
        # Not printable covers names that are not valid in the file system's encoding (Python's surrogates). A class
        # name is shown in every table and figure; an image's own file name never is.
        if not name.isprintable():
            raise VitswinError(
                f"class folder {name!a} in {root} has a name that is not printable text; rename it "
                f"(image files with such names are read as they are)."
            )
    return names


def check_same_classes(train: list[str], test: list[str]) -> None:
    """Fail with the differing names when train and test do not hold the same classes."""
    if train != test:
        only_train = sorted(set(train) - set(test)) or ["none"]
        only_test = sorted(set(test) - set(train)) or ["none"]
        raise VitswinError(
            f"class folders differ between train and test (only in train: {', '.join(only_train)}; "
            f"only in test: {', '.join(only_test)}); make both folders hold the same classes."
        )


def read_folder_source(config: DataConfig) -> tuple[ImageSet, ImageSet | None]:
    """data.source imagefolder: train/ and test/ class folders under data.root, or class folders alone (no test set:
    the caller holds data.test_split out)."""
    root = Path(config.root).expanduser()
    if has_split_folders(root):
        return read_split_folders(root, config)
    return read_image_folder(root, config.image_size, Path(config.cache_dir).expanduser(), config.bad_images == "skip"), None


def read_split_folders(root: Path, config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """The train/ and test/ class folders under `root`, which must hold the same classes."""
    check_same_classes(class_folders(root / "train"), class_folders(root / "test"))
    cache_dir, skip_bad = Path(config.cache_dir).expanduser(), config.bad_images == "skip"
    return (
        read_image_folder(root / "train", config.image_size, cache_dir, skip_bad),
        read_image_folder(root / "test", config.image_size, cache_dir, skip_bad),
    )


def read_image_folder(root: Path, image_size: int, cache_dir: Path, skip_bad: bool) -> ImageSet:
    """Every image under `root/<class>/`, from its decoded store (decoded first when the files changed)."""
    classes = class_folders(root)
    files, labels = [], []
    for index, name in enumerate(classes):
        members = sorted(
            p
            for p in (root / name).rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
        if not members:
            raise VitswinError(f"class folder {root / name} holds no images; add images to it or remove it.")
        files += members
        labels += [index] * len(members)

    fingerprint = _fingerprint(root, files, image_size)
    return stored_images(
        cache_dir, fingerprint, files, [str(path) for path in files], labels, classes, image_size, skip_bad, root.name
    )


def stored_images(
    cache_dir: Path,
    fingerprint: str,
    sources: list[Path | bytes],
    names: list[str],
    labels: list[int],
    classes: list[str],
    image_size: int,
    skip_bad: bool,
    what: str,
) -> ImageSet:
    """Image files (paths, or the files' bytes) as an ImageSet read from their decoded store (decoded first when
    there is none, with a progress bar labelled `what`). An unreadable image is named in one sentence, or skipped
    and counted when `skip_bad`."""
    store, bad = build_store(cache_dir, fingerprint, sources, labels, classes, image_size, decode_image, what)
    if bad:
        first, reason = names[bad[0][0]], bad[0][1]
        others = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        if not skip_bad:
            raise VitswinError(
                f"{first} is not a readable image ({reason}){others}; replace or delete it, "
                f"or set data.bad_images=skip to skip unreadable files."
            )
        log.warning("skipped %d unreadable image file(s) in %s, first: %s (%s)", len(bad), what, first, reason)
    rows = store.readable_rows()
    return ImageSet(store.pixels, store.labels[rows], classes, rows=rows, skipped=len(bad), store=store.path)


def decode_image(source: Path | bytes, image_size: int) -> np.ndarray:
    """One image file (a path, or its bytes) as RGB uint8 (image_size, image_size, 3); ValueError with the reason
    when it cannot be read."""
    try:
        return load_rgb(io.BytesIO(source) if isinstance(source, bytes) else source, image_size)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(str(error).split("\n")[0] or type(error).__name__) from None


def load_rgb(path: Path | BinaryIO, image_size: int) -> np.ndarray:
    """One image file (a path or an open binary file) as an RGB uint8 array (image_size, image_size, 3), whatever
    its mode and size."""
    with Image.open(path) as image:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            # 16-bit and float images: scale the full range to 8 bits (PIL's convert would clip at 255).
            values = np.asarray(image, dtype=np.float64)
            top = 65535.0 if values.max() > 255 else 255.0
            image = Image.fromarray((values.clip(0, top) * (255 / top)).astype(np.uint8))
        image = image.convert("RGB")
        if image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(image)


def _fingerprint(root: Path, files: list[Path], image_size: int) -> str:
    digest = hashlib.sha256(f"imagefolder|{STORE_VERSION}|{root.resolve()}|{image_size}".encode())
    for path in files:
        stat = path.stat()
        # os.fsencode: a file name that is not valid UTF-8 is hashed as the bytes it has on disk.
        digest.update(b"|" + os.fsencode(path.relative_to(root)) + f"|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]
