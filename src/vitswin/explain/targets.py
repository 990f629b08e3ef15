"""Where to explain a network: the target layer and how its activations become a (B, C, h, w) map.

Which layer to explain is chosen here, one function per family, so the explanation methods stay
family-agnostic; the facts about each model (prefix tokens, token and feature grids) are asked from
`vitswin.architecture`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from pytorch_grad_cam.ablation_layer import AblationLayerVit
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vitswin.architecture import feature_grid, patch_grid, prefix_tokens
from vitswin.errors import VitswinError


@dataclass(frozen=True)
class CamTarget:
    """A target layer, the reshape of its output to (B, C, h, w), and the matching ablation layer."""

    family: str  # "vit" or "swin"
    grid: tuple[int, int]  # the layer's spatial grid (h, w) for this input size
    layer: nn.Module
    reshape: Callable[[torch.Tensor], torch.Tensor]
    ablation_layer: nn.Module


def cam_target(network: nn.Module, input_size: tuple[int, int]) -> CamTarget:
    """The explanation target of a timm ViT or Swin for inputs of `input_size` (height, width)."""
    if isinstance(network, VisionTransformer):
        return _vit_target(network, input_size)
    if isinstance(network, SwinTransformer):
        return _swin_target(network, input_size)
    raise VitswinError(
        f"explanations know timm ViT (VisionTransformer) and Swin (SwinTransformer) models; "
        f"this model is a {type(network).__name__}; explain a ViT or Swin run."
    )


def _vit_target(network: VisionTransformer, input_size: tuple[int, int]) -> CamTarget:
    # The last block's norm1 feeds the attention that mixes patch tokens into the class token. The block's
    # output does not: only its class token reaches the head, so patch-token gradients there are all zero.
    prefix = prefix_tokens(network)  # class, distillation and register tokens
    grid_h, grid_w = patch_grid(network, input_size)

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, prefix:, :]
        if patches.shape[1] != grid_h * grid_w:
            raise ValueError(f"expected {grid_h}x{grid_w} patch tokens, got {patches.shape[1]}")
        return patches.reshape(len(tokens), grid_h, grid_w, -1).permute(0, 3, 1, 2)

    # The ViT ablation layer swaps channels to dim 1 and back, whatever the rank: right for (B, L, C).
    return CamTarget("vit", (grid_h, grid_w), network.blocks[-1].norm1, reshape, AblationLayerVit())


def _swin_target(network: SwinTransformer, input_size: tuple[int, int]) -> CamTarget:
    # timm Swin blocks keep (B, H, W, C) at norm1 but flatten to (B, L, C) around norm2; both are handled.
    grid_h, grid_w = feature_grid(network, input_size)

    def reshape(features: torch.Tensor) -> torch.Tensor:
        if features.ndim == 3:
            features = features.reshape(len(features), grid_h, grid_w, -1)
        return features.permute(0, 3, 1, 2)

    # Channels are last for both layouts, which is exactly what the ViT ablation layer expects.
    return CamTarget("swin", (grid_h, grid_w), network.layers[-1].blocks[-1].norm1, reshape, AblationLayerVit())
