"""Explanations: heatmaps of what ViT and Swin look at, the published figures, and attention measured.

Import the heavy parts from their modules (`methods`, `runner`); this package only names the options.
"""

from vitswin.explain.options import METHODS, SLOW_METHODS, ExplainOptions

__all__ = ["METHODS", "SLOW_METHODS", "ExplainOptions"]
