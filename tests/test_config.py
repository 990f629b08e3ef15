"""Config: the shipped files, overrides, and one clear sentence for every bad key or value."""

import re
from pathlib import Path

import pytest

from conftest import CONFIGS
from vitswin.config import CIFAR10_MEAN, CIFAR10_STD, load_config, to_yaml, validate_config
from vitswin.errors import VitswinError


def test_seed_config_matches_the_published_tables() -> None:
    config = load_config(CONFIGS / "seed-cifar10.yaml")
    assert config.data.source == "cifar10"
    assert config.data.mean == (0.4914, 0.4822, 0.4465) and config.data.std == (0.2470, 0.2435, 0.2616)
    assert config.data.val_split == "test"  # the published protocol
    vit, swin = config.models["vit"], config.models["swin"]
    assert (vit.name, swin.name) == ("vit_base_patch16_224", "swin_base_patch4_window7_224")
    assert vit.pretrained == swin.pretrained == "hub"
    assert vit.input_size == swin.input_size == 224
    assert vit.head_dropout == 0.0 and swin.head_dropout == 0.2
    published = {  # SEED_STUDY.md, training recipe table
        "vit": dict(lr=5e-5, weight_decay=0.01, label_smoothing=0.0, scheduler="cosine"),
        "swin": dict(lr=1e-4, weight_decay=0.001, label_smoothing=0.1, scheduler="plateau"),
    }
    for key, values in published.items():
        recipe = config.models[key].train
        for field, value in values.items():
            assert getattr(recipe, field) == value, (key, field)
        assert recipe.batch_size == 32 and recipe.max_epochs == 50
        # The published min delta 0.001 is in percentage points (tests/test_training.py replays the published log).
        assert recipe.patience == 5 and recipe.min_delta == pytest.approx(0.001 / 100) and recipe.grad_clip == 1.0
    # Augmentation for Swin only: flip, colour jitter, random affine.
    assert not vit.augment.hflip and not vit.augment.colour_jitter and not vit.augment.affine
    assert swin.augment.hflip and swin.augment.colour_jitter and swin.augment.affine
    assert swin.augment.brightness > 0 and swin.augment.contrast > 0 and swin.augment.saturation > 0


def test_default_and_cpu_configs_load() -> None:
    default = load_config()
    assert default.data.source == "shapes" and set(default.models) == {"vit", "swin"}
    assert all(model.pretrained == "none" for model in default.models.values())
    cpu = load_config(CONFIGS / "cpu-cifar10.yaml")
    assert cpu.data.mean == CIFAR10_MEAN and cpu.data.std == CIFAR10_STD
    assert all(model.input_size == 32 for model in cpu.models.values())


def test_overrides_set_nested_values_with_yaml_types() -> None:
    config = load_config(None, ["models.swin.train.lr=2e-4", "data.val_split=test", "models.vit.options.depth=2"])
    assert config.models["swin"].train.lr == 2e-4
    assert config.data.val_split == "test"
    assert config.models["vit"].options["depth"] == 2
    counts = load_config(None, ["devices=auto", "jobs=auto"]), load_config(None, ["devices=2", "jobs=3"])
    assert [(c.devices, c.jobs) for c in counts] == [("auto", "auto"), (2, 3)]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("models.swin.train.lrr=1", "unknown config key 'models.swin.train.lrr'; did you mean 'lr'?"),
        ("dataa.source=shapes", "unknown config key 'dataa'; did you mean 'data'?"),
        ("explain.rod=false", "unknown config key 'explain.rod'; did you mean 'road'?"),
        ("explain.images=0", "config key 'explain.images' has bad value 0: input should be greater than 0."),
        ("jobs=0", "config key 'jobs' has bad value 0: must be a whole number of at least 1, or 'auto'."),
        ("devices=all", "config key 'devices' has bad value 'all': must be a whole number of at least 1, or 'auto'."),
        ("models.vit.train.lr=-0.1", "config key 'models.vit.train.lr' has bad value -0.1: input should be greater than 0."),
        (
            "models.vit.train.scheduler=step",
            "config key 'models.vit.train.scheduler' has bad value 'step': input should be 'cosine', 'plateau' or 'none'.",
        ),
        (
            "data.val_split=1.5",
            "config key 'data.val_split' has bad value 1.5: must be a fraction between 0 and 1, "
            "or 'test' to validate on the test set.",
        ),
        ("models.vit.train.batch_size=many", "config key 'models.vit.train.batch_size' has bad value 'many'"),
        (
            "models.vit.pretrained=/no/such/file.pth",
            "config key 'models.vit.pretrained' has bad value '/no/such/file.pth': must be 'hub', 'none' or the path",
        ),
        (
            "primary=speed",
            "config key 'primary' has bad value 'speed': input should be 'accuracy', 'calibration', 'train_speed', "
            "'inference_speed', 'top10_share', 'deletion_auc' or 'pointing_hit'.",
        ),
        ("lr", "override 'lr' is not of the form key=value"),
    ],
)
def test_bad_overrides_give_one_sentence(override: str, message: str) -> None:
    with pytest.raises(VitswinError) as error:
        load_config(None, [override])
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_models_must_not_be_empty_and_are_required() -> None:
    with pytest.raises(VitswinError, match="config section 'models' is invalid: must name at least one model."):
        validate_config({"models": {}})
    with pytest.raises(VitswinError, match="config key 'models' is required"):
        validate_config({})


def test_unparsable_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("models:\n  vit: [unclosed\n")
    with pytest.raises(VitswinError, match=r"broken.yaml is not valid YAML at line \d+; fix its syntax."):
        load_config(broken)
    with pytest.raises(VitswinError, match="config file .*nothing.yaml does not exist"):
        load_config(tmp_path / "nothing.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(VitswinError, match="must hold a mapping of keys to values, not list"):
        load_config(listing)


def test_imagefolder_needs_a_root() -> None:
    with pytest.raises(VitswinError, match="data.root must name the image folder"):
        load_config(None, ["data.source=imagefolder"])


def test_a_models_input_size_is_input_size_and_the_old_key_still_reads() -> None:
    """The model's input size and the stored image size used to share the name image_size; run folders written
    then must still load, and as the same config."""
    raw = {"models": {"vit": {"name": "vit_tiny_patch16_224", "input_size": 48}}}
    old = {"models": {"vit": {"name": "vit_tiny_patch16_224", "image_size": 48}}}
    assert validate_config(raw) == validate_config(old)
    assert validate_config(old).models["vit"].input_size == 48 and validate_config(old).data.image_size == 32
    assert "input_size: 48" in to_yaml(validate_config(old))
    with pytest.raises(VitswinError, match="has bad value 0"):
        validate_config({"models": {"vit": {"name": "vit_tiny_patch16_224", "input_size": 0}}})


@pytest.mark.parametrize(
    ("override", "sentence"),
    [
        ("seeds=[100000000000000000000]", "seeds must be whole numbers from 0 to 4294967295"),
        ("seeds=[18446744073709551616]", "seeds must be whole numbers from 0 to 4294967295"),
        ("seeds=[-1]", "seeds must be whole numbers from 0 to 4294967295"),
        ("data.seed=4294967296", "'data.seed' has bad value 4294967296: input should be less than or equal to 4294967295"),
        ("explain.seed=4294967296", "'explain.seed' has bad value 4294967296"),
    ],
)
def test_a_seed_no_generator_accepts_is_one_sentence_before_anything_runs(override: str, sentence: str) -> None:
    with pytest.raises(VitswinError, match=re.escape(sentence)):
        load_config(None, [override])
