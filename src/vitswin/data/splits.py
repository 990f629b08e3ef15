"""Seeded, stratified selection of image indices: validation hold-outs and size limits."""

import torch


def stratified_split(labels: torch.Tensor, held_out: int | float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (kept, held) with every class represented in proportion.

    `held_out` is a count of images or a fraction of `labels`. The same labels and seed always give
    the same split; both parts are sorted index tensors and together cover every index exactly once.
    """
    total = len(labels)
    target = round(held_out * total) if isinstance(held_out, float) else held_out
    target = max(0, min(total, target))
    gen = torch.Generator().manual_seed(seed)
    classes, counts = labels.unique(return_counts=True)
    # Largest-remainder allocation: per-class shares that add up to exactly `target`.
    exact = counts.double() * target / max(total, 1)
    take = exact.floor().long()
    remainder_order = torch.argsort(exact - take, descending=True, stable=True)
    take[remainder_order[: target - int(take.sum())]] += 1
    held = []
    for cls, count in zip(classes.tolist(), take.tolist(), strict=True):
        members = (labels == cls).nonzero().flatten()
        held.append(members[torch.randperm(len(members), generator=gen)[:count]])
    held_idx = torch.cat(held).sort().values if held else torch.empty(0, dtype=torch.long)
    is_held = torch.zeros(total, dtype=torch.bool)
    is_held[held_idx] = True
    return (~is_held).nonzero().flatten(), held_idx
