"""What `vitswin explain` can be asked for: method names and options (light to import, for the CLI)."""

from dataclasses import dataclass
from typing import Literal

CAM_METHOD_NAMES = ("gradcam", "gradcam++", "hirescam", "layercam", "xgradcam", "eigencam", "scorecam", "ablationcam")
SLOW_METHODS = ("scorecam", "ablationcam")  # one forward pass per channel of the target layer
METHODS = (*CAM_METHOD_NAMES, "rollout")


@dataclass(frozen=True)
class ExplainOptions:
    """What to explain and how; the defaults are what `vitswin explain` uses."""

    method: str = "gradcam"
    images: int = 64  # measured
    show: int = 16  # drawn in the figures: the first of the measured images, one class after another
    target: Literal["pred", "true"] = "pred"
    select: Literal["sample", "disagree", "wrong"] = "sample"
    seed: int = 0
    batch_size: int = 16
    steps: int = 16  # points on each deletion / insertion curve, after the start
    road: bool = True
