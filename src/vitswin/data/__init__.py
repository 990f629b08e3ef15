"""Data: every source yields uint8 ImageSets (read from a decoded image store, or made in memory); `load_data` adds
the size limits and validation split."""

from dataclasses import dataclass, replace
from pathlib import Path

from vitswin.config import DataConfig
from vitswin.data.imageset import ImageSet
from vitswin.data.splits import nested_subset, stratified_split
from vitswin.errors import VitswinError
from vitswin.registry import SOURCES, resolve

__all__ = ["DataSplits", "ImageSet", "load_data", "read_source"]


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

    def training_images(self, size: int | float | None, key: str) -> int:
        """How many training images `size` (a count, a fraction of the training split, None: all) is for run `key`;
        one sentence when the subset could not hold every class or the split has fewer images."""
        if size is None:
            return len(self.train)
        count = round(size * len(self.train)) if isinstance(size, float) else size
        classes = len(self.class_names)
        if not classes <= count <= len(self.train):
            raise VitswinError(
                f"run {key} asks for {count} training images, but the training split has {len(self.train)} and the "
                f"data {classes} classes; choose train_sizes between {classes} and {len(self.train)} (or fractions)."
            )
        return count

    def with_training_subset(self, size: int | float | None, seed: int) -> "DataSplits":
        """These splits with the training set cut to a nested, stratified subset of `size` images (None: as is)."""
        if size is None:
            return self
        count = self.training_images(size, "")
        return replace(self, train=self.train.subset(nested_subset(self.train.labels, count, seed)))

    @property
    def stores(self) -> list[dict[str, object]]:
        """The decoded image stores the sets are read from (none for data made in memory): folder, fingerprint
        and bytes of images."""
        folders = sorted({part.store for part in (self.train, self.val, self.test) if part.store is not None})
        return [
            {"path": str(folder), "fingerprint": folder.name.removeprefix("store-"), "bytes": _store_bytes(folder)}
            for folder in folders
        ]

    @property
    def skipped_images(self) -> int:
        """Unreadable image files of the source left out (data.bad_images=skip)."""
        return self.train.skipped + self.test.skipped


def _store_bytes(folder: Path) -> int:
    return (folder / "images.npy").stat().st_size


def read_source(config: DataConfig) -> tuple[ImageSet, ImageSet]:
    """The (train, test) sets of the configured source (vitswin.registry.SOURCES), before size limits and
    validation split; a source without a test set of its own gives data.test_split of its images to test."""
    train, test = resolve(SOURCES[config.source].read)(config)
    return (train, test) if test is not None else split_for_test(train, config)


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
    # A source that made exactly the sizes asked for (shapes generates them) is left as it is.
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
