"""Models: timm names, hub weights offline, local weights files (safe loading), head replacement."""

import pickle
import re
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from vitswin.config import ModelConfig
from vitswin.errors import VitswinError
from vitswin.model.network import build_network, use_fused_attention

SMALL_VIT = {"patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2}


def small_vit(**overrides: object) -> ModelConfig:
    return ModelConfig(**{"name": "vit_tiny_patch16_224", "input_size": 16, "options": SMALL_VIT, **overrides})


def test_builds_with_options_and_head_dropout() -> None:
    network = build_network(small_vit(head_dropout=0.2), num_classes=7)
    assert network(torch.zeros(2, 3, 16, 16)).shape == (2, 7)
    assert network.head_drop.p == 0.2 and len(network.blocks) == 2
    swin = build_network(
        ModelConfig(
            name="swin_tiny_patch4_window7_224",
            input_size=16,
            options={"patch_size": 2, "window_size": 4, "embed_dim": 16, "depths": [2, 2], "num_heads": [1, 2]},
        ),
        num_classes=3,
    )
    assert swin(torch.zeros(2, 3, 16, 16)).shape == (2, 3)


def test_unknown_model_name_suggests_close_names() -> None:
    with pytest.raises(VitswinError, match=r"'vit_base_patch16_244' is not a timm model name; did you mean vit_base_patch16_224"):
        build_network(ModelConfig(name="vit_base_patch16_244"), num_classes=10)


def test_unknown_option_is_named() -> None:
    with pytest.raises(VitswinError, match=r"model vit_tiny_patch16_224 does not accept an option given .*wings"):
        build_network(small_vit(options={**SMALL_VIT, "wings": 2}), num_classes=10)


def test_hub_weights_offline_explain_how_to_get_them() -> None:
    with pytest.raises(
        VitswinError,
        match=r"pretrained weights for vit_tiny_patch16_224 could not be fetched from "
        r"the Hugging Face hub .*set pretrained to its path",
    ):
        build_network(small_vit(pretrained="hub"), num_classes=10)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_thousand_class_file_loads_backbone_and_replaces_head(tmp_path: Path, suffix: str) -> None:
    source = timm.create_model("vit_tiny_patch16_224", num_classes=1000, img_size=16, **SMALL_VIT)
    path = tmp_path / f"weights{suffix}"
    state = {key: value.contiguous() for key, value in source.state_dict().items()}
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    network = build_network(small_vit(pretrained=str(path)), num_classes=10)
    loaded = network.state_dict()
    assert network.head.weight.shape == (10, 32)
    for key, value in state.items():
        if not key.startswith("head."):
            assert torch.equal(loaded[key], value), key


def test_file_with_matching_head_keeps_it(tmp_path: Path) -> None:
    source = timm.create_model("vit_tiny_patch16_224", num_classes=10, img_size=16, **SMALL_VIT)
    path = tmp_path / "ten.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    network = build_network(small_vit(pretrained=str(path)), num_classes=10)
    assert torch.equal(network.head.weight, source.head.weight)


def test_file_from_another_architecture_is_refused(tmp_path: Path) -> None:
    other = timm.create_model(
        "vit_tiny_patch16_224", num_classes=10, img_size=16, patch_size=4, embed_dim=48, depth=2, num_heads=2
    )
    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, path)
    with pytest.raises(VitswinError, match=r"weights file .*other.safetensors does not fit model vit_tiny_patch16_224"):
        build_network(small_vit(pretrained=str(path)), num_classes=10)


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"head.weight": _Payload(marker)}))
    with pytest.raises(VitswinError, match=r"weights file .*evil.pth was refused: it holds pickled objects"):
        build_network(small_vit(pretrained=str(path)), num_classes=10)
    assert not marker.exists()


def test_unreadable_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"not weights at all")
    with pytest.raises(VitswinError, match=r"weights file .*junk.safetensors could not be read"):
        build_network(small_vit(pretrained=str(path)), num_classes=10)


def test_fused_attention_is_the_same_mathematics_and_used_on_cuda_only() -> None:
    # Windows of 4 on a 16 x 16 first stage: shifted blocks with their attention mask, and relative position bias.
    small = {"img_size": 64, "window_size": 4, "embed_dim": 16, "depths": (2, 2), "num_heads": (1, 2)}
    network = timm.create_model("swin_tiny_patch4_window7_224", **small, num_classes=3, drop_path_rate=0.0)
    images = torch.randn(2, 3, 64, 64)
    assert not any(module.fused_attn for module in network.modules() if hasattr(module, "fused_attn"))
    use_fused_attention(network, torch.device("cpu"))
    assert not any(module.fused_attn for module in network.modules() if hasattr(module, "fused_attn"))
    plain = network(images)
    plain.sum().backward()
    plain_grads = [parameter.grad.clone() for parameter in network.parameters()]
    network.zero_grad()
    use_fused_attention(network, torch.device("cuda"))  # only the device type is read: no GPU needed
    assert all(module.fused_attn for module in network.modules() if hasattr(module, "fused_attn"))
    fused = network(images)
    fused.sum().backward()
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
    for grad, parameter in zip(plain_grads, network.parameters(), strict=True):
        torch.testing.assert_close(parameter.grad, grad, rtol=1e-4, atol=1e-5)


def original_swin_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm Swin state dict in the original Microsoft layout: the classifier is `head`, and each stage's
    patch merging sits at the end of the stage before (timm moved it to the start of the next)."""
    original = {}
    for key, value in state_dict.items():
        key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        original[key.replace("head.fc.", "head.")] = value
    return original


@pytest.mark.slow
def test_an_original_layout_swin_b_file_loads_with_a_new_head(tmp_path: Path) -> None:
    imagenet = timm.create_model("swin_base_patch4_window7_224", num_classes=1000).state_dict()
    original = original_swin_layout(imagenet)
    assert original["head.weight"].shape == (1000, 1024) and "layers.0.downsample.reduction.weight" in original
    path = tmp_path / "swin_base_patch4_window7_224.pth"
    torch.save({"model": original}, path)  # as Microsoft's release wraps it

    config = ModelConfig(name="swin_base_patch4_window7_224", pretrained=str(path), input_size=224)
    loaded = build_network(config, num_classes=10).state_dict()
    assert loaded["head.fc.weight"].shape == (10, 1024)
    backbone = [key for key in imagenet if not key.startswith("head.") and "relative_position_index" not in key]
    assert len(backbone) > 300 and all(torch.equal(loaded[key], imagenet[key]) for key in backbone)
