"""Explanation targets for any timm classifier: Grad-CAM on many families at random initialisation, checked
against pytorch-grad-cam called directly with a hand-written reshape for each layout."""

import numpy as np
import pytest
import timm
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from conftest import CONFIGS
from vitswin.config import load_config
from vitswin.errors import VitswinError
from vitswin.explain.methods import explain_batch
from vitswin.explain.targets import UnexplainableModelError, cam_target
from vitswin.model.architecture import has_global_attention
from vitswin.model.network import build_network

SMALL_SWIN = {"depths": (2, 2), "num_heads": (2, 4), "embed_dim": 32, "window_size": 4}
# name: (timm options that keep it small, input size, expected layout, expected grid)
FAMILIES = {
    "vit_tiny_patch16_224": ({"depth": 2}, 64, "tokens", (4, 4)),
    "deit_tiny_distilled_patch16_224": ({"depth": 2}, 64, "tokens", (4, 4)),
    "eva02_tiny_patch14_224": ({"depth": 2}, 56, "tokens", (4, 4)),
    "beit_base_patch16_224": ({"depth": 2, "embed_dim": 64, "num_heads": 2}, 64, "tokens", (4, 4)),
    "cait_xxs24_224": ({"depth": 2}, 64, "tokens", (4, 4)),
    "swin_tiny_patch4_window7_224": (SMALL_SWIN, 32, "channels-last", (4, 4)),
    "swinv2_tiny_window8_256": (SMALL_SWIN, 32, "channels-last", (4, 4)),
    "maxvit_tiny_tf_224": ({}, 128, "channels-last", (4, 4)),
    "convnext_atto": ({}, 64, "channels-first", (2, 2)),
    "resnet18": ({}, 64, "channels-first", (2, 2)),
    "efficientnet_b0": ({}, 64, "channels-first", (2, 2)),
    "pvt_v2_b0": ({}, 64, "tokens", (2, 2)),
    "coat_lite_tiny": ({}, 64, "tokens", (2, 2)),
    "mobilevit_xs": ({}, 64, "channels-first", (2, 2)),
}  # fmt: skip


def small_model(name: str) -> tuple[torch.nn.Module, int]:
    options, size, _, _ = FAMILIES[name]
    if timm.models.get_pretrained_cfg(name).fixed_input_size:
        options = {**options, "img_size": size}
    torch.manual_seed(0)
    return timm.create_model(name, num_classes=5, **options).eval(), size


@pytest.mark.parametrize("name", list(FAMILIES))
def test_gradcam_reads_every_family_on_its_feature_grid(name: str) -> None:
    network, size = small_model(name)
    target = cam_target(network, (size, size))
    assert (target.layout, target.grid) == FAMILIES[name][2:]
    inputs = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    features = []
    hook = target.layer.register_forward_hook(lambda _m, _i, output: features.append(output))
    maps = explain_batch(network, inputs, torch.tensor([0, 3]), "gradcam", target)
    hook.remove()
    as_map = target.reshape(features[0]) if target.reshape else features[0]
    assert tuple(as_map.shape[-2:]) == target.grid  # the map the heatmap is made from is the feature grid
    assert maps.shape == (2, size, size) and np.isfinite(maps).all()
    assert all(np.ptp(heatmap) > 0 for heatmap in maps)  # not constant


def reference_gradcam(network: torch.nn.Module, layer: torch.nn.Module, reshape, inputs: torch.Tensor) -> np.ndarray:
    """pytorch-grad-cam called directly, with the reshape written out for the family by hand."""
    with GradCAM(network, [layer], reshape_transform=reshape) as cam:
        return cam(inputs, [ClassifierOutputTarget(c) for c in (0, 3)])


@pytest.mark.parametrize(
    ("name", "layer", "reshape"),
    [
        # DeiT: class and distillation tokens first, then a 4x4 grid of patches, channels last.
        ("deit_tiny_distilled_patch16_224", "blocks.1.norm1", lambda t: t[:, 2:].reshape(len(t), 4, 4, -1).permute(0, 3, 1, 2)),
        # Swin: (B, h, w, C) maps in the final stage.
        ("swin_tiny_patch4_window7_224", "layers.1.blocks.1.norm1", lambda t: t.permute(0, 3, 1, 2)),
        # ResNet: the final stage's (B, C, h, w) output as it is.
        ("resnet18", "layer4", None),
    ],
)
def test_gradcam_equals_a_hand_written_reference_for_each_layout(name: str, layer: str, reshape) -> None:
    network, size = small_model(name)
    inputs = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    target = cam_target(network, (size, size))
    assert target.layer_name == layer
    expected = reference_gradcam(network, network.get_submodule(layer), reshape, inputs)
    np.testing.assert_allclose(explain_batch(network, inputs, torch.tensor([0, 3]), "gradcam", target), expected, atol=1e-5)


def test_a_layer_that_is_not_a_map_is_refused_in_one_sentence() -> None:
    network, size = small_model("resnet18")
    with pytest.raises(UnexplainableModelError, match=r"cannot read module 'fc' of ResNet as a spatial map .*explain_layer"):
        cam_target(network, (size, size), "fc")
    with pytest.raises(VitswinError, match=r"ResNet has no module 'layer9' to explain"):
        cam_target(network, (size, size), "layer9")
    assert cam_target(network, (size, size), "layer3").grid == (4, 4)  # another stage, chosen by name


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "cait_xxs24_224"])
def test_rollout_for_every_model_with_global_attention(name: str) -> None:
    network, size = small_model(name)
    assert has_global_attention(network)
    maps = explain_batch(network, torch.randn(2, 3, size, size), torch.tensor([0, 1]), "rollout")
    assert maps.shape == (2, size, size) and np.isfinite(maps).all() and 0 <= maps.min() < 0.9 < maps.max() <= 1 + 1e-6


def test_every_model_of_the_cpu_baselines_config_has_a_map_to_explain() -> None:
    """The CNNs get 64-pixel inputs and output stride 16, so every family ends in a real grid (not 1x1)."""
    config = load_config(CONFIGS / "cpu-baselines.yaml")
    grids = {}
    for key, model in config.models.items():
        network = build_network(model, 10, weights="random").eval()
        grids[key] = cam_target(network, (model.input_size, model.input_size)).grid
    assert grids == {"vit": (8, 8), "swin": (8, 8), "deit": (8, 8), "convnext": (4, 4), "resnet": (4, 4)}
    assert [model.name for model in load_config(CONFIGS / "seed-plus-baselines.yaml").models.values()] == [
        "vit_base_patch16_224",
        "swin_base_patch4_window7_224",
        "deit_base_patch16_224",
        "convnext_base",
        "resnet50",
    ]
