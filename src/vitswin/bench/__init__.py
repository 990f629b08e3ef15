"""Benchmarks: what models, the input pipeline and the training engine cost on this machine.

Only names live here, so that the CLI can show the defaults without importing PyTorch."""

SCALING_MODELS = ("vit_base_patch16_224", "swin_base_patch4_window7_224")  # `vitswin bench scaling` defaults
SCALING_SIZES = (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384)
