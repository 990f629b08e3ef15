"""`cifar10`: torchvision's CIFAR-10, downloaded into a cache folder or read from a local copy."""

import hashlib
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR10

from vitswin.config import DataConfig
from vitswin.data.imagefolder import has_split_folders, read_split_folders
from vitswin.data.imageset import ImageSet
from vitswin.data.store import STORE_VERSION, build_store
from vitswin.errors import VitswinError


def read_cifar10_source(config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """data.source cifar10: torchvision's files in data.root (downloaded there when missing and data.download), or
    a local copy as train/ and test/ class folders of images."""
    root = Path(config.root).expanduser() if config.root else Path(config.cache_dir).expanduser() / "cifar10"
    if has_split_folders(root):
        return read_split_folders(root, config)
    return read_cifar10(root, config.download, Path(config.cache_dir).expanduser())


def read_cifar10(root: Path, download: bool, cache_dir: Path) -> tuple[ImageSet, ImageSet]:
    """The official train (50,000) and test (10,000) sets, from their decoded image store (written from
    torchvision's files the first time)."""
    try:
        # torchvision verifies the files' checksums before it reads them.
        sets = [CIFAR10(str(root), train=train, download=download) for train in (True, False)]
    except RuntimeError as error:  # files missing or corrupt, download off
        raise VitswinError(
            f"CIFAR-10 is not in {root} ({error}); set data.download=true with internet access, "
            f"or put the official 'cifar-10-batches-py' folder there."
        ) from None
    except OSError as error:  # download failed (offline, proxy, disk)
        raise VitswinError(
            f"CIFAR-10 could not be downloaded into {root} ({error}); connect to the internet or put the "
            f"official 'cifar-10-batches-py' folder there, or use data.source=imagefolder with a local copy."
        ) from None
    return tuple(_stored(dataset, root, cache_dir) for dataset in sets)  # type: ignore[return-value]


def _stored(dataset: CIFAR10, root: Path, cache_dir: Path) -> ImageSet:
    files = sorted((root / dataset.base_folder).iterdir())
    key = f"cifar10|{STORE_VERSION}|{root.resolve()}|{dataset.train}|" + "|".join(
        f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in files
    )
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:20]
    what = "CIFAR-10 " + ("train" if dataset.train else "test")
    size = dataset.data.shape[1]
    store, _ = build_store(cache_dir, fingerprint, dataset.data, dataset.targets, list(dataset.classes), size, as_decoded, what)
    return ImageSet(store.pixels, store.labels, store.class_names, store=store.path)


def as_decoded(pixels: np.ndarray, image_size: int) -> np.ndarray:
    """A decoder for images that are decoded already (torchvision's arrays, (32, 32, 3) uint8)."""
    return pixels
