"""Study configuration: YAML files loaded into typed, validated objects, with command-line overrides.

Every key has a default here, with a comment on what it means. Unknown keys and bad values are
rejected before any work starts, with one sentence that names the key, the value and what is allowed.
"""

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vitswin.errors import VitswinError
from vitswin.registry import METHODS, SOURCES, compared_measures, hypothesis_metrics

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


# timm model options that are training choices (how features are pooled), not the shape of the network.
RECIPE_OPTIONS = ("global_pool",)

MAX_SEED = 2**32 - 1  # the largest seed every generator a run seeds accepts (NumPy's; Lightning's seed_everything)
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
# A design's axes: config key -> (the axis's name in a run's coordinates, what a value other than the model's own
# adds to the run key). <model>+recipe-<r>: trained with another recipe; +train-<n>: on a nested subset of the
# training images; +input-<n>: at another input resolution; +weights-<w>: from another initialisation.
DESIGN_AXES = {
    "recipes": ("recipe", "+recipe-"),
    "train_sizes": ("train size", "+train-"),
    "input_sizes": ("input size", "+input-"),
    "weights": ("weights", "+weights-"),
}
NO_DESIGN = {"recipes": "own", "train_sizes": None, "input_sizes": None, "weights": None}


def _count_or_auto(value: Any) -> Any:
    if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError("must be a whole number of at least 1, or 'auto'")
    return value


# One sentence for both kinds of bad value, rather than one error per member of the union.
CountOrAuto = Annotated[int | Literal["auto"], BeforeValidator(_count_or_auto)]


@dataclass(frozen=True)
class Hardware:
    """Where training runs: Lightning's accelerator, devices per node, number of nodes and strategy, as the config
    asks (vitswin.training.trainer resolves them on this machine and launcher)."""

    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"

    def one_process(self) -> "Hardware":
        """The same accelerator in one process: where a finished run predicts (evaluate, explain, predict, export);
        predicting is cheap next to training, and the result is the same."""
        return Hardware(self.accelerator)


ONE_DEVICE = Hardware()  # one process on the automatically chosen accelerator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AugmentConfig(_Strict):
    """Training-time augmentation, drawn independently for every image of a batch."""

    hflip: bool = False  # flip left-right with probability 0.5
    brightness: float = Field(0.0, ge=0)  # factor drawn from [max(0, 1 - b), 1 + b], as torchvision's ColorJitter
    contrast: float = Field(0.0, ge=0)
    saturation: float = Field(0.0, ge=0)
    degrees: float = Field(0.0, ge=0, le=180)  # random affine: rotation drawn from [-degrees, degrees]
    translate: float = Field(0.0, ge=0, lt=1)  # shift up to this fraction of the width / height
    scale: tuple[float, float] = (1.0, 1.0)  # zoom factor drawn from [low, high]
    # RandAugment with timm's operations, on the device at the stored resolution (timm's --aa rand-m9-n2-mstd0.5-inc1
    # is randaugment 2, randaugment_magnitude 9, randaugment_std 0.5); 0 operations turns it off.
    randaugment: int = Field(0, ge=0, le=10)  # operations per image
    randaugment_magnitude: float = Field(9.0, ge=0, le=10)  # their strength, of 10
    randaugment_std: float = Field(0.5, ge=0)  # per-image Gaussian noise on the strength
    # Regularisers on the model-ready batch, with timm's semantics (timm train.py's flags in brackets); 0 turns each off.
    erase_prob: float = Field(0.0, ge=0, le=1)  # random erasing per image, noise-filled (--reprob, --remode pixel)
    mixup: float = Field(0.0, ge=0)  # Mixup's alpha (--mixup)
    cutmix: float = Field(0.0, ge=0)  # CutMix's alpha (--cutmix)
    mix_prob: float = Field(1.0, ge=0, le=1)  # chance that a batch is mixed (--mixup-prob)
    mix_switch_prob: float = Field(0.5, ge=0, le=1)  # with both on: chance of CutMix instead of Mixup (--mixup-switch-prob)

    @field_validator("scale")
    @classmethod
    def _ordered_positive(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not 0 < scale[0] <= scale[1]:
            raise ValueError("must be [low, high] with 0 < low <= high")
        return scale

    @property
    def colour_jitter(self) -> bool:
        return self.brightness > 0 or self.contrast > 0 or self.saturation > 0

    @property
    def affine(self) -> bool:
        return self.degrees > 0 or self.translate > 0 or self.scale != (1.0, 1.0)

    @property
    def mixing(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.mix_prob > 0


class TrainConfig(_Strict):
    """The training recipe of one model."""

    batch_size: int = Field(32, gt=0)  # images per optimizer step, over all processes together
    micro_batch_size: int | None = Field(None, gt=0)  # images per forward pass on one process; smaller than
    # batch_size / processes means gradient accumulation. None: batch_size / processes (no accumulation)
    max_epochs: int = Field(50, gt=0)
    lr: float = Field(1e-4, gt=0)  # peak learning rate
    weight_decay: float = Field(0.01, ge=0)
    optimizer: str = "adamw"  # any timm optimizer (timm.optim.list_optimizers(): adamw, sgd, lamb, lion, ...), timm's defaults
    # True: no weight decay on biases, norm weights and the model's no_weight_decay() (position embeddings, class
    # token), as timm's train.py does; False: decay on every parameter
    exclude_from_decay: bool = False
    layer_decay: float | None = Field(None, gt=0, le=1)  # layer-wise lr decay (timm's --layer-decay; excludes as above)
    ema_decay: float | None = Field(None, gt=0, lt=1)  # an EMA of the weights (timm's ModelEmaV3), validated and kept
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0)  # cosine only: linear warm-up from 0, in (fractional) epochs
    plateau_factor: float = Field(0.1, gt=0, lt=1)  # plateau only: LR multiplier when validation accuracy stalls
    plateau_patience: int = Field(2, ge=0)  # plateau only: epochs without improvement before the LR drops
    patience: int = Field(5, ge=0)  # early stopping on validation accuracy; 0 turns it off
    min_delta: float = Field(0.001, ge=0)  # improvement that counts, as a fraction (0.001 = 0.1 percentage point)
    grad_clip: float = Field(1.0, ge=0)  # max gradient norm; 0 turns clipping off
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"


class ModelConfig(_Strict):
    """One model of the study: a timm architecture, its weights, input size, head and recipe."""

    name: str  # any timm model name, e.g. vit_base_patch16_224
    pretrained: str = "none"  # "hub" (timm's default weights), "none" (random init) or a weights file path
    # Model input size; the stored images (data.image_size) are resized to it on the device. Run folders written
    # before the key was renamed say `image_size`, which is still read.
    input_size: int = Field(224, gt=0, validation_alias=AliasChoices("input_size", "image_size"))
    options: dict[str, Any] = {}  # extra keyword arguments for timm.create_model (depth, embed_dim, ...)
    head_dropout: float = Field(0.0, ge=0, lt=1)  # dropout before the linear classifier
    # Train on a stratified subset of this many training images (a fraction: of the training split), nested: a
    # smaller subset is part of every larger one. None: all of them. Set per run by a design's `train_sizes`.
    train_images: int | float | None = Field(None, gt=0)
    explain_layer: str | None = None  # module explained (e.g. "layer3"); None: chosen from the model (docs/explain.md)
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("pretrained")
    @classmethod
    def _known_source(cls, pretrained: str) -> str:
        return _weights_source(pretrained)

    def own_recipe(self) -> "RecipeConfig":
        """The model's recipe as one a design can give to any model."""
        options = {key: self.options[key] for key in RECIPE_OPTIONS if key in self.options}
        return RecipeConfig(train=self.train, augment=self.augment, head_dropout=self.head_dropout, options=options)

    def with_recipe(self, recipe: "RecipeConfig") -> "ModelConfig":
        """This architecture trained with `recipe`: its train, augment, head_dropout and recipe options replaced."""
        options = {key: value for key, value in self.options.items() if key not in RECIPE_OPTIONS} | recipe.options
        update = {"train": recipe.train, "augment": recipe.augment, "head_dropout": recipe.head_dropout, "options": options}
        return self.model_copy(update=update)

    def recipe(self) -> dict[str, Any]:
        """How the model is trained and fed, as flat keys (train.lr, augment.hflip, options.global_pool...), as
        opposed to what it is (its name and the options that shape the network)."""
        flat: dict[str, Any] = {"pretrained": self.pretrained, "input_size": self.input_size, "head_dropout": self.head_dropout}
        flat |= {f"train.{key}": value for key, value in self.train.model_dump().items()}
        flat |= {f"augment.{key}": value for key, value in self.augment.model_dump().items()}
        return flat | {f"options.{key}": self.options[key] for key in RECIPE_OPTIONS if key in self.options}


class RecipeConfig(_Strict):
    """A named recipe of a design (`recipes`): how a model is trained, given to every model of the study."""

    train: TrainConfig = TrainConfig()
    augment: AugmentConfig = AugmentConfig()
    head_dropout: float = Field(0.0, ge=0, lt=1)
    options: dict[str, Any] = {}  # the timm options that are training choices: global_pool

    @field_validator("options")
    @classmethod
    def _recipe_options_only(cls, options: dict[str, Any]) -> dict[str, Any]:
        if other := sorted(set(options) - set(RECIPE_OPTIONS)):
            raise ValueError(
                f"a recipe may set only {', '.join(RECIPE_OPTIONS)} of a model's options, not {', '.join(other)} "
                f"(they shape the network: set them under the model)"
            )
        return options


class HFConfig(_Strict):
    """A Hugging Face `datasets` dataset (data.source: hf): by hub name, or a local copy."""

    # A hub name (e.g. "uoft-cs/cifar10", downloaded into the cache once), or a local path: a save_to_disk folder,
    # a parquet or arrow file, or a folder of them (split names from the file names, e.g. train-*.parquet).
    path: str
    name: str | None = None  # the dataset's configuration (subset), where it has several
    train: str = "train"  # split to train (and validate) on
    test: str | None = "test"  # split to test on; None, or a split the dataset lacks: data.test_split of train
    image_column: str | None = None  # default: the first column of images
    label_column: str | None = None  # default: the first column of class labels, else one named "label(s)"


class DataConfig(_Strict):
    """Where the images come from and how they are split and normalised."""

    source: str = "shapes"  # a registered data source: shapes, cifar10, imagefolder, hf (docs/configuration.md)
    root: str | None = None  # cifar10: download/cache folder; imagefolder: the image folder
    hf: HFConfig | None = None  # source hf: which dataset, splits and columns
    download: bool = True  # cifar10: download when the files are not in `root`
    cache_dir: str = "~/.cache/vitswin"  # decoded image folders are cached here as uint8 tensors
    image_size: int = Field(32, gt=0)  # images are stored resident at this size (models resize on the device)
    train_size: int | None = Field(None, gt=0)  # shapes: images generated; others: use at most this many
    test_size: int | None = Field(None, gt=0)
    val_split: float | Literal["test"] = 0.1  # fraction held out from training (stratified), or "test"
    test_split: float = Field(0.2, gt=0, lt=1)  # imagefolder without train/ and test/: fraction used as test
    bad_images: Literal["error", "skip"] = "error"  # a file that is not a readable image: stop, or skip and count
    # Seeds the data alone: generating shapes, the validation split, the test split of an unsplit folder and size
    # limits. Fixed for every training seed, so all runs of a study see the same images.
    seed: int = Field(0, ge=0, le=MAX_SEED)
    mean: tuple[float, float, float] = CIFAR10_MEAN
    std: tuple[float, float, float] = CIFAR10_STD

    @field_validator("source")
    @classmethod
    def _registered_source(cls, source: str) -> str:
        return _registered(source, SOURCES.names())

    @field_validator("val_split", mode="before")
    @classmethod
    def _fraction_or_test(cls, val_split: Any) -> Any:
        if val_split == "test" or (isinstance(val_split, (int, float)) and 0 < val_split < 1):
            return val_split
        raise ValueError("must be a fraction between 0 and 1, or 'test' to validate on the test set")

    @field_validator("std")
    @classmethod
    def _positive(cls, std: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(std) <= 0:
            raise ValueError("must be three positive numbers")
        return std

    @model_validator(mode="after")
    def _keys_the_source_requires(self) -> "DataConfig":
        for key, sentence in SOURCES[self.source].requires.items():
            if not getattr(self, key):
                raise ValueError(f"{sentence} when data.source is {self.source}")
        return self


class ExplainConfig(_Strict):
    """What to explain and how: `vitswin study` explains the models of each seed with these, `vitswin explain`
    takes them as options (docs/explain.md)."""

    method: str = "gradcam"  # a registered heatmap method: gradcam, gradcam++, ..., rollout
    images: int = Field(64, gt=0)  # test images measured
    show: int = Field(16, gt=0)  # drawn in the figures: the first of the measured images, one class after another
    target: Literal["pred", "true"] = "pred"  # explain the predicted class or the true one
    select: Literal["sample", "disagree", "wrong"] = "sample"  # a seeded sample, or images the models disagree on / miss
    seed: int = Field(0, ge=0, le=MAX_SEED)  # of the image sample and the random baseline maps
    batch_size: int = Field(16, gt=0)
    steps: int = Field(16, gt=0)  # points on each deletion / insertion curve, after the start
    # ROAD faithfulness: one sparse solve per image and removal step, the slowest measure on small models.
    road: bool = True

    @field_validator("method")
    @classmethod
    def _registered_method(cls, method: str) -> str:
        return _registered(method, METHODS.names())


class HypothesisConfig(_Strict):
    """A claim stated before the study runs: `higher` (or `lower`) has a higher (lower) `metric` than `than`, both
    model keys. The report's first section gives each its verdict (docs/report.md, "Hypotheses")."""

    metric: str  # a compared measure (accuracy, calibration, train_speed, top10_share, ...) or best_epoch
    higher: str | None = None
    lower: str | None = None
    than: str
    # A design axis ("recipe", "train size", "input size", "weights"): the claim must hold at each of its values
    # (every pair of the two models' cells that differ in the architecture alone); none: the two models as given.
    within: str | None = None
    claim: str = ""  # the claim in words, e.g. as published

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        return _registered(metric, tuple(hypothesis_metrics()))

    @field_validator("within")
    @classmethod
    def _known_axis(cls, within: str | None) -> str | None:
        return within if within is None else _registered(within, tuple(name for name, _ in DESIGN_AXES.values()))

    @model_validator(mode="after")
    def _one_direction(self) -> "HypothesisConfig":
        if (self.higher is None) == (self.lower is None):
            raise ValueError("a hypothesis names either 'higher' or 'lower' (a model key), and 'than'")
        if self.model == self.than:
            raise ValueError(f"a hypothesis compares two models, not {self.than!r} with itself")
        return self

    @property
    def model(self) -> str:
        """The model the claim says is higher (or lower)."""
        return self.higher or self.lower or ""

    def text(self, topic: str) -> str:
        return f"{topic}: {self.model} {'higher' if self.higher else 'lower'} than {self.than}" + (
            f", within each {self.within}" if self.within else ""
        )


class StudyConfig(_Strict):
    """A whole study: data, the models compared on it, and where the results go."""

    name: str = "study"  # results go to <out_dir>/<name>/
    out_dir: str = "runs"
    # Training seeds: every model is trained once per seed (initialisation, batch order, augmentation, dropout),
    # on the same images (data.seed). Three or more let the report compare architectures, not single trained
    # models. `seed: N` is read as `seeds: [N]`.
    seeds: tuple[int, ...] = (0,)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: CountOrAuto = 1  # devices (GPUs, or CPU processes) per node; "auto": all
    num_nodes: int = Field(1, gt=0)  # machines; more than one needs torchrun or SLURM (docs/distributed.md)
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"  # "auto": DDP when there is more than one process
    # (model, seed) runs trained at once on one machine, each in its own process with its share of the CPU threads;
    # "auto": on the CPU, one per thread (small models train more images per second that way), else one.
    jobs: CountOrAuto = 1
    # Lightning's logger for each run's curves, in <run>/logs/ ("mlflow": <study>/mlruns, needs the mlflow
    # package); history.csv is written whatever is chosen.
    logger: Literal["tensorboard", "csv", "mlflow", "none"] = "tensorboard"
    data: DataConfig = DataConfig()
    models: dict[str, ModelConfig]
    # Recipes as an axis of the design (docs/configuration.md, "Designs"): "own" (each model with its own recipe),
    # "swap" (every model with every model's own recipe: 2 models give a 2x2), or named recipes given to every
    # model, each a recipe (train, augment, head_dropout, options.global_pool) or a model key (that model's own).
    recipes: Literal["own", "swap"] | dict[str, RecipeConfig | str] = "own"
    # Training-set sizes as an axis of the design: counts, fractions of the training split, or "all"; each model is
    # trained on each, nested subsets of one stratified order (data-efficiency curves).
    train_sizes: tuple[int | float | Literal["all"], ...] | None = None
    # Input resolutions as an axis: each model is trained and tested at each (resolution curves).
    input_sizes: tuple[Annotated[int, Field(gt=0)], ...] | None = None
    # Initialisations as an axis: "none" (random), "hub" (timm's pretrained weights) or weights files, each model
    # trained from each (pretrained against scratch).
    weights: tuple[str, ...] | None = None
    # Claims stated before the study runs, each judged in the report's first section (Holm over all of them).
    hypotheses: tuple[HypothesisConfig, ...] = ()
    explain: ExplainConfig = ExplainConfig()
    # The report's primary comparison (accuracy, calibration, train_speed, inference_speed, top10_share,
    # pointing_hit, deletion_auc), tested at 5 % over its pairs alone; every other finding is corrected together
    # (docs/report.md, "Statistics").
    primary: str = "accuracy"

    @model_validator(mode="before")
    @classmethod
    def _seed_is_one_seed(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "seed" in raw:
            if "seeds" in raw:
                raise ValueError("set either 'seeds' (a list) or 'seed' (one seed), not both")
            raw = {**raw, "seeds": [raw["seed"]]}
            del raw["seed"]
        return raw

    @field_validator("seeds", mode="before")
    @classmethod
    def _list_of_seeds(cls, seeds: Any) -> Any:
        if not isinstance(seeds, (list, tuple)):
            raise ValueError("must be a list of seeds, e.g. [0, 1, 2]")
        return seeds

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if not seeds:
            raise ValueError("must name at least one seed, e.g. [0, 1, 2]")
        if min(seeds) < 0 or max(seeds) > MAX_SEED:
            raise ValueError(f"seeds must be whole numbers from 0 to {MAX_SEED} (what NumPy's generator accepts)")
        if len(set(seeds)) < len(seeds):
            raise ValueError("must not repeat a seed")
        return seeds

    @model_validator(mode="after")
    def _no_average_of_sharded_weights(self) -> "StudyConfig":
        # The moving average is a full copy of the network, updated from its parameters, which FSDP shards.
        averaged = [key for key, model in self.models.items() if model.train.ema_decay]
        if averaged and self.strategy == "fsdp":
            key = averaged[0]
            raise ValueError(f"models.{key}.train.ema_decay cannot be combined with strategy fsdp; use ddp, or drop ema_decay")
        return self

    @field_validator("primary")
    @classmethod
    def _compared_measure(cls, primary: str) -> str:
        return _registered(primary, tuple(compared_measures()))

    @field_validator("name")
    @classmethod
    def _plain_study_name(cls, name: str) -> str:
        return _plain_folder_name(name)

    @field_validator("models")
    @classmethod
    def _not_empty(cls, models: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        if not models:
            raise ValueError("must name at least one model")
        for key in models:
            _plain_folder_name(key, f"model key {key!r}")
        return models

    @field_validator("train_sizes")
    @classmethod
    def _sizes(cls, sizes: tuple | None) -> tuple | None:
        for size in _axis_values(sizes, "training-set size, e.g. [500, 1000, all]"):
            if size != "all" and (isinstance(size, bool) or size <= 0 or (isinstance(size, float) and size > 1)):
                raise ValueError("sizes must be counts of images (at least 1), fractions in (0, 1] or 'all'")
        return sizes

    @field_validator("input_sizes")
    @classmethod
    def _input_sizes(cls, sizes: tuple | None) -> tuple | None:
        _axis_values(sizes, "input size, e.g. [160, 224]")
        return sizes

    @field_validator("weights")
    @classmethod
    def _initialisations(cls, weights: tuple | None) -> tuple | None:
        for source in _axis_values(weights, "initialisation, e.g. [none, hub]"):
            _weights_source(source)
        labels = [weights_label(source) for source in weights or ()]
        if clash := sorted({label for label in labels if labels.count(label) > 1}):
            raise ValueError(f"two weights files are both named {clash[0]!r}; rename one")
        return weights

    @model_validator(mode="after")
    def _recipes_name_models(self) -> "StudyConfig":
        if isinstance(self.recipes, dict):
            if not self.recipes:
                raise ValueError("recipes must name at least one recipe, or be 'own' or 'swap'")
            for name, recipe in self.recipes.items():
                _plain_folder_name(name, f"recipe name {name!r}")
                if isinstance(recipe, str) and recipe not in self.models:
                    raise ValueError(
                        f"recipe {name!r} names {recipe!r}, which is not a model of the study ({', '.join(self.models)}); "
                        f"name a model to use its own recipe, or write the recipe out"
                    )
        for index, hypothesis in enumerate(self.hypotheses):
            if unknown := [key for key in (hypothesis.model, hypothesis.than) if key not in self.models]:
                raise ValueError(
                    f"hypothesis {index + 1} names {unknown[0]!r}, which is not a model of the study; choose one of: "
                    f"{', '.join(self.models)}"
                )
        keys = [key for cells in self.design().values() for key in cells]
        if clash := sorted({key for key in keys if keys.count(key) > 1}):
            raise ValueError(f"the design names the run {clash[0]!r} twice; rename the model or the recipe")
        return self

    def recipe_axis(self) -> dict[str, RecipeConfig]:
        """The design's recipes by name (empty when every model keeps its own: no recipe axis)."""
        if self.recipes == "own":
            return {}
        if self.recipes == "swap":
            return {key: model.own_recipe() for key, model in self.models.items()}
        return {name: self.models[r].own_recipe() if isinstance(r, str) else r for name, r in self.recipes.items()}

    def _choices(self, key: str) -> list[list[tuple[str, str, bool, Callable[[ModelConfig], ModelConfig]]]]:
        """Per axis the design sets, in DESIGN_AXES order, model `key`'s choices: (axis name, value, whether it is
        the model's own, the model config given that value)."""
        model = self.models[key]
        named = self.recipes if isinstance(self.recipes, dict) else {name: name for name in self.models}
        recipes = [
            ("recipe", name, named[name] == key, lambda m, r=recipe: m.with_recipe(r))
            for name, recipe in self.recipe_axis().items()
        ]
        sizes = [
            ("train size", str(n), n == "all", lambda m, n=n: m.model_copy(update={"train_images": None if n == "all" else n}))
            for n in self.train_sizes or ()
        ]
        inputs = [
            ("input size", str(n), n == model.input_size, lambda m, n=n: m.model_copy(update={"input_size": n}))
            for n in self.input_sizes or ()
        ]
        weights = [
            ("weights", weights_label(w), w == model.pretrained, lambda m, w=w: m.model_copy(update={"pretrained": w}))
            for w in self.weights or ()
        ]
        return [axis for axis in (recipes, sizes, inputs, weights) if axis]

    def _cells(self) -> Iterator[tuple[str, str, dict[str, str], ModelConfig]]:
        """(model key, run key, its values on the design's axes, its model config) of every cell of the design. A
        value that is the model's own adds nothing to the run key, so a model keeps its folder and adding an axis
        later trains only new cells."""
        suffixes = {name: suffix for name, suffix in DESIGN_AXES.values()}
        for key, model in self.models.items():
            for combination in product(*self._choices(key)):
                run, values, config = key, {}, model
                for axis, value, own, apply in combination:
                    run += "" if own else suffixes[axis] + value
                    values[axis] = value
                    config = config if own else apply(config)
                yield key, run, values, config

    def design(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per model key, its cells: run key -> its values on the design's axes ("recipe", "train size", "input
        size", "weights"; none without a design)."""
        design: dict[str, dict[str, dict[str, str]]] = {key: {} for key in self.models}
        for key, run, values, _model in self._cells():
            design[key][run] = values
        return design

    @property
    def cells(self) -> dict[str, ModelConfig]:
        """Every run key of the design (a model with one value on each axis) and its model config: what is trained
        per seed."""
        return {run: model for _key, run, _values, model in self._cells()}

    @property
    def hardware(self) -> Hardware:
        """The accelerator, devices, nodes and strategy the study trains with."""
        return Hardware(self.accelerator, self.devices, self.num_nodes, self.strategy)

    @property
    def study_dir(self) -> Path:
        return Path(self.out_dir).expanduser() / self.name


def _axis_values(values: tuple | None, example: str) -> tuple:
    """An axis's values, refused when empty or repeated."""
    if values is None:
        return ()
    if not values:
        raise ValueError(f"must name at least one {example}")
    if len(set(values)) < len(values):
        raise ValueError("must not repeat a value")
    return values


def _weights_source(source: str) -> str:
    if source not in ("hub", "none") and not Path(source).expanduser().is_file():
        raise ValueError("must be 'hub', 'none' or the path of an existing weights file (.safetensors, .pth)")
    return source


def weights_label(source: str) -> str:
    """How an initialisation reads in a run key and the report: none, hub, or a weights file's name."""
    return source if source in ("hub", "none") else re.sub(r"[^A-Za-z0-9._-]", "-", Path(source).stem)


def _registered(name: str, names: tuple[str, ...]) -> str:
    """A registered name, or the sentence pydantic gives for a value outside a Literal."""
    if name not in names:
        quoted = [repr(each) for each in names]
        raise ValueError(
            f"input should be {', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else f"input should be {quoted[0]}"
        )
    return name


def _plain_folder_name(name: str, what: str = "it") -> str:
    """A study name or model key becomes a folder inside --out: refuse anything that could lead out of it."""
    if not PLAIN_NAME.fullmatch(name):
        raise ValueError(
            f"{what} is not a plain folder name; use letters, digits, '.', '_' and '-' only, starting with a letter or digit"
        )
    return name


def default_config_path() -> Path:
    """The built-in study used when no config is given: two small models on synthetic shapes."""
    return Path(str(resources.files("vitswin") / "default_study.yaml"))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> StudyConfig:
    """Read a study config from YAML (the built-in default when `path` is None) and apply `key=value` overrides."""
    path = Path(path) if path is not None else default_config_path()
    if not path.is_file():
        raise VitswinError(f"config file {path} does not exist; pass the path of a YAML study config.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise VitswinError(f"config file {path} is not valid YAML{where}; fix its syntax.") from None
    if not isinstance(raw, dict):
        raise VitswinError(f"config file {path} must hold a mapping of keys to values, not {type(raw).__name__}.")
    for override in overrides or []:
        apply_override(raw, override)
    return validate_config(raw)


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set one dotted key of a raw config mapping from `key=value`; the value is parsed as YAML."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise VitswinError(f"override '{override}' is not of the form key=value, e.g. models.vit.train.lr=2e-4.")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise VitswinError(f"override '{override}': '{part}' holds a value, not a section of keys.")
        node = child
    try:
        node[leaf] = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
        raise VitswinError(
            f"override '{override}': the value is not valid YAML ({problem}); quote it or close its brackets."
        ) from None


def validate_config(raw: dict[str, Any]) -> StudyConfig:
    """Turn a raw mapping into a StudyConfig, or raise one sentence about the first problem."""
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as error:
        # A value that fits no branch of a union (recipes: own, swap or named recipes) fails every branch: the
        # branch it got furthest into says what is wrong with it.
        raise VitswinError(_describe(max(error.errors(), key=lambda problem: len(_where(problem))))) from None


def _where(problem: dict[str, Any]) -> list[str]:
    """The config keys of a problem, without the names pydantic gives the branches of a union."""
    return [str(part) for part in problem["loc"] if not re.fullmatch(r"\w*\[.*\]|[A-Z]\w*Config|str|int|float|bool", str(part))]


def _describe(problem: dict[str, Any]) -> str:
    loc = _where(problem)
    key = ".".join(loc)
    if problem["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown config key '{key}'; {hint}allowed here: {', '.join(allowed)}."
    if problem["type"] == "missing":
        return f"config key '{key}' is required; add it to the config."
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "value_error" and problem.get("input") is not None and isinstance(problem["input"], dict):
        return f"config section '{key or 'study'}' is invalid: {message}."
    return f"config key '{key}' has bad value {problem['input']!r}: {message[0].lower()}{message[1:]}."


def _allowed_keys(loc: list[str]) -> list[str]:
    """The field names of the config section at `loc` (model names under `models` are free)."""
    section: type[BaseModel] = StudyConfig
    parts = iter(loc)
    for part in parts:
        if section is StudyConfig and part == "models":
            next(parts, None)  # the model's own name
            section = ModelConfig
            continue
        annotation = section.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = annotation
    return list(section.model_fields)


def to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML, for saving beside the results."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
