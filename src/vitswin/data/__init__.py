"""Data: every source yields resident uint8 ImageSets; `load_data` adds the size limits and validation split."""

from dataclasses import dataclass, replace
from pathlib import Path

from vitswin.config import DataConfig
from vitswin.data.cifar10 import read_cifar10
from vitswin.data.hf import read_hf
from vitswin.data.imagefolder import check_same_classes, class_folders, has_split_folders, read_image_folder
from vitswin.data.imageset import ImageSet
from vitswin.data.shapes import make_shapes
from vitswin.data.splits import stratified_split
from vitswin.errors import VitswinError

__all__ = ["DataSplits", "ImageSet", "load_data", "read_source"]

SHAPES_DEFAULT_SIZES = (10_000, 2_000)  # train, test images generated when no size is configured


@dataclass(frozen=True)
class DataSplits:
    """Train, validation and test sets; `val_is_test` when the test set also selects the checkpoint."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    val_is_test: bool

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    @property
    def skipped_images(self) -> int:
        """Unreadable image files of the source left out (data.bad_images=skip)."""
        return self.train.skipped + self.test.skipped


def read_source(config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """The (train, test) sets of the configured source, before size limits and validation split."""
    seed = config.seed
    if config.source == "shapes":
        train_size = config.train_size or SHAPES_DEFAULT_SIZES[0]
        test_size = config.test_size or SHAPES_DEFAULT_SIZES[1]
        # Separate streams for train and test, so no data seed's test images are another's training images.
        return make_shapes(train_size, config.image_size, 2 * seed), make_shapes(test_size, config.image_size, 2 * seed + 1)
    cache_dir = Path(config.cache_dir).expanduser()
    skip_bad = config.bad_images == "skip"
    if config.source == "hf":
        train, test = read_hf(config.hf, config.image_size, cache_dir, skip_bad)
        return (train, test) if test is not None else split_for_test(train, config)
    root = Path(config.root).expanduser() if config.root else cache_dir / "cifar10"
    if config.source == "cifar10" and not has_split_folders(root):
        return read_cifar10(root, config.download)
    # An image folder, or a local copy of CIFAR-10 as train/ and test/ class folders of images.
    if has_split_folders(root):
        check_same_classes(class_folders(root / "train"), class_folders(root / "test"))
        return (
            read_image_folder(root / "train", config.image_size, cache_dir, skip_bad),
            read_image_folder(root / "test", config.image_size, cache_dir, skip_bad),
        )
    return split_for_test(read_image_folder(root, config.image_size, cache_dir, skip_bad), config)


def split_for_test(everything: ImageSet, config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """A source without a test set of its own: data.test_split of it (stratified, data seed) becomes the test set."""
    train_idx, test_idx = stratified_split(everything.labels, config.test_split, config.seed)
    # Both parts come from one read: its skipped files are counted once, with the training part.
    return everything.subset(train_idx), replace(everything.subset(test_idx), skipped=0)


def load_data(config: DataConfig) -> DataSplits:
    """Read the configured data and split it into train, validation and test sets (stratified, seeded by
    `config.seed`: the same for every training seed of a study)."""
    seed = config.seed
    train, test = read_source(config)
    if config.source != "shapes":  # shapes already generated exactly the sizes asked for
        if config.train_size and config.train_size < len(train):
            train = train.subset(stratified_split(train.labels, config.train_size, seed)[1])
        if config.test_size and config.test_size < len(test):
            test = test.subset(stratified_split(test.labels, config.test_size, seed)[1])
    if config.val_split == "test":
        splits = DataSplits(train=train, val=test, test=test, val_is_test=True)
    else:
        train_idx, val_idx = stratified_split(train.labels, config.val_split, seed)
        splits = DataSplits(train=train.subset(train_idx), val=train.subset(val_idx), test=test, val_is_test=False)
    check_usable(splits)
    return splits


def check_usable(splits: DataSplits) -> None:
    """Refuse data no classifier can be trained and selected on, before anything is written."""
    if len(splits.class_names) < 2:
        raise VitswinError(
            f"the data has a single class ({splits.class_names[0]!r}); a classifier needs images of at least two "
            f"classes, one class folder each."
        )
    sizes = {"training": len(splits.train), "validation": len(splits.val), "test": len(splits.test)}
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        counts = ", ".join(f"{size} {name}" for name, size in sizes.items())
        raise VitswinError(
            f"the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty ({counts} images); "
            f"raise data.train_size or data.test_size, or lower data.val_split."
        )
