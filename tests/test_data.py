"""Data: synthetic shapes, image folders (odd files included), CIFAR-10, splits and the disk cache."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CIFAR10_JPG, make_image_folder, write_image
from vitswin.config import DataConfig
from vitswin.data import imagefolder as imagefolder_module
from vitswin.data import load_data, read_source
from vitswin.data.shapes import CLASS_NAMES, make_shapes
from vitswin.data.splits import stratified_split
from vitswin.errors import VitswinError


def folder_config(root: Path, tmp_path: Path, **extra: object) -> DataConfig:
    return DataConfig(source="imagefolder", root=str(root), image_size=8, cache_dir=str(tmp_path / "cache"), **extra)


def test_shapes_are_deterministic_balanced_and_masked() -> None:
    first, again, other = make_shapes(200, 32, seed=3), make_shapes(200, 32, seed=3), make_shapes(200, 32, seed=4)
    assert torch.equal(first.images, again.images) and torch.equal(first.masks, again.masks)
    assert not torch.equal(first.images, other.images)
    assert first.images.shape == (200, 3, 32, 32) and first.images.dtype == torch.uint8
    assert first.class_names == list(CLASS_NAMES)
    assert torch.bincount(first.labels, minlength=10).tolist() == [20] * 10
    area = first.masks.float().mean((1, 2))
    assert bool((area > 0.02).all()) and bool((area < 0.6).all())  # every image has an object, none fills it


def test_shapes_class_is_not_readable_from_colour_or_background() -> None:
    # Nearest class-mean classifier on per-image colour statistics (object and background alike):
    # if colour carried the class, this would score far above the 10 % chance level.
    train, test = make_shapes(2000, 32, seed=0), make_shapes(1000, 32, seed=1)

    def colour_features(images: torch.Tensor) -> torch.Tensor:
        pixels = images.float().flatten(2) / 255
        return torch.cat([pixels.mean(2), pixels.std(2)], 1)

    features = colour_features(train.images)
    centroids = torch.stack([features[train.labels == c].mean(0) for c in range(10)])
    predicted = torch.cdist(colour_features(test.images), centroids).argmin(1)
    assert (predicted == test.labels).float().mean() < 0.2


def test_object_mask_marks_where_the_object_differs_from_background() -> None:
    shapes = make_shapes(50, 32, seed=0)
    for image, mask in zip(shapes.images.float(), shapes.masks, strict=True):
        inside = image[:, mask].mean(1)
        outside = image[:, ~mask].mean(1)
        assert (inside - outside).abs().sum() > 60  # object and background come from opposite halves


def test_stratified_split_is_disjoint_complete_and_proportional() -> None:
    labels = torch.arange(1000) % 10
    kept, held = stratified_split(labels, 0.1, seed=0)
    assert len(held) == 100 and len(kept) == 900
    assert not set(kept.tolist()) & set(held.tolist())
    assert sorted(kept.tolist() + held.tolist()) == list(range(1000))
    assert torch.bincount(labels[held], minlength=10).tolist() == [10] * 10
    assert torch.equal(held, stratified_split(labels, 0.1, seed=0)[1])
    assert not torch.equal(held, stratified_split(labels, 0.1, seed=1)[1])
    uneven = torch.tensor([0] * 70 + [1] * 30)
    assert torch.bincount(uneven[stratified_split(uneven, 10, seed=0)[1]]).tolist() == [7, 3]


def test_load_data_holds_out_validation_or_uses_test() -> None:
    config = DataConfig(train_size=500, test_size=100, image_size=16)
    splits = load_data(config)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (450, 50, 100)
    assert not splits.val_is_test
    train_rows = {bytes(image.numpy()) for image in splits.train.images}
    assert not any(bytes(image.numpy()) in train_rows for image in splits.val.images)
    same = load_data(config.model_copy(update={"val_split": "test"}))
    assert same.val_is_test and same.val is same.test and len(same.train) == 500


def test_imagefolder_converts_every_mode_and_size(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_image(root / "a" / "grey.png", "L", (5, 9))
    write_image(root / "a" / "rgba.png", "RGBA", (40, 20))
    write_image(root / "a" / "palette.gif", "P", (8, 8))
    write_image(root / "b" / "deep.png", "I;16", (7, 7))
    write_image(root / "b" / "tiny.jpg", "RGB", (1, 1))
    write_image(root / "b" / "wide.bmp", "RGB", (300, 17))
    from PIL import Image

    Image.new("RGB", (6000, 4000), (200, 30, 30)).save(root / "a" / "huge.png")  # 24 megapixels
    (root / "b" / "notes.txt").write_text("not an image, and not named like one: ignored")
    train, test = read_source(folder_config(root, tmp_path, test_split=0.5))
    assert train.class_names == ["a", "b"]
    assert len(train) + len(test) == 7
    assert train.images.shape[1:] == (3, 8, 8) and train.images.dtype == torch.uint8
    everything = torch.cat([train.images, test.images])
    assert everything.float().std() > 10  # real pixel content, not zeros


def test_sixteen_bit_images_keep_their_range(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    from PIL import Image

    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(path)
    assert imagefolder_module.load_rgb(path, 4).min() == 255  # white stays white, not clipped garbage


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n truncated", b"plain text with an image name"])
def test_unreadable_image_is_named_or_skipped(tmp_path: Path, content: bytes) -> None:
    root = make_image_folder(tmp_path / "images")
    bad = root / "dog" / "broken.jpg"
    bad.write_bytes(content)
    with pytest.raises(VitswinError, match=r"broken.jpg is not a readable image .*set data.bad_images=skip"):
        read_source(folder_config(root, tmp_path))
    train, test = read_source(folder_config(root, tmp_path, bad_images="skip"))
    assert len(train) + len(test) == 8  # the 8 good images, the bad one skipped


def test_truncated_jpeg_is_reported(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "images")
    good = write_image(root / "cat" / "big.jpg", "RGB", (64, 64))
    good.write_bytes(good.read_bytes()[:200])
    with pytest.raises(VitswinError, match="big.jpg is not a readable image"):
        read_source(folder_config(root, tmp_path))


def test_folder_problems_give_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(VitswinError, match=r"data folder .*missing does not exist; set data.root"):
        read_source(folder_config(tmp_path / "missing", tmp_path))
    (tmp_path / "flat").mkdir()
    with pytest.raises(VitswinError, match="has no class subfolders"):
        read_source(folder_config(tmp_path / "flat", tmp_path))
    root = make_image_folder(tmp_path / "images")
    (root / "empty").mkdir()
    with pytest.raises(VitswinError, match=r"class folder .*empty holds no images; add images to it or remove it."):
        read_source(folder_config(root, tmp_path))


def test_train_and_test_classes_must_match(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "set" / "train", ("cat", "dog", "owl"))
    make_image_folder(tmp_path / "set" / "test", ("cat", "dog", "emu"))
    with pytest.raises(
        VitswinError,
        match=r"class folders differ between train and test \(only in train: owl; "
        r"only in test: emu\); make both folders hold the same classes.",
    ):
        read_source(folder_config(tmp_path / "set", tmp_path))


def test_decoded_folder_is_cached_until_files_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_image_folder(tmp_path / "set" / "train")
    make_image_folder(tmp_path / "set" / "test")
    config = folder_config(tmp_path / "set", tmp_path)
    first = read_source(config)

    def no_decoding(path: Path, size: int) -> np.ndarray:
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(imagefolder_module, "load_rgb", no_decoding)
    second = read_source(config)
    assert torch.equal(first[0].images, second[0].images) and torch.equal(first[1].labels, second[1].labels)
    changed = tmp_path / "set" / "train" / "cat" / "0.png"
    os.utime(changed, ns=(0, 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        read_source(config)


def test_cifar10_without_files_or_network_says_how_to_get_them(tmp_path: Path) -> None:
    config = DataConfig(source="cifar10", root=str(tmp_path / "nothing"), download=False)
    with pytest.raises(VitswinError, match=r"CIFAR-10 is not in .*nothing .*set data.download=true"):
        read_source(config)


def test_cifar10_reads_the_official_batch_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    for name in names:
        batch = {"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    # Our files are not the real ones, so their checksums differ from torchvision's.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args: True)
    train, test = read_source(DataConfig(source="cifar10", root=str(tmp_path / "cifar"), download=False))
    assert (len(train), len(test)) == (20, 4)
    assert train.images.shape == (20, 3, 32, 32) and train.class_names[0] == "c0"
    first_batch = pickle.loads((folder / "data_batch_1").read_bytes())
    assert train.images[0, 0, 0, 0] == first_batch["data"][0, 0]


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR10_JPG.is_dir(), reason="the shared CIFAR-10 JPEG copy is not on this machine")
def test_real_cifar10_jpegs_through_the_cifar10_source(tmp_path: Path) -> None:
    config = DataConfig(source="cifar10", root=str(CIFAR10_JPG), cache_dir=str(tmp_path / "cache"))
    splits = load_data(config)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (45_000, 5_000, 10_000)
    assert splits.class_names == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert torch.bincount(splits.val.labels).tolist() == [500] * 10
