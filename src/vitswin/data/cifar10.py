"""`cifar10`: torchvision's CIFAR-10, downloaded into a cache folder or read from a local copy."""

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10

from vitswin.data.imageset import ImageSet
from vitswin.errors import VitswinError


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
