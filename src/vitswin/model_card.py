"""What an exported model says about itself: where its weights come from (timm's pretrained_cfg, without the tag and
licence of weights it was not trained from) and a model card written from its run's numbers."""

import json
from typing import Any

from vitswin.model.classifier import TrainedRun
from vitswin.registry import SOURCES
from vitswin.report.decision import clopper_pearson

# The pretrained_cfg keys that describe the architecture and how to load it, not where a checkpoint came from.
_LOADING_KEYS = ("architecture", "first_conv", "classifier", "pool_size", "fixed_input_size")


def origin(trained: TrainedRun, inherited: dict[str, Any]) -> str:
    """Where the run's weights start from, in words: from scratch, timm's pretrained weights (named by their hub id,
    with their licence: theirs, not the fine-tuned model's) or a weights file."""
    weights = trained.model.pretrained
    if weights == "none":
        return "from scratch (random initialisation)"
    if weights == "hub":
        base = inherited.get("hf_hub_id") or f"{inherited.get('architecture')}.{inherited.get('tag')}"
        licence = f"; those weights' licence: {inherited['license']}" if inherited.get("license") else ""
        return f"starting from timm's pretrained weights {base}{licence}"
    return f"starting from the weights file {weights}"


def run_pretrained_cfg(trained: TrainedRun, inherited: dict[str, Any]) -> dict[str, Any]:
    """A pretrained_cfg for the exported weights: the loading keys of the architecture's own, and a description of
    this run (what it was trained on and from which weights). No tag, hub id, URL or licence of other weights."""
    config = trained.config
    described = SOURCES[config.data.source].describe(config.data)
    return {
        **{key: inherited[key] for key in _LOADING_KEYS if inherited.get(key) is not None},
        "num_classes": len(trained.class_names),
        "description": f"trained by vitswin on {described}, {origin(trained, inherited)}, seed {config.seeds[0]}",
    }


def model_card(trained: TrainedRun, inherited: dict[str, Any], files: list[str]) -> str:
    """The exported model's card (Markdown, with the Hugging Face Hub's metadata block) from its run's numbers."""
    run, config, model = trained.folder, trained.config, trained.model
    metrics, record = run.read_metrics(), run.read_train()
    tested = int(metrics["num_images"])
    low, high = clopper_pearson(round(metrics["accuracy"] * tested), tested, 0.05)
    described = SOURCES[config.data.source].describe(config.data)
    recipe = "\n".join(f"| `{key}` | `{json.dumps(value)}` |" for key, value in model.recipe().items())
    classes = "\n".join(
        f"| {name} | {100 * numbers['accuracy']:.2f} % | {numbers['support']} |" for name, numbers in metrics["per_class"].items()
    )
    return f"""---
library_name: timm
pipeline_tag: image-classification
tags: [image-classification, timm, vitswin]
---

# {model.name}, {run.label}

A `{model.name}` classifier of {len(trained.class_names)} classes, trained by vitswin on {described},
{origin(trained, inherited)}, training seed {config.seeds[0]}. Files: {", ".join(files)}.

## Results

Test accuracy **{100 * metrics["accuracy"]:.2f} %** on {tested} held-out test images (95 % exact interval
{100 * low:.2f} to {100 * high:.2f} %); the checkpoint was selected on {
        "the test set itself (optimistic)" if record.get("validation") == "test" else "a held-out validation split"
    }, epoch {record["best_epoch"]} of {record["epochs_run"]}; the weights are {
        record.get("weights_kept", "the trained weights")
    }. This is one trained model: another training seed gives
another number, and a comparison of architectures needs several seeds (the study's report).

| class | test accuracy | test images |
|---|---|---|
{classes}

## Input

RGB images resized to {config.data.image_size} x {config.data.image_size} (bilinear), scaled to [0, 1], normalised with
mean {list(config.data.mean)} and std {list(config.data.std)}, resized to the model's {model.input_size} x {model.input_size}.

## Recipe

| key | value |
|---|---|
{recipe}
"""
