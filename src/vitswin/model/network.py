"""Models: any timm architecture by name, with its weights from the hub, a local file, or random."""

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import timm
import torch
from torch import nn

from vitswin.config import ModelConfig
from vitswin.errors import VitswinError
from vitswin.model.architecture import checkpoint_filter, takes_input_size


def check_model_name(name: str) -> None:
    """Fail with the closest timm names when `name` is not a timm architecture."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for the names."
    raise VitswinError(f"'{name}' is not a timm model name; {hint}")


def build_network(config: ModelConfig, num_classes: int, weights: Literal["configured", "random"] = "configured") -> nn.Module:
    """The configured timm model with a `num_classes` head: the one place a network is made.

    `weights="configured"` loads them as `config.pretrained` says: "hub" (timm's default weights, downloaded
    into the Hugging Face cache), "none" (random initialisation) or a weights file (safetensors or a state
    dict, loaded without unpickling code). A file's classifier is kept when it already has `num_classes`
    outputs and replaced otherwise; position embeddings and window tables are adapted to the input size by
    timm, as for hub weights. `weights="random"` initialises the same architecture randomly whatever the
    config says: for shapes and costs, for a run's trained weights loaded next, and for sanity checks.
    """
    check_model_name(config.name)
    kwargs = dict(config.options, num_classes=num_classes)
    if takes_input_size(config.name):
        kwargs["img_size"] = config.input_size
    if config.head_dropout > 0:
        kwargs["drop_rate"] = config.head_dropout  # timm ViT/Swin: dropout right before the classifier
    source = config.pretrained if weights == "configured" else "none"
    try:
        if source == "hub":
            kwargs["pretrained"] = True
        elif source != "none":
            state_dict = load_weights_file(Path(source).expanduser())
            classes = _classifier_outputs(config.name, state_dict, kwargs, num_classes)
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"state_dict": state_dict, "num_classes": classes})
        return timm.create_model(config.name, **kwargs)
    except VitswinError:
        raise
    except Exception as error:
        raise VitswinError(_explain_build_failure(config, source, error)) from None


def load_weights_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors or PyTorch file, never running pickled code."""
    try:
        return timm.models.load_state_dict(str(path), weights_only=True)
    except Exception as error:
        if "weights_only" in str(error):
            raise VitswinError(
                f"weights file {path} was refused: it holds pickled objects other than tensors, which could run "
                f"code; save the weights as safetensors or a plain state dict."
            ) from None
        raise VitswinError(
            f"weights file {path} could not be read ({_first_line(error)}); pass a .safetensors or PyTorch state-dict file."
        ) from None


def _classifier_outputs(name: str, state_dict: dict[str, torch.Tensor], kwargs: dict, default: int) -> int:
    """How many classes the file's classifier has, so timm keeps it if it fits and drops it if not. The file is
    read in timm's own layout: converted first by the family's checkpoint filter, as timm will convert it."""
    convert = checkpoint_filter(name)
    if convert is not None:
        with torch.device("meta"):  # shapes only: the filter reads the model's sizes, never its weights
            skeleton = timm.create_model(name, **{**kwargs, "num_classes": default})
        state_dict = convert(state_dict, skeleton)
    pretrained_cfg = timm.models.get_pretrained_cfg(name)
    classifier = getattr(pretrained_cfg, "classifier", None) or "head"
    weight = state_dict.get(f"{classifier}.weight")
    return int(weight.shape[0]) if weight is not None else default


def _explain_build_failure(config: ModelConfig, source: str, error: Exception) -> str:
    text = _first_line(error)
    module = type(error).__module__
    if source == "hub" and (module.startswith(("huggingface_hub", "requests", "urllib", "httpx")) or isinstance(error, OSError)):
        return (
            f"pretrained weights for {config.name} could not be fetched from the Hugging Face hub ({text}); "
            f"connect to the internet once to fill the cache, or download the weights file and set "
            f"pretrained to its path."
        )
    if isinstance(error, TypeError) and "unexpected keyword" in text:
        return f"model {config.name} does not accept an option given ({text}); remove it from the model's options."
    if source not in ("hub", "none") and ("state_dict" in text or "size mismatch" in text):
        return (
            f"weights file {source} does not fit model {config.name} with these options ({text}); "
            f"use weights saved from the same architecture."
        )
    return f"model {config.name} could not be built with options {dict(config.options)} ({text}); check the options."


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


@contextmanager
def unfused_attention(network: nn.Module) -> Iterator[None]:
    """timm attention layers compute softmax(QK^T) explicitly for the duration, instead of a fused kernel
    that never materialises it (and that hooks and the FLOP counter cannot see)."""
    modules = [module for module in network.modules() if hasattr(module, "fused_attn")]
    fused = [module.fused_attn for module in modules]
    for module in modules:
        module.fused_attn = False
    try:
        yield
    finally:
        for module, was_fused in zip(modules, fused, strict=True):
            module.fused_attn = was_fused


def use_fused_attention(network: nn.Module, device: torch.device) -> None:
    """Switch every timm attention layer to PyTorch's fused kernel on CUDA, and leave the CPU to timm's defaults.

    timm fuses ViT's attention by default but not Swin's (its masked window attention is marked experimental);
    the mathematics are the same either way. On CUDA the fused kernels avoid writing the attention matrix to
    memory. On this project's CPU the fused path measured 2-10 % slower per Swin attention layer (forward and
    backward, docs/performance.md), so there nothing changes.
    """
    if device.type != "cuda":
        return
    for module in network.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = True
