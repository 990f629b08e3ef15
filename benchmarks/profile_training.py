"""Where one training step's time goes: PyTorch profiler self-times of a timm model's step, grouped.

    python benchmarks/profile_training.py swin_base_patch4_window7_224 --size 224 --batch 8 [--fused-attention]

Groups: matrix multiplications (linear layers and attention), copies and layout changes (window partition,
roll, permutes, patch merging), other element-wise and normalisation work, and the AdamW update.
"""

import argparse
from collections import defaultdict

import timm
from torch.profiler import ProfilerActivity, profile

from vitswin.bench.measure import TrainSettings, training_step

GROUPS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::_scaled_dot_product", "aten::linear"),
    "copies and layout": (
        "aten::copy_",
        "aten::cat",
        "aten::roll",
        "aten::clone",
        "aten::index",
        "aten::_index_put",
        "aten::constant_pad_nd",
        "aten::contiguous",
        "aten::fill_",
        "aten::zero_",
    ),
    "optimizer": ("aten::lerp_", "aten::addcdiv_", "aten::addcmul_", "aten::sqrt", "aten::_foreach", "aten::_fused_adamw"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--fused-attention", action="store_true", help="timm's fused attention in every block")
    args = parser.parse_args()
    network = timm.create_model(args.model, num_classes=10, img_size=args.size)
    for module in network.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = args.fused_attention
    step = training_step(network, args.size, TrainSettings(batch=args.batch))
    step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        step()
    totals: dict[str, float] = defaultdict(float)
    for event in profiler.key_averages():
        group = next((name for name, prefixes in GROUPS.items() if event.key.startswith(prefixes)), "other element-wise")
        totals[group] += event.self_cpu_time_total
    whole = sum(totals.values())
    for group, micros in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"{group:<22} {micros / 1e6:7.2f} s  {100 * micros / whole:5.1f} %")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
