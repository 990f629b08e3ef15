"""The classifier factory and the learning-rate schedule."""

import math
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import tiny_study
from vitswin.config import validate_config
from vitswin.model.classifier import build_classifier, warmup_cosine


def test_warmup_then_half_a_cosine_to_zero() -> None:
    factors = [warmup_cosine(step, warmup_steps=2, total_steps=10) for step in range(12)]
    assert factors[:3] == [0.5, 1.0, 1.0]  # linear warm-up, then the cosine starts at its top
    assert factors[6] == pytest.approx(0.5)  # half way through the 8 cosine steps
    assert factors[4] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert factors[10:] == [0.0, 0.0]  # at and after the end
    assert all(a >= b for a, b in pairwise(factors[1:]))  # never rises after warm-up
    assert [warmup_cosine(step, 0, 4) for step in (0, 2, 4)] == pytest.approx([1.0, 0.5, 0.0])


def test_the_classifier_gets_its_recipe_transform_and_the_weights_asked_for(tmp_path: Path) -> None:
    raw = tiny_study(tmp_path)
    config = validate_config(raw)
    weights = build_classifier(config, "vit", 10).network.state_dict()
    file = tmp_path / "vit.safetensors"
    save_file({key: torch.full_like(value, 0.5) for key, value in weights.items()}, str(file))
    raw["models"]["vit"]["pretrained"] = str(file)
    config = validate_config(raw)

    configured = build_classifier(config, "vit", 10)
    assert configured.recipe == config.models["vit"].train and configured.transform.output_size == 16
    assert all(bool((value == 0.5).all()) for value in configured.network.state_dict().values())
    random = build_classifier(config, "vit", 10, weights="random")  # the file is not read
    assert not all(bool((value == 0.5).all()) for value in random.network.state_dict().values())
