"""Training batches per second from the decoded image store (read by index) against the same images in memory.

Both draw the same seeded training batches (index gather) and transform them on the CPU with the default
augmentation into model inputs; rounds alternate between the two, so a noisy machine slows both alike.
Usage: python benchmarks/store_vs_memory.py [--rounds 3] [--batches 30]; prints JSON.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vitswin.config import AugmentConfig
from vitswin.data.cifar10 import as_decoded
from vitswin.data.imageset import ImageSet
from vitswin.data.store import build_store
from vitswin.model.transforms import BatchTransform
from vitswin.training.batching import TrainingBatches, resident_loader

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
SETS = {
    "default study size (4,500 x 32 px, input 32)": (4500, 32, 32),
    "224-px set (2,000 x 224 px, input 224)": (2000, 224, 224),
}


def images_per_s(image_set: ImageSet, transform: BatchTransform, batches: int) -> float:
    loader = iter(resident_loader(image_set, TrainingBatches(len(image_set), 64, seed=0)))
    next(loader)
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        images, _labels = next(loader)
        count += len(transform(images, train=True))
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (count, size, input_size) in SETS.items():
            generator = torch.Generator().manual_seed(0)
            pixels = torch.randint(0, 256, (count, size, size, 3), dtype=torch.uint8, generator=generator).numpy()
            labels = [index % 10 for index in range(count)]
            store, _ = build_store(
                Path(folder), f"bench-{size}", pixels, labels, [str(c) for c in range(10)], size, as_decoded, name
            )
            stored = ImageSet(store.pixels, store.labels, store.class_names, store=store.path)
            memory = ImageSet(store.pixels[:], store.labels, store.class_names)
            transform = BatchTransform(input_size, MEAN, STD, AugmentConfig(hflip=True))
            rounds = [
                {kind: images_per_s(data, transform, args.batches) for kind, data in (("memory", memory), ("store", stored))}
                for _ in range(args.rounds)
            ]
            results[name] = {"rounds": rounds, "store_over_memory": [r["store"] / r["memory"] for r in rounds]}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
