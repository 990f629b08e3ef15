"""Model-family facts, asked from the model's own timm metadata rather than parsed from its name or class:
the input sizes it takes, its token grid, its feature grid, its transformer blocks.

Explanation, benchmarks and distributed wrapping all ask here, so a new family is supported (or refused)
in one place.
"""

import sys
from collections.abc import Callable

import timm
import torch
from timm.layers import DropPath
from torch import nn


def takes_input_size(name: str) -> bool:
    """Whether timm model `name` is built for one input size (ViTs, Swins) and so takes `img_size`; convolutional
    models take any size and have no such argument. timm records it in the model's pretrained config."""
    pretrained_cfg = timm.models.get_pretrained_cfg(name)
    return bool(getattr(pretrained_cfg, "fixed_input_size", False))


def checkpoint_filter(name: str) -> Callable[[dict, nn.Module], dict[str, torch.Tensor]] | None:
    """timm's converter from the checkpoint layouts it accepts for model `name` (e.g. the original Microsoft Swin
    files: `head.weight`, downsampling at the end of a stage) to its own; None for families without one."""
    module = sys.modules[timm.models.model_entrypoint(name).__module__]
    return getattr(module, "checkpoint_filter_fn", None)


def patch_grid(network: nn.Module, input_size: tuple[int, int]) -> tuple[int, int]:
    """The (rows, columns) of patch tokens a patch-embedding model makes from an input of `input_size`."""
    embed = network.patch_embed
    if hasattr(embed, "dynamic_feat_size"):
        return tuple(embed.dynamic_feat_size(input_size))
    return input_size[0] // embed.patch_size[0], input_size[1] // embed.patch_size[1]


def final_reduction(network: nn.Module) -> int:
    """How many input pixels one position of the last feature map spans, per side."""
    return int(network.feature_info[-1]["reduction"])


def feature_grid(network: nn.Module, input_size: tuple[int, int]) -> tuple[int, int]:
    """The (rows, columns) of the last feature map for an input of `input_size`."""
    reduction = final_reduction(network)
    return input_size[0] // reduction, input_size[1] // reduction


def takes_size(network: nn.Module, size: int) -> bool:
    """Whether `size`-pixel square inputs fit the network: a whole number of positions of its last feature map
    (for a ViT, of patches; for a Swin, of merged patches)."""
    return size % final_reduction(network) == 0


def has_global_attention(network: nn.Module) -> bool:
    """Whether every block attends over the whole token sequence (ViT-style `blocks` with `attn`): what
    attention rollout follows from the class token to the patches."""
    blocks = getattr(network, "blocks", None)
    return (
        hasattr(network, "patch_embed")
        and isinstance(blocks, nn.Sequential | nn.ModuleList)
        and len(blocks) > 0
        and all(hasattr(getattr(block, "attn", None), "attn_drop") for block in blocks)
    )


def global_attention_layers(network: nn.Module) -> list[nn.Module]:
    """The attention-probability dropout of every block (its input and output are the attention matrix)."""
    return [block.attn.attn_drop for block in network.blocks]


def pools_class_token(network: nn.Module) -> bool:
    """Whether the classifier reads the class token (rather than the mean of the patch tokens)."""
    return getattr(network, "global_pool", None) == "token" and getattr(network, "cls_token", None) is not None


def block_types(network: nn.Module) -> set[type[nn.Module]]:
    """The classes of the network's repeated blocks: the members of any `blocks` sequence (timm's convention
    for ViT, Swin, DeiT, EVA, BEiT, ConvNeXt stages...). FSDP shards one unit per block."""
    return {
        type(block)
        for name, module in network.named_modules()
        if name.rsplit(".", 1)[-1] == "blocks" and isinstance(module, nn.Sequential | nn.ModuleList)
        for block in module
    }


def window_padding(network: nn.Module) -> bool:
    """Whether some windowed-attention stage pads its feature map up to a multiple of the window (computed,
    then thrown away): False for models without windows."""
    return any(
        module.input_resolution[0] % module.window_size[0] or module.input_resolution[1] % module.window_size[1]
        for module in network.modules()
        if hasattr(module, "input_resolution") and hasattr(module, "window_size")
    )


def drop_path_rate(network: nn.Module) -> float:
    """The highest stochastic-depth rate of any block (timm raises it linearly with depth): 0 when there is none.
    timm's defaults differ by family (Swin 0.1, ViT 0), so two models with the same options can differ here."""
    return max((float(module.drop_prob) for module in network.modules() if isinstance(module, DropPath)), default=0.0)


def head_description(network: nn.Module) -> str:
    """The classifier as a phrase, e.g. "dropout 0.2, then linear 1024 -> 10"."""
    classifier = network.get_classifier()
    linear = (
        f"linear {classifier.in_features} -> {classifier.out_features}"
        if isinstance(classifier, nn.Linear)
        else type(classifier).__name__
    )
    dropout = [module.p for name, module in network.named_modules() if isinstance(module, nn.Dropout) and "head" in name]
    rate = max(dropout, default=float(getattr(network, "drop_rate", 0.0) or 0.0))
    return f"dropout {rate:g}, then {linear}" if rate > 0 else linear


def prefix_tokens(tokens: int, grid: tuple[int, int]) -> int:
    """Tokens before the h x w patches in a sequence of `tokens` (class, distillation and register tokens).
    Counted from the sequence itself, not timm's `num_prefix_tokens`: CaiT's patch blocks carry none of the
    class token it counts (the token joins later), ViT's carry it first."""
    return tokens - grid[0] * grid[1]


def parameter_count(network: nn.Module) -> int:
    """How many numbers the network's parameters hold."""
    return sum(parameter.numel() for parameter in network.parameters())


def network_facts(network: nn.Module) -> dict:
    """What a run records about the network it trained: the training differences a config does not show."""
    pretrained_cfg = getattr(network, "pretrained_cfg", None) or {}
    return {
        "head": head_description(network),
        "drop_path_rate": drop_path_rate(network),
        "pretrained_mean": list(pretrained_cfg.get("mean", ())),
        "pretrained_std": list(pretrained_cfg.get("std", ())),
    }
