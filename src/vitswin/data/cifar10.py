"""`cifar10`: torchvision's CIFAR-10, downloaded into a cache folder or read from a local copy."""

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10

from vitswin.config import DataConfig
from vitswin.data.imagefolder import has_split_folders, read_split_folders
from vitswin.data.imageset import ImageSet
from vitswin.errors import VitswinError


def read_cifar10_source(config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """data.source cifar10: torchvision's files in data.root (downloaded there when missing and data.download), or
    a local copy as train/ and test/ class folders of images."""
    root = Path(config.root).expanduser() if config.root else Path(config.cache_dir).expanduser() / "cifar10"
    if has_split_folders(root):
        return read_split_folders(root, config)
    return read_cifar10(root, config.download)


def read_cifar10(root: Path, download: bool) -> tuple[ImageSet, ImageSet]:
    """The official train (50,000) and test (10,000) sets as resident uint8 ImageSets."""
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
    return tuple(
        ImageSet(
            images=torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(),
            labels=torch.tensor(dataset.targets, dtype=torch.long),
            class_names=list(dataset.classes),
        )
        for dataset in sets
    )
