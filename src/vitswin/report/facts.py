"""What the findings know about one model (or one cell of a design) over its seeds."""

from dataclasses import dataclass, field

import numpy as np

from vitswin.report.stats import resampled_ece


@dataclass(frozen=True)
class ModelFacts:
    """What the findings know about one model, over its seeds: per-image correctness and confidence on the shared
    test set, its size, its speed on this machine (timing rounds) and (where every seed was explained on the same
    images) per-image heatmap measurements."""

    name: str
    seeds: list[int]
    correct: np.ndarray  # (seeds, N) bool, in test-set order
    confidence: np.ndarray  # (seeds, N) the top class's probability
    parameters: int
    flops: float
    chance: float  # the accuracy of always answering the test set's most frequent class
    speed: dict[str, np.ndarray] = field(default_factory=dict)  # "train"/"inference" -> images/s per timing round
    network: str = ""  # what the network is (architecture and options): equal strings are the same network
    attention: dict[str, np.ndarray] = field(default_factory=dict)  # measure -> (seeds, images), same images
    recipe: dict[str, object] = field(default_factory=dict)  # how it was trained: ModelConfig.recipe()
    architecture: str = ""  # the study's model key it is a cell of (a design's runs share it); "": its own name
    coordinates: dict[str, str] = field(default_factory=dict)  # its values on the design's axes (config.DESIGN_AXES)
    train_images: int = 0  # how many training images it was trained on
    best_epochs: tuple[int, ...] = ()  # each seed's epoch of highest validation accuracy

    @property
    def model(self) -> str:
        """The architecture: the study's model key (a cell of a design shares it with the model's other cells)."""
        return self.architecture or self.name

    @property
    def accuracy(self) -> np.ndarray:
        """(seeds,) test accuracy of each run."""
        return self.correct.mean(1)

    @property
    def ece(self) -> np.ndarray:
        """(seeds,) expected calibration error of each run."""
        images = np.arange(self.correct.shape[1])[None]
        return np.array([resampled_ece(c, r, images)[0] for c, r in zip(self.confidence, self.correct, strict=True)])
