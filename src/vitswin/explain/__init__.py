"""Explanations: heatmaps of what ViT and Swin look at, the published figures, and attention measured."""

from vitswin.explain.methods import METHODS, SLOW_METHODS, explain_batch
from vitswin.explain.runner import ExplainOptions, explain_runs

__all__ = ["METHODS", "SLOW_METHODS", "ExplainOptions", "explain_batch", "explain_runs"]
