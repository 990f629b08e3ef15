"""Explanations: heatmaps of what ViT and Swin look at, the published figures, and attention measured.

The methods and measures are registered in vitswin.registry; the options are vitswin.config.ExplainConfig.
"""
