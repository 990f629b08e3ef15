"""`hf`: a Hugging Face `datasets` dataset, by hub name or from a local copy (a save_to_disk folder, parquet or
arrow files), decoded once into a decoded image store like image folders.

Images are read from the files' bytes with the same conversions as the imagefolder source (any mode to RGB,
resized to data.image_size), so an unreadable image is named or skipped by the same rule.
"""

import contextlib
import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vitswin.config import DataConfig, HFConfig
from vitswin.data.imagefolder import stored_images
from vitswin.data.imageset import ImageSet
from vitswin.data.store import STORE_VERSION
from vitswin.errors import VitswinError

_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}


def read_hf_source(config: DataConfig) -> tuple[ImageSet, ImageSet | None]:
    """data.source hf: the dataset data.hf names, its train split and (where it has one) its test split."""
    return read_hf(config.hf, config.image_size, Path(config.cache_dir).expanduser(), config.bad_images == "skip")


def read_hf(config: HFConfig, image_size: int, cache_dir: Path, skip_bad: bool) -> tuple[ImageSet, ImageSet | None]:
    """The configured dataset's train split and its test split (None when it has none: the caller splits train)."""
    if importlib.util.find_spec("datasets") is None:
        raise VitswinError("data.source hf needs the datasets package; pip install 'vitswin[hf]'.")
    splits = _open(config, cache_dir)
    if config.train not in splits:
        raise VitswinError(
            f"the dataset {config.path} has no split '{config.train}' (it has: {', '.join(splits)}); set data.hf.train."
        )
    train = splits[config.train]
    test = splits[config.test] if config.test and config.test in splits else None
    image_column, label_column = _columns(config, train)
    classes = _class_names(train, label_column, test)
    return tuple(  # type: ignore[return-value]
        None if part is None else _decode(part, name, image_column, label_column, classes, image_size, cache_dir, skip_bad)
        for name, part in ((config.train, train), (config.test, test))
    )


def _open(config: HFConfig, cache_dir: Path) -> dict[str, Any]:
    """The dataset's splits by name."""
    import datasets

    path = Path(config.path).expanduser()
    try:
        # Local files are read in seconds: datasets' "Generating split" bars would only come before our own decoding
        # bar, or before a sentence about the dataset. A download from the hub keeps its bars.
        with _quiet_datasets() if path.exists() else contextlib.nullcontext():
            loaded = _load(config, path, cache_dir)
    except VitswinError:
        raise
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        where = "read" if path.exists() else "found in the local cache or downloaded"
        raise VitswinError(
            f"the Hugging Face dataset {config.path} could not be {where} ({reason}); connect to the internet once to "
            f"fill the cache, or save the dataset with save_to_disk (or as parquet files) and set data.hf.path to it."
        ) from None
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {config.train: loaded}


def _load(config: HFConfig, path: Path, cache_dir: Path) -> Any:
    """The dataset or dataset dict at `path` (a save_to_disk folder, a parquet or arrow file or folder of them), else
    the hub dataset `config.path`."""
    import datasets

    if path.is_dir() and any((path / name).is_file() for name in ("dataset_dict.json", "dataset_info.json", "state.json")):
        return datasets.load_from_disk(str(path))
    if path.is_file() and path.suffix in _FILE_BUILDERS:
        return datasets.load_dataset(_FILE_BUILDERS[path.suffix], data_files=str(path), cache_dir=str(cache_dir / "hf"))
    if path.is_dir():
        builders = {_FILE_BUILDERS[p.suffix] for p in path.rglob("*") if p.suffix in _FILE_BUILDERS}
        if len(builders) != 1:
            raise VitswinError(
                f"{path} holds no dataset vitswin can read (a save_to_disk folder, or parquet or arrow files); "
                f"set data.hf.path to one."
            )
        return datasets.load_dataset(builders.pop(), data_dir=str(path), cache_dir=str(cache_dir / "hf"))
    return datasets.load_dataset(config.path, config.name, cache_dir=str(cache_dir / "hf"))


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """datasets' progress bars off for the block, as they were after it."""
    import datasets

    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


def _columns(config: HFConfig, dataset: Any) -> tuple[str, str]:
    """The image column and the label column: as configured, else detected from the features."""
    import datasets

    features = dataset.features
    image = config.image_column or next((k for k, f in features.items() if isinstance(f, datasets.Image)), None)
    image = image or next((k for k, f in features.items() if _holds_image_bytes(f)), None)
    label = config.label_column or next((k for k, f in features.items() if isinstance(f, datasets.ClassLabel)), None)
    label = label or next((k for k in ("label", "labels") if k in features), None)
    for kind, column in (("image", image), ("label", label)):
        if column is None or column not in features:
            described = f"has no column '{column}'" if column else f"has no {kind} column vitswin recognises"
            raise VitswinError(
                f"the dataset {config.path} {described} (its columns: {', '.join(features)}); set data.hf.{kind}_column."
            )
    return image, label  # type: ignore[return-value]


def _holds_image_bytes(feature: Any) -> bool:
    """A column of encoded image files that is not typed as an image: raw bytes (parquet written by pandas or
    pyarrow), or the {bytes, path} struct an Image column is stored as; datasets casts either to an Image."""
    import datasets

    if isinstance(feature, datasets.Value):
        return feature.dtype in ("binary", "large_binary")
    return isinstance(feature, dict) and "bytes" in feature and "path" in feature


def _class_names(train: Any, label_column: str, test: Any | None) -> list[str]:
    """Class names from a ClassLabel feature, else the sorted distinct labels of both splits."""
    import datasets

    feature = train.features[label_column]
    splits = [(split, dataset) for split, dataset in (("train", train), ("test", test)) if dataset is not None]
    for split, dataset in splits:
        _check_labels(dataset, label_column, split)
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    first_of_type: dict[str, str] = {}  # label type -> the first row holding one
    for split, dataset in splits:
        for row, label in enumerate(dataset[label_column]):
            first_of_type.setdefault(type(label).__name__, f"{split} row {row}")
    if len(first_of_type) > 1:
        kinds = "; ".join(f"{kind} from {row}" for kind, row in first_of_type.items())
        raise VitswinError(
            f"the labels in column '{label_column}' are of more than one type ({kinds}); make every label of both "
            f"splits one type (all text, or all integers)."
        )
    values = set().union(*(dataset[label_column] for _, dataset in splits))
    return [str(value) for value in sorted(values)]


def _check_labels(dataset: Any, label_column: str, split: str) -> None:
    """One sentence naming the rows whose label is missing (None, or -1: a ClassLabel column's missing value)."""
    missing = [row for row, label in enumerate(dataset[label_column]) if label is None or label == -1]
    if missing:
        rows = ", ".join(map(str, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise VitswinError(
            f"the {split} split has no label in column '{label_column}' for row{'s' * (len(missing) > 1)} {rows}; "
            f"label them, or leave those rows out of the dataset."
        )


def _decode(
    dataset: Any,
    split: str,
    image_column: str,
    label_column: str,
    classes: list[str],
    image_size: int,
    cache_dir: Path,
    skip_bad: bool,
) -> ImageSet:
    import datasets

    key = f"hf|{STORE_VERSION}|{dataset._fingerprint}|{image_column}|{label_column}|{classes}|{image_size}"
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:20]
    # The files' bytes, not datasets' decoded PIL images: one decoder and one rule for unreadable images.
    raw = dataset.cast_column(image_column, datasets.Image(decode=False))
    sources, names, labels = [], [], []
    ids = {name: index for index, name in enumerate(classes)}
    is_class_label = isinstance(dataset.features[label_column], datasets.ClassLabel)
    for row, (image, label) in enumerate(zip(raw[image_column], raw[label_column], strict=True)):
        if image is None or not (image.get("bytes") or image.get("path")):
            sources.append(b"")
        else:
            sources.append(image["bytes"] if image.get("bytes") else Path(image["path"]))
        names.append(f"{split} row {row}" + (f" ({image['path']})" if image and image.get("path") else ""))
        labels.append(int(label) if is_class_label else ids[str(label)])
    return stored_images(cache_dir, fingerprint, sources, names, labels, classes, image_size, skip_bad, f"{split} split")
