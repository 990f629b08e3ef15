"""Every name a config or a command can use, registered in one table per kind: data sources, explanation methods,
explanation measures and report sections (docs/design.md shows how to add one of each).

Adding one is one definition (a function or class, anywhere) and one entry here. An entry names its
implementation as "module:attribute", imported when it is first used, so config validation, the CLI's choices
and `--help` read these tables without importing PyTorch; a test may give the callable itself.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import Any, Generic, Protocol, TypeVar

from vitswin.errors import VitswinError

Target = str | Callable[..., Any]


def resolve(target: Target) -> Any:
    """The object a target names: itself when it is one already, else "module:attribute" imported."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)


class _Named(Protocol):
    name: str


Entry = TypeVar("Entry", bound=_Named)


class Registry(Generic[Entry]):
    """Entries of one kind by name, in the order they were added (the order docs, choices and reports use)."""

    def __init__(self, kind: str, entries: Iterable[Entry]) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: Entry) -> Entry:
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} '{entry.name}' is registered already")
        self._entries[entry.name] = entry
        return entry

    def remove(self, name: str) -> None:
        del self._entries[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(tuple(self._entries.values()))

    def __getitem__(self, name: str) -> Entry:
        """The entry called `name`, or one sentence naming the choices."""
        if name not in self._entries:
            raise VitswinError(f"unknown {self.kind} '{name}'; choose one of: {', '.join(self._entries)}.")
        return self._entries[name]


# -- Data sources ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSource:
    """Where images come from. `read(data_config)` returns the (train, test) ImageSets at data.image_size, test None
    when the source has no test set (then data.test_split of train is held out); `describe(data_config)` is the
    report's words for it; `requires` maps data keys that must be set to the sentence that says so."""

    name: str
    read: Target
    describe: Callable[[Any], str]
    requires: dict[str, str] = field(default_factory=dict)


def _located(data: Any) -> str:
    return f"{data.source} from {data.root or data.cache_dir}"


def _hub_dataset(data: Any) -> str:
    return f"Hugging Face dataset {data.hf.path}" + (f" ({data.hf.name})" if data.hf.name else "")


SOURCES: Registry[DataSource] = Registry(
    "data source",
    (
        DataSource("shapes", "vitswin.data.shapes:read_shapes_source", lambda data: "synthetic shapes"),
        DataSource("cifar10", "vitswin.data.cifar10:read_cifar10_source", _located),
        DataSource(
            "imagefolder",
            "vitswin.data.imagefolder:read_folder_source",
            _located,
            {"root": "data.root must name the image folder"},
        ),
        DataSource(
            "hf",
            "vitswin.data.hf:read_hf_source",
            _hub_dataset,
            {"hf": "data.hf.path must name the dataset (a hub name or a local copy)"},
        ),
    ),
)


# -- Explanation methods -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExplanationMethod:
    """A heatmap method. `explain` is a pytorch-grad-cam class (any BaseCAM) or a function
    (network, inputs, classes, target) -> heatmaps (B, H, W) in [0, 1] at the input size, where `target` is the
    network's CamTarget (layer, reshape, grid) when the caller has it, else None; `slow`: one forward pass per
    channel of the target layer."""

    name: str
    explain: Target
    slow: bool = False


METHODS: Registry[ExplanationMethod] = Registry(
    "explanation method",
    (
        ExplanationMethod("gradcam", "pytorch_grad_cam:GradCAM"),
        ExplanationMethod("gradcam++", "pytorch_grad_cam:GradCAMPlusPlus"),
        ExplanationMethod("hirescam", "pytorch_grad_cam:HiResCAM"),
        ExplanationMethod("layercam", "pytorch_grad_cam:LayerCAM"),
        ExplanationMethod("xgradcam", "pytorch_grad_cam:XGradCAM"),
        ExplanationMethod("eigencam", "pytorch_grad_cam:EigenCAM"),
        ExplanationMethod("scorecam", "pytorch_grad_cam:ScoreCAM", slow=True),
        ExplanationMethod("ablationcam", "pytorch_grad_cam:AblationCAM", slow=True),
        ExplanationMethod("rollout", "vitswin.explain.methods:attention_rollout"),
    ),
)


# -- Compared measures and explanation measures ------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """How one compared number is named, printed and read by the findings: which way is better, and the words."""

    key: str
    topic: str  # "{method}" is replaced by the explanation method's name
    value: Callable[[float], str]
    difference: Callable[[float], str]
    better: str | None  # "higher", "lower", or None where neither is better
    more: str  # "<a> is {more} than <b>" when a's number is the better (or, with no better, the higher) one

    def named(self, method: str) -> "Measure":
        return replace(self, topic=self.topic.format(method=method))


def points(v: float) -> str:
    """A difference of two shares, in percentage points."""
    return f"{100 * v:+.2f} points"


def _three_places(v: float) -> str:
    return f"{v:.3f}"


def _signed_three_places(d: float) -> str:
    return f"{d:+.3f}"


def _images_per_s(v: float) -> str:
    return f"{v:.0f} images/s"


def _signed_images_per_s(d: float) -> str:
    return f"{d:+.0f} images/s"


RUN_MEASURES = (  # measured by training, evaluation and the cost stage
    Measure("accuracy", "Test accuracy", lambda v: f"{100 * v:.2f} %", points, "higher", "more accurate"),
    Measure(
        "calibration",
        "Expected calibration error (lower: better calibrated)",
        _three_places,
        _signed_three_places,
        "lower",
        "better calibrated",
    ),
    Measure("train_speed", "Training speed", _images_per_s, _signed_images_per_s, "higher", "faster"),
    Measure("inference_speed", "Inference speed", _images_per_s, _signed_images_per_s, "higher", "faster"),
)


@dataclass(frozen=True)
class ExplanationMeasure:
    """Per-image numbers about heatmaps. `compute(batch)` gets a vitswin.explain.measures.MeasureBatch and returns
    {column: (B,) values}; `columns` are the report's labels for them (in table order); `compared` are the columns
    the findings compare between models; `needs_masks`: only on data with object masks; `switch`: the explain
    option (a bool) that turns it off."""

    name: str
    compute: Target
    columns: dict[str, str]
    compared: tuple[Measure, ...] = ()
    needs_masks: bool = False
    switch: str | None = None


MEASURES: Registry[ExplanationMeasure] = Registry(
    "explanation measure",
    (
        ExplanationMeasure(
            "concentration",
            "vitswin.explain.measures:concentration",
            {"top10_share": "top-10 % share", "gini": "Gini", "entropy": "entropy"},
            (
                Measure(
                    "top10_share",
                    "Share of {method} mass in the top 10 % of pixels",
                    lambda v: f"{100 * v:.1f} %",
                    lambda d: f"{100 * d:+.1f} points",
                    None,
                    "more concentrated",
                ),
            ),
        ),
        ExplanationMeasure(
            "faithfulness",
            "vitswin.explain.measures:faithfulness",
            {
                "deletion_auc": "deletion AUC",
                "random_deletion_auc": "random deletion AUC",
                "insertion_auc": "insertion AUC",
                "random_insertion_auc": "random insertion AUC",
            },
            (
                Measure(
                    "deletion_auc",
                    "{method} deletion AUC (lower: more faithful)",
                    _three_places,
                    _signed_three_places,
                    "lower",
                    "more faithful",
                ),
            ),
        ),
        ExplanationMeasure("road", "vitswin.explain.measures:road", {"road": "ROAD"}, switch="road"),
        ExplanationMeasure(
            "pointing",
            "vitswin.explain.measures:pointing",
            {
                "pointing_hit": "pointing game",
                "pointing_random": "random pointing",
                "mask_mass": "mass on object",
                "mask_fraction": "object area",
            },
            (
                Measure(
                    "pointing_hit",
                    "{method} pointing game (the map's peak on the object)",
                    lambda v: f"{100 * v:.0f} %",
                    lambda d: f"{100 * d:+.0f} points",
                    "higher",
                    "better at pointing at the object",
                ),
            ),
            needs_masks=True,
        ),
        ExplanationMeasure(  # the sanity check: a randomly initialised twin's maps should differ
            "randomisation", "vitswin.explain.measures:randomisation", {"randomisation_rank_corr": "randomisation rank corr."}
        ),
    ),
)


def measure_columns() -> dict[str, str]:
    """Every explanation measure's per-image columns and their labels, in the report's table order."""
    return {column: label for measure in MEASURES for column, label in measure.columns.items()}


# Numbers a study's hypotheses may name besides the compared measures: per run, over seeds (Welch).
BEST_EPOCH = Measure(
    "best_epoch", "Best epoch (highest validation accuracy)", lambda v: f"{v:.1f}", lambda d: f"{d:+.2f}", "lower", "earlier"
)


def hypothesis_metrics() -> dict[str, Measure]:
    """What a hypothesis can be about, by key: every compared measure, and the best epoch."""
    return compared_measures() | {BEST_EPOCH.key: BEST_EPOCH}


def compared_measures() -> dict[str, Measure]:
    """Everything the findings can compare, by key: the run measures, then each explanation measure's."""
    return {measure.key: measure for measure in (*RUN_MEASURES, *(m for e in MEASURES for m in e.compared))}


# -- Report sections ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSection:
    """One part of the report, after its findings: `build(report)` gets a vitswin.report.build.ReportContext and
    returns blocks (vitswin.report.document); an empty list leaves the section out."""

    name: str
    build: Target


SECTIONS: Registry[ReportSection] = Registry(
    "report section",
    (
        ReportSection("hypotheses", "vitswin.report.hypotheses:hypotheses_section"),
        ReportSection("findings", "vitswin.report.sections:findings_section"),
        ReportSection("setup", "vitswin.report.sections:setup_section"),
        ReportSection("results", "vitswin.report.sections:results_section"),
        ReportSection("paired", "vitswin.report.sections:paired_section"),
        ReportSection("data efficiency", "vitswin.report.axis_curves:data_efficiency_section"),
        ReportSection("resolution", "vitswin.report.axis_curves:resolution_section"),
        ReportSection("curves", "vitswin.report.sections:curves_section"),
        ReportSection("confusion", "vitswin.report.sections:confusion_section"),
        ReportSection("calibration", "vitswin.report.sections:calibration_section"),
        ReportSection("cost", "vitswin.report.sections:cost_section"),
        ReportSection("benchmarks", "vitswin.report.bench:bench_section"),
        ReportSection("explanations", "vitswin.report.sections:explanation_section"),
    ),
)
