"""Model-family facts read from timm's metadata, checked on a ViT, a Swin and a CNN."""

import pytest
import timm
import torch
from timm.models.swin_transformer import SwinTransformerBlock
from timm.models.vision_transformer import Block

from vitswin.model.architecture import (
    block_types,
    feature_grid,
    final_reduction,
    has_global_attention,
    patch_grid,
    pools_class_token,
    takes_input_size,
    takes_size,
    window_padding,
)


def meta_model(name: str, **options: object) -> torch.nn.Module:
    with torch.device("meta"):  # shapes only
        return timm.create_model(name, num_classes=10, **options)


def test_vit_facts() -> None:
    vit = meta_model("vit_base_patch16_224", img_size=96)
    assert takes_input_size("vit_base_patch16_224")
    assert pools_class_token(vit) and has_global_attention(vit)
    assert patch_grid(vit, (96, 96)) == (6, 6) == feature_grid(vit, (96, 96))
    assert final_reduction(vit) == 16 and takes_size(vit, 48) and not takes_size(vit, 40)
    assert block_types(vit) == {Block} and not window_padding(vit)
    registers = meta_model("vit_base_patch16_224", img_size=96, reg_tokens=4, global_pool="avg")
    assert not pools_class_token(registers)


def test_swin_facts() -> None:
    swin = meta_model("swin_base_patch4_window7_224")
    assert takes_input_size("swin_base_patch4_window7_224")
    assert not has_global_attention(swin)
    assert patch_grid(swin, (224, 224)) == (56, 56) and feature_grid(swin, (224, 224)) == (7, 7)
    assert takes_size(swin, 64) and not takes_size(swin, 48)
    assert block_types(swin) == {SwinTransformerBlock}
    # 224 px: 56, 28, 14, 7 positions per side, all multiples of the 7-wide window; 256 px: 64 is not.
    assert not window_padding(swin) and window_padding(meta_model("swin_base_patch4_window7_224", img_size=256))


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_cnn_facts(name: str) -> None:
    cnn = meta_model(name)
    assert not takes_input_size(name) and not has_global_attention(cnn)
    assert feature_grid(cnn, (224, 224)) == (7, 7) and not window_padding(cnn)
