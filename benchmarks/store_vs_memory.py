"""Training images per second from the decoded image store against the same images resident in memory.

One training epoch of the default study's ViT (its recipe, random weights, the same seed; exactly as `fit` trains,
validation left out) on the same images, read from a store or from a tensor in memory, in rounds that alternate
which goes first, so a noisy machine slows both alike. Two sets: the default study's size (4,500 images of 32 px)
and a 224-pixel set (2,000 images, resized to the model's 32 px on the device, so reading dominates more).
Usage: python benchmarks/store_vs_memory.py [--rounds 3]; prints JSON.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vitswin.bench.epoch import one_epoch_classifier, train_one_epoch
from vitswin.config import Hardware, StudyConfig, load_config
from vitswin.data.cifar10 import as_decoded
from vitswin.data.imageset import ImageSet
from vitswin.data.store import build_store

SETS = {"default study size (4,500 x 32 px)": (4500, 32), "224-px set (2,000 x 224 px)": (2000, 224)}


def images_per_s(config: StudyConfig, data: ImageSet) -> float:
    module = one_epoch_classifier(config, "vit")
    start = time.perf_counter()
    train_one_epoch(module, data, Hardware("cpu"), seed=0)
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = {"threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as folder:
        for name, (count, size) in SETS.items():
            config = load_config(None, [f"data.image_size={size}"])
            generator = torch.Generator().manual_seed(0)
            pixels = torch.randint(0, 256, (count, size, size, 3), dtype=torch.uint8, generator=generator).numpy()
            labels = [index % 10 for index in range(count)]
            classes = [str(c) for c in range(10)]
            store, _ = build_store(Path(folder), f"bench-{size}", pixels, labels, classes, size, as_decoded, name)
            sets = {
                "store": ImageSet(store.pixels, store.labels, classes, store=store.path),
                "memory": ImageSet(store.pixels[:], store.labels, classes),
            }
            images_per_s(config, sets["memory"])  # warm-up: first-call costs and the page cache
            rounds = []
            for index in range(args.rounds):
                order = ["memory", "store"] if index % 2 == 0 else ["store", "memory"]
                rounds.append({kind: images_per_s(config, sets[kind]) for kind in order})
            ratios = [r["store"] / r["memory"] for r in rounds]
            results[name] = {"rounds": rounds, "store_over_memory": ratios, "median": statistics.median(ratios)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
