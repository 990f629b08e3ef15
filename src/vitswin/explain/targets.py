"""Where to explain a network: the target layer and how its activations become a (B, C, h, w) map, for any
timm classifier, resolved from the model's own metadata rather than from its class.

The layer: the last `norm1` the final stage (timm's `feature_info`) runs before its block's attention, when
there is one, else the final stage itself. In token models (ViT, DeiT, EVA, BEiT, CaiT) and windowed ones
(Swin, MaxViT) that `norm1` feeds the last attention; for class-token models it must, because the block's
*output* reaches the head only through the class token, so the patch tokens' gradients there are all zero.
CNNs, hybrids and post-norm transformers (ResNet, ConvNeXt, EfficientNet, MobileViT, Swin-V2) are explained
at their final stage's output.

The layout: one forward pass of an empty image shows what the layer outputs, which is one of three:
token sequences (B, L, C) with prefix tokens before the h x w patches, channels-last maps (B, h, w, C), or
channels-first maps (B, C, h, w). A layer that is none of them is refused in one sentence that says how to
choose another (`models.<key>.explain_layer`).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from pytorch_grad_cam.ablation_layer import AblationLayer, AblationLayerVit
from torch import nn

from vitswin.errors import VitswinError
from vitswin.model.architecture import feature_grid, prefix_tokens

LAYOUTS = ("tokens", "channels-last", "channels-first")


class UnexplainableModelError(VitswinError):
    """No spatial map can be read from the model's explanation layer."""


@dataclass(frozen=True)
class CamTarget:
    """A target layer, the reshape of its output to (B, C, h, w), and the matching ablation layer."""

    layer_name: str
    layout: str  # one of LAYOUTS
    grid: tuple[int, int]  # the layer's spatial grid (h, w) for this input size
    layer: nn.Module
    reshape: Callable[[torch.Tensor], torch.Tensor] | None  # None: already (B, C, h, w)
    ablation_layer: nn.Module


def cam_target(network: nn.Module, input_size: tuple[int, int], layer_name: str | None = None) -> CamTarget:
    """The explanation target of a timm classifier for inputs of `input_size` (height, width), at `layer_name`
    (a module name, e.g. "layer4") or the default layer."""
    final = network.feature_info[-1]["module"]
    if layer_name is not None and layer_name not in dict(network.named_modules()):
        raise UnexplainableModelError(
            f"{type(network).__name__} has no module '{layer_name}' to explain; set explain_layer to one of its "
            f"module names (print(model) lists them)."
        )
    outputs = _probe(network, input_size, [final, *([layer_name] if layer_name else [])])
    layer_name = layer_name or _default_layer(final, list(outputs))
    shape = outputs.get(layer_name, ())
    channels = network.feature_info[-1]["num_chs"]
    grid = feature_grid(network, input_size)
    if len(shape) == 4:
        # Channels are where the final stage's channel count is (and, for a square map of as many positions
        # as channels, where the grid is not).
        channels_last = shape[3] == channels and not (shape[1] == channels and shape[2:4] == grid)
        layout, grid = ("channels-last", shape[1:3]) if channels_last else ("channels-first", shape[2:4])
    elif len(shape) == 3 and shape[1] >= grid[0] * grid[1] > 0:
        layout = "tokens"
    else:
        raise UnexplainableModelError(
            f"cannot read module '{layer_name}' of {type(network).__name__} as a spatial map (its output has "
            f"shape {shape} for {input_size[0]}x{input_size[1]} inputs); set the model's explain_layer to a "
            f"module whose output is (B, C, h, w), (B, h, w, C) or patch tokens (B, L, C)."
        )
    layer = network.get_submodule(layer_name)
    return CamTarget(layer_name, layout, grid, layer, _reshape(layout, grid, shape), _ablation_layer(layout))


def _default_layer(final: str, called: list[str]) -> str:
    """The last `norm1` that the final stage runs before its block's attention (a pre-norm: the attention's
    input), else the final stage itself. A post-norm `norm1` (Swin-V2's, after the attention, initialised to
    zero) would give constant maps at initialisation, and no better ones after training than the stage output."""

    def before_attention(name: str) -> bool:
        parent = name.rsplit(".", 1)[0]
        attention = [other for other in called if other.startswith(f"{parent}.attn")]
        return all(called.index(name) < called.index(other) for other in attention)

    norms = [name for name in called if name.rsplit(".", 1)[-1] == "norm1" and before_attention(name)]
    return norms[-1] if norms else final


def _probe(network: nn.Module, input_size: tuple[int, int], roots: list[str]) -> dict[str, tuple[int, ...]]:
    """The output shape (batch of one) of every module under `roots`, in the order they first run, from one
    forward pass of an empty image in eval mode."""
    outputs: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable:
        def hook(_module: nn.Module, _input: object, output: object) -> None:  # None: the output stays as it is
            outputs.setdefault(name, tuple(getattr(output, "shape", ())))

        return hook

    hooks = [
        module.register_forward_hook(record(name))
        for name, module in network.named_modules()
        if any(name == root or name.startswith(f"{root}.") for root in roots)
    ]
    parameter = next(network.parameters())
    was_training = network.training
    try:
        with torch.no_grad():
            network.eval()(torch.zeros(1, 3, *input_size, device=parameter.device, dtype=parameter.dtype))
    finally:
        network.train(was_training)
        for hook in hooks:
            hook.remove()
    return outputs


def _reshape(layout: str, grid: tuple[int, int], shape: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if layout == "channels-first":
        return None
    if layout == "channels-last":
        return lambda features: features.permute(0, 3, 1, 2)
    prefix = prefix_tokens(shape[1], grid)

    def tokens_to_map(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, prefix:, :]
        return patches.reshape(len(tokens), *grid, -1).permute(0, 3, 1, 2)

    return tokens_to_map


def _ablation_layer(layout: str) -> nn.Module:
    # The ViT ablation layer swaps channels to dim 1 and back, whatever the rank: right for (B, L, C) and
    # (B, h, w, C), where channels are last.
    return AblationLayer() if layout == "channels-first" else AblationLayerVit()
