"""An explanation's numbers gathered for its files: one row per model and image (attention.csv), one per model
pair and image (agreement.csv), and their means with the sanity checks (attention.json)."""

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import torch

from vitswin.data import ImageSet
from vitswin.explain import metrics
from vitswin.study_folder import ExplanationSummary


@dataclass
class ModelExplanation:
    """One model's maps for the chosen images and everything measured about them."""

    name: str
    input_maps: np.ndarray  # (N, H_in, W_in), the method's output at the model's input size
    maps: np.ndarray  # (N, h, w) at the stored image size, where metrics are measured
    predictions: np.ndarray  # (N,)
    explained: np.ndarray  # (N,) the class each map explains
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # per-image measurements


def image_rows(explanations: list[ModelExplanation], chosen: ImageSet, indices: torch.Tensor) -> list[dict]:
    """Per model and image: which test image, its class, the prediction, the class explained and every measure."""
    names = chosen.class_names
    return [
        {
            "model": e.name,
            "test_index": int(index),
            "class": names[label],
            "predicted": names[pred],
            "correct": bool(label == pred),
            "explained": names[explained],
            **{key: float(values[i]) for key, values in e.scores.items()},
        }
        for e in explanations
        for i, (index, label, pred, explained) in enumerate(
            zip(indices.tolist(), chosen.labels.tolist(), e.predictions, e.explained, strict=True)
        )
    ]


def agreement_rows(explanations: list[ModelExplanation], indices: torch.Tensor) -> list[dict]:
    """Per model pair and image: how much the two maps agree (rank correlation, top-20 % overlap)."""
    rows = []
    for first, second in combinations(explanations, 2):
        scores = metrics.agreement(first.maps, second.maps)
        rows += [
            {
                "model_a": first.name,
                "model_b": second.name,
                "test_index": int(index),
                "rank_corr": float(scores["rank_corr"][i]),
                "top20_iou": float(scores["top20_iou"][i]),
            }
            for i, index in enumerate(indices.tolist())
        ]
    return rows


def _agreement_summary(rows: list[dict]) -> dict:
    pairs: dict[str, list[dict]] = {}
    for row in rows:
        pairs.setdefault(f"{row['model_a']} vs {row['model_b']}", []).append(row)
    return {
        pair: {
            "rank_corr": float(np.mean([r["rank_corr"] for r in pair_rows])),
            "top20_iou": float(np.mean([r["top20_iou"] for r in pair_rows])),
        }
        for pair, pair_rows in pairs.items()
    }


def summarise(
    explanations: list[ModelExplanation],
    chosen: ImageSet,
    agreement: list[dict],
    options: dict[str, Any],
    skipped: dict[str, str],
) -> ExplanationSummary:
    """The means per model, per model and class and per pair, the sanity checks, and what was not explained."""
    names, labels = chosen.class_names, chosen.labels.numpy()
    return ExplanationSummary(
        options=options,
        images=len(chosen),
        per_model={e.name: _means(e.scores) for e in explanations},
        per_class={
            e.name: {names[c]: _means({k: v[labels == c] for k, v in e.scores.items()}) for c in sorted(set(labels.tolist()))}
            for e in explanations
        },
        agreement=_agreement_summary(agreement),
        sanity={e.name: _sanity(e.scores) for e in explanations},
        skipped=skipped,
    )


def _means(scores: dict[str, np.ndarray]) -> dict[str, float]:
    return {key: float(np.mean(values)) for key, values in scores.items() if len(values)}


def _sanity(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """The built-in checks: a randomised model's maps differ, a map beats random pixel orders and random maps."""
    checks = {
        "randomisation_rank_corr": float(np.mean(scores["randomisation_rank_corr"])),
        "deletion_auc": float(np.mean(scores["deletion_auc"])),
        "random_deletion_auc": float(np.mean(scores["random_deletion_auc"])),
    }
    if "pointing_hit" in scores:
        checks["pointing_game"] = float(np.mean(scores["pointing_hit"]))
        checks["pointing_random"] = float(np.mean(scores["pointing_random"]))
    return checks
