"""Which test images to explain: a seeded sample spread over the classes, optionally only the hard ones."""

import numpy as np
import torch

from vitswin.errors import VitswinError


def select_images(
    labels: torch.Tensor, count: int, seed: int, mode: str = "sample", predictions: list[np.ndarray] | None = None
) -> torch.Tensor:
    """Indices of up to `count` test images, taking the classes in turn so each appears about equally.

    mode "sample" draws from all images; "disagree" from those the models predict differently;
    "wrong" from those at least one model gets wrong (both need each model's test-set `predictions`).
    """
    labels_np = labels.numpy()
    if mode == "sample":
        candidates = np.ones(len(labels_np), dtype=bool)
    elif mode == "disagree":
        if len(predictions or []) < 2:
            raise VitswinError("--select disagree compares models; pass two or more run folders.")
        stacked = np.stack(predictions)
        candidates = (stacked != stacked[0]).any(0)
    elif mode == "wrong":
        candidates = (np.stack(predictions) != labels_np).any(0)
    else:
        raise VitswinError(f"unknown image selection '{mode}'; choose sample, disagree or wrong.")
    if not candidates.any():
        raise VitswinError(f"no test image qualifies for --select {mode}; use --select sample.")
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(candidates & (labels_np == c))) for c in np.unique(labels_np)]
    # Round-robin over the classes: the first images cover as many classes as possible.
    depth = max(len(indices) for indices in per_class)
    order = [int(indices[i]) for i in range(depth) for indices in per_class if i < len(indices)]
    return torch.tensor(order[:count], dtype=torch.long)
