"""Model-ready 224-pixel training batches per second with RandAugment: vitswin's batched one on the device against
timm's per-image pipeline (PIL images, timm's `rand_augment_transform` and torchvision, in DataLoader workers).

Both draw flip + RandAugment `rand-m9-n2-inc1` (2 operations at strength 9 of 10, as DeiT's and Swin's fine-tuning
recipes do but without their per-image noise on the strength: with it, timm's posterize asks Pillow for 0 bits, which
Pillow 10 and later refuse), from the CIFAR-10 JPEGs at 32 px (or the built-in shapes data when they are
absent), and take turns for --rounds rounds; each reports its median.
Usage: python benchmarks/randaugment_vs_timm.py [--rounds 3] [--batches 20] [--workers 2]; prints JSON.
"""

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from vitswin.bench.pipeline import BatchSpec, compare_pipelines
from vitswin.config import AugmentConfig, DataConfig
from vitswin.data import read_source

CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    data = (
        DataConfig(source="cifar10", root=str(CIFAR10), image_size=32)
        if CIFAR10.is_dir()
        else DataConfig(source="shapes", image_size=32, train_size=2000, test_size=100)
    )
    train, _ = read_source(data)
    augment = AugmentConfig(hflip=True, randaugment=2, randaugment_magnitude=9, randaugment_std=0.0)
    spec = BatchSpec(augment, 224, data.mean, data.std)
    results = compare_pipelines(train, spec, args.batches, args.workers, rounds=args.rounds)
    print(json.dumps({"data": data.source, "results": [asdict(result) for result in results]}, indent=2))


if __name__ == "__main__":
    main()
