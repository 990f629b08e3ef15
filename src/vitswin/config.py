"""Study configuration: YAML files loaded into typed, validated objects, with command-line overrides.

Every key has a default here, with a comment on what it means. Unknown keys and bad values are
rejected before any work starts, with one sentence that names the key, the value and what is allowed.
"""

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
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
from vitswin.registry import METHODS, SOURCES, compared_measures

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


# timm model options that are training choices (how features are pooled), not the shape of the network.
RECIPE_OPTIONS = ("global_pool",)

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
RECIPE_CELL = "+recipe-"  # a design's cell: <model>+recipe-<recipe>, the model trained with another recipe
TRAIN_CELL = "+train-"  # <model>+train-<size>: the model trained on a nested subset of the training images


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


class TrainConfig(_Strict):
    """The training recipe of one model."""

    batch_size: int = Field(32, gt=0)  # images per optimizer step, over all processes together
    micro_batch_size: int | None = Field(None, gt=0)  # images per forward pass on one process; smaller than
    # batch_size / processes means gradient accumulation. None: batch_size / processes (no accumulation)
    max_epochs: int = Field(50, gt=0)
    lr: float = Field(1e-4, gt=0)  # AdamW learning rate
    weight_decay: float = Field(0.01, ge=0)
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
        if pretrained not in ("hub", "none") and not Path(pretrained).expanduser().is_file():
            raise ValueError("must be 'hub', 'none' or the path of an existing weights file (.safetensors, .pth)")
        return pretrained

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
    seed: int = Field(0, ge=0)
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
    seed: int = Field(0, ge=0)  # of the image sample and the random baseline maps
    batch_size: int = Field(16, gt=0)
    steps: int = Field(16, gt=0)  # points on each deletion / insertion curve, after the start
    # ROAD faithfulness: one sparse solve per image and removal step, the slowest measure on small models.
    road: bool = True

    @field_validator("method")
    @classmethod
    def _registered_method(cls, method: str) -> str:
        return _registered(method, METHODS.names())


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
        if min(seeds) < 0:
            raise ValueError("seeds must be whole numbers of at least 0")
        if len(set(seeds)) < len(seeds):
            raise ValueError("must not repeat a seed")
        return seeds

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
        if sizes is None:
            return None
        if not sizes:
            raise ValueError("must name at least one training-set size, e.g. [500, 1000, all]")
        for size in sizes:
            if size != "all" and (isinstance(size, bool) or size <= 0 or (isinstance(size, float) and size > 1)):
                raise ValueError("sizes must be counts of images (at least 1), fractions in (0, 1] or 'all'")
        if len(set(sizes)) < len(sizes):
            raise ValueError("must not repeat a size")
        return sizes

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

    def _cells(self) -> Iterator[tuple[str, str, str | None, bool, int | float | str | None]]:
        """(model key, run key, recipe name or None, whether that recipe is the model's own, training-set size or
        None) of every cell of the design. A model with its own recipe and all training images keeps its key, so
        adding an axis later trains only new cells."""
        named = self.recipes if isinstance(self.recipes, dict) else {key: key for key in self.models}
        recipes: list[str | None] = list(self.recipe_axis()) or [None]
        sizes: list[int | float | str | None] = list(self.train_sizes or ()) or [None]
        for key in self.models:
            for recipe in recipes:
                own = recipe is None or named.get(recipe) == key
                for size in sizes:
                    cell = key + ("" if own else f"{RECIPE_CELL}{recipe}")
                    yield key, cell + (f"{TRAIN_CELL}{size}" if size not in (None, "all") else ""), recipe, own, size

    def design(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per model key, its cells: run key -> its values on the design's axes ("recipe", "train size"; none
        without a design)."""
        design: dict[str, dict[str, dict[str, str]]] = {key: {} for key in self.models}
        for key, cell, recipe, _own, size in self._cells():
            values = {"recipe": recipe} if recipe is not None else {}
            design[key][cell] = values | ({"train size": str(size)} if size is not None else {})
        return design

    @property
    def cells(self) -> dict[str, ModelConfig]:
        """Every run key of the design (a model with one recipe and one training-set size) and its model config:
        what is trained per seed."""
        axis, cells = self.recipe_axis(), {}
        for key, cell, recipe, own, size in self._cells():
            model = self.models[key] if own else self.models[key].with_recipe(axis[recipe])
            cells[cell] = model if size in (None, "all") else model.model_copy(update={"train_images": size})
        return cells

    @property
    def hardware(self) -> Hardware:
        """The accelerator, devices, nodes and strategy the study trains with."""
        return Hardware(self.accelerator, self.devices, self.num_nodes, self.strategy)

    @property
    def study_dir(self) -> Path:
        return Path(self.out_dir).expanduser() / self.name


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
        raise VitswinError(_describe(error.errors()[0])) from None


def _describe(problem: dict[str, Any]) -> str:
    loc = [str(part) for part in problem["loc"]]
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
