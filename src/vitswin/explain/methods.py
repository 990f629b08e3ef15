"""Heatmap methods by name: the pytorch-grad-cam family, plus attention rollout for ViT.

Every method maps a batch of model inputs (B, 3, H, W) and one target class per image to heatmaps
(B, H, W) at the input size, scaled to [0, 1] per image (the library's convention).
"""

import inspect
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from vitswin.explain.targets import CamTarget, UnexplainableModelError, cam_target
from vitswin.model.architecture import (
    global_attention_layers,
    has_global_attention,
    patch_grid,
    pools_class_token,
    prefix_tokens,
)
from vitswin.model.network import unfused_attention
from vitswin.registry import METHODS, resolve


def explain_batch(
    network: nn.Module, inputs: torch.Tensor, classes: torch.Tensor, method: str, target: CamTarget | None = None
) -> np.ndarray:
    """Heatmaps (B, H, W) in [0, 1] of `network` for `inputs`, each explaining its class in `classes`;
    `target` is the network's explanation target for this input size, when the caller already has it."""
    explain = resolve(METHODS[method].explain)
    network.eval()
    if not (isinstance(explain, type) and issubclass(explain, BaseCAM)):
        return explain(network, inputs, classes, target)
    target = target or cam_target(network, tuple(inputs.shape[-2:]))
    # AblationCAM (and any CAM that asks for it) ablates the target's own kind of layer.
    takes_ablation = "ablation_layer" in inspect.signature(explain).parameters
    kwargs = {"ablation_layer": target.ablation_layer} if takes_ablation else {}
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    with explain(network, [target.layer], reshape_transform=target.reshape, **kwargs) as cam:
        return cam(inputs, targets).astype(np.float32)


def attention_rollout(
    network: nn.Module, inputs: torch.Tensor, classes: torch.Tensor | None = None, target: CamTarget | None = None
) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020) of a timm ViT: how much each patch flows into the output.

    Per block, the head-averaged attention plus the identity (the residual path), rows renormalised;
    the product over blocks gives token-to-token flow. The class token's row is the map (the mean
    over patch rows for models that pool patches instead of using a class token). The map is the same for
    every class, and needs no target layer: `classes` and `target` are not used.
    """
    if not has_global_attention(network):
        raise UnexplainableModelError(
            f"attention rollout needs a ViT-like model, whose blocks all attend globally (it follows attention "
            f"through every block); this model is a {type(network).__name__}; use a Grad-CAM method for it."
        )
    with _recorded_attention(network) as attentions, torch.no_grad():
        network(inputs)
    tokens = attentions[0].shape[-1]
    identity = torch.eye(tokens)
    flow = identity.expand(len(inputs), tokens, tokens)
    for attention in attentions:
        mixed = attention.mean(1) + identity
        flow = (mixed / mixed.sum(-1, keepdim=True)) @ flow
    grid = patch_grid(network, tuple(inputs.shape[-2:]))
    prefix = prefix_tokens(tokens, grid)
    uses_class_token = prefix > 0 and pools_class_token(network)
    patch_flow = flow[:, 0, prefix:] if uses_class_token else flow[:, prefix:, prefix:].mean(1)
    maps = F.interpolate(patch_flow.reshape(-1, 1, *grid), size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return scale_cam_image(maps.numpy()).astype(np.float32)


@contextmanager
def _recorded_attention(network: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect every block's attention probabilities (B, heads, N, N) during the forward passes inside."""
    attentions: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_hook(lambda _module, _input, output: attentions.append(output.detach().float().cpu()))
        for layer in global_attention_layers(network)
    ]
    try:
        with unfused_attention(network):
            yield attentions
    finally:
        for hook in hooks:
            hook.remove()
