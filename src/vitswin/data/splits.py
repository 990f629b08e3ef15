"""Seeded, stratified selection of image indices: validation hold-outs, size limits and nested training subsets."""

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


def nested_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """The first `size` indices (sorted) of one seeded, stratified order of `labels`: every class in proportion,
    and a smaller subset is part of every larger one (for data-efficiency curves)."""
    gen = torch.Generator().manual_seed(seed)
    positions, keys = [], []
    for cls in labels.unique().tolist():
        members = (labels == cls).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        positions.append(members)
        keys.append((torch.arange(len(members), dtype=torch.float64) + 0.5) / len(members))  # each image's quantile
    order = torch.cat(positions)[torch.argsort(torch.cat(keys), stable=True)] if positions else labels.new_empty(0)
    return order[:size].sort().values
