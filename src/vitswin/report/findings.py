"""Findings: short sentences generated from the measured numbers, never written by hand, each decided by
vitswin.report.decision.

A statement that one model beats another is made at the level the numbers support. With three or more training
seeds a difference is stated for the architectures when its interval (seeds and test images) excludes zero at the
level left after correction; with fewer, the findings compare the trained models of each seed and say that another
seed can change the verdict. Test accuracy (or the measure a study names as `primary`) is the primary comparison,
corrected over its pairs alone; every other comparison in the findings is corrected together with the rest (Holm).
A model not shown to be better than chance is said so first and left out of every ranking. Speeds come from the
cost stage's interleaved timing on one machine, never from the wall clock of training runs.
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from vitswin.registry import Measure, compared_measures, points
from vitswin.report.decision import (
    ARCHITECTURE_SEEDS,
    SIGNIFICANCE,
    Decision,
    Evidence,
    ExactPairedEvidence,
    crossed,
    decide,
    exact_paired,
    welch,
)
from vitswin.report.effects import Interaction, compared, interaction_sentence, interactions
from vitswin.report.facts import ModelFacts
from vitswin.report.stats import IMAGE_RESAMPLES, resampled_ece

SPEEDS = {"train_speed": "train", "inference_speed": "inference"}
PRIMARY = "accuracy"

TEST_SELECTED = (
    "The test set also selected each model's checkpoint (data.val_split: test, the published protocol), so every "
    "test accuracy below is optimistic; a held-out validation split (e.g. data.val_split: 0.1) gives unbiased ones."
)


@dataclass(frozen=True)
class Finding:
    """One sentence of the findings, and the decision behind it where it compares two models."""

    text: str
    measure: str = ""
    a: str = ""
    b: str = ""
    seed: int | None = None  # the seed of a comparison of trained models; None: over every seed
    decision: Decision | None = None


def finding_record(finding: Finding) -> dict[str, object]:
    """One finding as a flat record (a DataFrame row): its sentence and, for a comparison, the models, the estimate
    of the difference (a minus b), the interval at the level it was tested at, the p-values and the verdict."""
    record: dict[str, object] = {"text": finding.text, "measure": finding.measure, "a": finding.a, "b": finding.b}
    record["seed"] = finding.seed
    decision = finding.decision
    if decision is None:
        return record
    low, high = decision.interval
    numbers = {
        "difference": decision.evidence.estimate,
        "interval_low": low,
        "interval_high": high,
        "confidence": decision.confidence,
        "p_value": decision.p_value,
        "p_adjusted": decision.p_adjusted,
    }
    # Not a number (no spread to test) is None: plain JSON has no NaN.
    return (
        record
        | {key: float(value) if np.isfinite(value) else None for key, value in numbers.items()}
        | {
            "tested": decision.tested,
            "differ": decision.rejected,
        }
    )


@dataclass(frozen=True)
class _Pending:
    """A comparison waiting for its family's correction."""

    measure: Measure
    a: ModelFacts
    b: ModelFacts
    evidence: Evidence
    seed: int | None
    means: tuple[float, float]
    per_seed: tuple[np.ndarray, np.ndarray] | None  # each model's per-seed values, for which seeds each won on


def findings(
    models: list[ModelFacts],
    method: str = "gradcam",
    test_selected: bool = False,
    primary: str = PRIMARY,
    machine: str = "",
    notes: list[str] | None = None,
) -> list[Finding]:
    """Every finding, in order: the protocol's caveat, models at chance, the seed count's caveat; then each
    comparison with its corrected decision, the sizes, and the statement of the correction. `machine` says where
    the speeds were timed; `notes` are sentences the caller adds after the caveats (e.g. explanations not compared)."""
    seeds = models[0].seeds
    out = [Finding(TEST_SELECTED)] if test_selected else []
    if len(models) < 2:
        return out
    chance = {model.name: crossed(model.correct, reference=model.chance) for model in models}
    at_chance = [model for model in models if not _above_chance(chance[model.name])]
    out += [_chance_sentence(model, chance[model.name]) for model in at_chance]
    ranked = [model for model in models if model not in at_chance]
    if len(seeds) < ARCHITECTURE_SEEDS:
        out.append(Finding(_trained_models_only(seeds)))
    out += [Finding(note) for note in notes or []]
    out += [Finding(text) for a, b in combinations(ranked, 2) if compared(a, b) and (text := _recipe_caveat(a, b))]
    pending = _comparisons(ranked, seeds, method, machine)
    crossings = interactions(ranked) if len(seeds) >= ARCHITECTURE_SEEDS else []
    primary_family = [each for each in pending if each.measure.key == primary]
    others = [*(each for each in pending if each.measure.key != primary), *crossings]
    decided = dict(zip(map(id, primary_family), decide([each.evidence for each in primary_family]), strict=True))
    decided |= dict(zip(map(id, others), decide([each.evidence for each in others]), strict=True))
    out += [_sentence(each, decided[id(each)], machine) for each in primary_family]
    out += [
        Finding(interaction_sentence(each, decided[id(each)], _winners(each, pending, decided)), "interaction", each.a, each.b)
        for each in crossings
    ]
    out += [_sentence(each, decided[id(each)], machine) for each in others if isinstance(each, _Pending)]
    out += _numbers_only(ranked, seeds)
    out += _sizes(models)
    if pending:
        out.append(Finding(_correction(compared_measures()[primary].named(method), primary_family, others)))
    return out


def _winners(each: Interaction, pending: list[_Pending], decided: dict[int, Decision]) -> tuple[str, ...]:
    """Per value of an interaction's axis, the architecture its accuracy comparison over seeds showed to be ahead."""
    winners = []
    for cell_a, cell_b in each.cells:
        found = next(
            p
            for p in pending
            if p.measure.key == "accuracy" and p.seed is None and {p.a.name, p.b.name} == {cell_a.name, cell_b.name}
        )
        decision = decided[id(found)]
        ahead = (found.a if decision.evidence.estimate > 0 else found.b).model
        winners.append(ahead if decision.rejected else "")
    return tuple(winners)


def _above_chance(evidence: Evidence) -> bool:
    """Shown to be better than always answering the most frequent class (`evidence`: accuracy minus that share), or
    above it on every seed and image alike (no spread to test)."""
    return evidence.estimate > 0 and (not evidence.tested or evidence.p_value() < SIGNIFICANCE)


def _chance_sentence(model: ModelFacts, evidence: Evidence) -> Finding:
    low, high = evidence.interval(SIGNIFICANCE) if evidence.tested else (0.0, 0.0)
    over = _over(model.seeds)
    return Finding(
        f"{model.name} is not shown to be better than chance: test accuracy {100 * model.accuracy.mean():.2f} % ({over}), "
        f"where always answering the most frequent class scores {100 * model.chance:.2f} %; 95 % interval of the "
        f"difference {points(low)} to {points(high)} includes 0. No finding below ranks {model.name}: train it "
        f"longer or check its recipe first."
    )


def recipe_differences(a: ModelFacts, b: ModelFacts) -> dict[str, tuple[object, object]]:
    """The recipe keys whose values differ between two models: key -> (a's value, b's value)."""
    keys = dict.fromkeys([*a.recipe, *b.recipe])
    return {key: (a.recipe.get(key), b.recipe.get(key)) for key in keys if a.recipe.get(key) != b.recipe.get(key)}


def _recipe_caveat(a: ModelFacts, b: ModelFacts) -> str:
    """Two architectures trained with different recipes: every comparison of them is of model plus recipe."""
    differences = recipe_differences(a, b)
    if not differences or a.model == b.model:
        return ""
    listed = ", ".join(f"{key} {_setting(va)} vs {_setting(vb)}" for key, (va, vb) in differences.items())
    return (
        f"{a.name} and {b.name} were not trained alike ({listed}): every comparison of the two below is of model plus "
        f"recipe, not of the architectures alone. A recipe swap separates them: with recipes: swap (--set recipes=swap) "
        f"each model is also trained with the other's recipe, and the report compares within each recipe."
    )


def _confounded(a: ModelFacts, b: ModelFacts) -> bool:
    return a.model != b.model and bool(recipe_differences(a, b))


def _setting(value: object) -> str:
    return "not set" if value is None else str(value)


def _trained_models_only(seeds: list[int]) -> str:
    return (
        f"With {len(seeds)} seed{'s' if len(seeds) > 1 else ''} per model, these findings compare trained models, not "
        f"architectures: another seed (initialisation, batch order, augmentation) can change which model wins. Train "
        f"at least {ARCHITECTURE_SEEDS}, e.g. --set 'seeds=[0,1,2]', for a comparison of the architectures."
    )


def _comparisons(models: list[ModelFacts], seeds: list[int], method: str, machine: str) -> list[_Pending]:
    """Every comparison the findings state, before correction: per pair, accuracy, calibration, speed (on
    `machine`) and the heatmap measures, over seeds (three or more) or seed by seed."""
    pending = []
    across = len(seeds) >= ARCHITECTURE_SEEDS
    resampled = resampled_eces(models) if across and len(models) > 1 else {}
    for a, b in ((a, b) for a, b in combinations(models, 2) if compared(a, b)):
        if across:
            pending += [each for key in compared_measures() if (each := comparison(key, a, b, method, machine, resampled))]
            continue
        pending += [_per_seed(compared_measures()["accuracy"], a, b, a.correct, b.correct, i) for i in range(len(seeds))]
        pending += [each for key in SPEEDS if (each := comparison(key, a, b, method, machine, resampled))]
        for key in (key for key in compared_measures() if key in a.attention and key in b.attention):
            measure = compared_measures()[key].named(method)
            pending += [_per_seed(measure, a, b, a.attention[key], b.attention[key], i) for i in range(len(seeds))]
    return pending


def comparison(
    key: str, a: ModelFacts, b: ModelFacts, method: str, machine: str, resampled: dict[str, np.ndarray]
) -> _Pending | None:
    """The comparison of `a` and `b` on compared measure `key` over their seeds (a speed: over timing rounds on
    `machine`), before correction; None where it was not measured for both (or the two are one network, timed
    once). `resampled`: resampled_eces of the models compared."""
    measure = compared_measures()[key].named(method)
    if key == "accuracy":
        return _across(measure, a, b, a.correct.astype(float), b.correct.astype(float))
    if key == "calibration":
        return _calibration(a, b, resampled)
    if key in SPEEDS:
        kind = SPEEDS[key]
        if not (machine and a.network != b.network and kind in a.speed and kind in b.speed):
            return None
        rounds_a, rounds_b = a.speed[kind], b.speed[kind]
        means = (float(rounds_a.mean()), float(rounds_b.mean()))
        return _Pending(measure, a, b, welch(rounds_a, rounds_b, over="timing rounds"), None, means, None)
    if key in a.attention and key in b.attention:
        return _across(measure, a, b, a.attention[key], b.attention[key])
    return None


def _across(measure: Measure, a: ModelFacts, b: ModelFacts, values_a: np.ndarray, values_b: np.ndarray) -> _Pending:
    per_seed = (values_a.mean(1), values_b.mean(1))
    means = (float(values_a.mean()), float(values_b.mean()))
    return _Pending(measure, a, b, crossed(values_a, values_b), None, means, per_seed)


def resampled_eces(models: list[ModelFacts]) -> dict[str, np.ndarray]:
    """Each model's mean ECE over its seeds on the same bootstrap samples of the test images, once per model."""
    images = models[0].correct.shape[1]
    resamples = np.random.default_rng(0).integers(0, images, (IMAGE_RESAMPLES, images))
    return {
        model.name: np.mean(
            [resampled_ece(c, r, resamples) for c, r in zip(model.confidence, model.correct, strict=True)], axis=0
        )
        for model in models
    }


def _calibration(a: ModelFacts, b: ModelFacts, replicate: dict[str, np.ndarray]) -> _Pending:
    """ECE is computed from the test images, so which images were drawn adds to its seed-to-seed spread: the
    image share is the variance of the difference over `replicate`, the same resampled images for every run."""
    images = a.correct.shape[1]
    image_variance = float(np.var(replicate[a.name] - replicate[b.name], ddof=1))
    ece_a, ece_b = a.ece, b.ece
    evidence = welch(ece_a, ece_b, image_variance, images)
    return _Pending(
        compared_measures()["calibration"], a, b, evidence, None, (float(ece_a.mean()), float(ece_b.mean())), (ece_a, ece_b)
    )


def _per_seed(measure: Measure, a: ModelFacts, b: ModelFacts, values_a: np.ndarray, values_b: np.ndarray, index: int) -> _Pending:
    """The trained models of one seed on the same images: McNemar's exact test for 0/1 outcomes, the paired t-test
    over images otherwise."""
    row_a, row_b = np.asarray(values_a[index], dtype=np.float64), np.asarray(values_b[index], dtype=np.float64)
    binary = np.isin(row_a, (0.0, 1.0)).all() and np.isin(row_b, (0.0, 1.0)).all()
    evidence = exact_paired(row_a, row_b) if binary else crossed(row_a[None], row_b[None])
    return _Pending(measure, a, b, evidence, a.seeds[index], (float(row_a.mean()), float(row_b.mean())), None)


def _sentence(each: _Pending, decision: Decision, machine: str) -> Finding:
    measure, a, b = each.measure, each.a.name, each.b.name
    mean_a, mean_b = each.means
    if each.seed is not None:
        where = f"on seed {each.seed} (these trained models)"
        numbers = f"{a} {measure.value(mean_a)}, {b} {measure.value(mean_b)}"
        topic = measure.topic
    elif measure.key in SPEEDS:
        where = f"on this machine ({machine})"
        numbers = f"{a} {measure.value(mean_a)}, {b} {measure.value(mean_b)} (mean over the timing rounds)"
        topic = measure.topic
    else:
        seeds = len(each.a.seeds)
        where, numbers = (
            f"across {seeds} seeds" + (" (model plus recipe)" if _confounded(each.a, each.b) else ""),
            f"{a} {measure.value(mean_a)}, {b} {measure.value(mean_b)} ({_over(each.a.seeds)})",
        )
        topic = measure.topic
    numbers += _confidence_note(each) if measure.key == "calibration" else ""
    finding = dict(measure=measure.key, a=a, b=b, seed=each.seed, decision=decision)
    if not decision.tested:
        reason = _no_spread(each)
        return Finding(f"{topic}: {numbers}; {reason}; not tested.", **finding)
    low, high = decision.interval
    level = f"{100 * decision.confidence:.4g} %"
    interval = f"{level} interval {measure.difference(low)} to {measure.difference(high)}"
    p_text = f"p = {decision.p_value:.2g}" + (f", Holm-adjusted {decision.p_adjusted:.2g}" if decision.family_size > 1 else "")
    evidence = (
        f"difference {a} - {b} {measure.difference(decision.evidence.estimate)}, {interval} "
        f"({decision.evidence.describe()}); {p_text}"
    )
    if decision.rejected:
        winner, loser = (a, b) if _a_is_better(measure, decision.evidence.estimate) else (b, a)
        level_words = (
            "these two trained models differ, which says nothing yet about the architectures; " if each.seed is not None else ""
        )
        return Finding(
            f"{topic}: {winner} is {measure.more} than {loser} {where}: {numbers}; {level_words}{evidence}.", **finding
        )
    return Finding(
        f"{topic}: {a} and {b} are not shown to differ {where} (the {level} interval of the difference includes 0): "
        f"{numbers}; {evidence}{_split_verdicts(each)}.",
        **finding,
    )


def _no_spread(each: _Pending) -> str:
    """What had no spread, in words, for a comparison that could not be tested."""
    if isinstance(each.evidence, ExactPairedEvidence):
        return "the two trained models are right and wrong on exactly the same images"
    if each.measure.key in SPEEDS:
        return "no spread between the timing rounds"
    if each.seed is not None:
        return "no spread between images"
    return "no spread between seeds" + (" or images" if each.measure.key != "calibration" else "")


def _a_is_better(measure: Measure, difference: float) -> bool:
    return difference < 0 if measure.better == "lower" else difference > 0


def _confidence_note(each: _Pending) -> str:
    """Over- or under-confidence, from mean confidence against accuracy: what a calibration error means."""
    parts = []
    for model in (each.a, each.b):
        confidence, accuracy = float(model.confidence.mean()), float(model.correct.mean())
        side = "underconfident" if confidence < accuracy else "overconfident"
        parts.append(f"{model.name} mean confidence {100 * confidence:.1f} % at {100 * accuracy:.1f} % accuracy ({side})")
    return "; " + ", ".join(parts)


def _split_verdicts(each: _Pending) -> str:
    """Which seeds each model was higher on, when the seeds disagree."""
    if each.per_seed is None:
        return ""
    a, b, seeds = each.a.name, each.b.name, each.a.seeds
    differences = each.per_seed[0] - each.per_seed[1]
    wins_a = [seed for seed, d in zip(seeds, differences, strict=True) if d > 0]
    wins_b = [seed for seed, d in zip(seeds, differences, strict=True) if d < 0]
    if not (wins_a and wins_b):
        return ""
    return f"; {a} was higher on {_seeds_text(wins_a)}, {b} on {_seeds_text(wins_b)}"


def _seeds_text(seeds: list[int]) -> str:
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _over(seeds: list[int]) -> str:
    return f"mean over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}"


def _numbers_only(models: list[ModelFacts], seeds: list[int]) -> list[Finding]:
    """With fewer than three seeds, a number measured once per run is shown but not ranked."""
    if len(seeds) >= ARCHITECTURE_SEEDS or len(models) < 2:
        return []
    measure = compared_measures()["calibration"]
    numbers = ", ".join(f"{model.name} {measure.value(float(model.ece.mean()))}" for model in models)
    return [
        Finding(f"{measure.topic}: {numbers} ({_over(seeds)}); with fewer than {ARCHITECTURE_SEEDS} seeds no ranking is stated.")
    ]


def _sizes(models: list[ModelFacts]) -> list[Finding]:
    """Parameters and FLOPs: properties of the networks, the same for every seed (and every recipe: one cell per
    architecture)."""
    architectures: dict[str, ModelFacts] = {}
    for model in sorted(models, key=lambda model: model.name != model.model):  # the model's own cell first
        architectures.setdefault(model.model, model)
    sentences = []
    for a, b in combinations(architectures.values(), 2):
        small, large = sorted((a, b), key=lambda m: m.parameters)
        sentences.append(
            Finding(
                f"{small.name} has {small.parameters / 1e6:.2f} M parameters and {small.flops / 1e9:.3f} GFLOPs per image; "
                f"{large.name} has {large.parameters / small.parameters:.2f}x the parameters ({large.parameters / 1e6:.2f} M) "
                f"and {large.flops / small.flops:.2f}x the FLOPs ({large.flops / 1e9:.3f} GFLOPs)."
            )
        )
    return sentences


def _correction(primary: Measure, primary_family: list[_Pending], others: list[_Pending]) -> str:
    """How the findings were corrected for testing many things at once, in one sentence."""
    counted = [each for each in primary_family if each.evidence.tested]
    rest = [each for each in others if each.evidence.tested]
    text = (
        f"Correction for testing many things at once: {primary.topic.split(' (')[0].lower()} is the primary comparison, "
        f"tested at {100 * SIGNIFICANCE:g} %"
        + (f" with Holm's correction over its {len(counted)} comparisons" if len(counted) > 1 else "")
    )
    if rest:
        text += (
            f"; the other {len(rest)} comparison{'s' * (len(rest) > 1)} above {'are' if len(rest) > 1 else 'is'} corrected "
            f"together (Holm at {100 * SIGNIFICANCE:g} % over all {len(rest)}), so each is shown with the interval of the "
            f"level it was tested at"
        )
    return text + (
        ". Adding a model or a measure adds comparisons and raises the bar for every one of them; comparisons with no "
        "spread are not tested and not counted."
    )
