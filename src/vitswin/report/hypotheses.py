"""Hypotheses: claims a study states before it runs (`hypotheses:` in its config), each judged by the one decision
rule with Holm's correction over every test of every hypothesis, and listed first in the report.

A hypothesis "m is higher than n on metric" is tested on the two models as given (their own cells; where the design
has none, every pair of their cells that differ in the architecture alone), or with `within: <axis>` on every pair
of their cells that differ in the architecture alone, so that it must hold under each value of that axis (a recipe
swap's "within each recipe"). Its verdict: supported (every test shows the claimed direction), contradicted (one
shows the opposite), not decided, or not measured (the study has no such number for these models)."""

from dataclasses import dataclass

import numpy as np

from vitswin.config import HypothesisConfig
from vitswin.registry import BEST_EPOCH, hypothesis_metrics
from vitswin.report.decision import ARCHITECTURE_SEEDS, Decision, decide, welch
from vitswin.report.document import Block, Heading, Paragraph, Table
from vitswin.report.facts import ModelFacts
from vitswin.report.findings import SPEEDS, comparison, recipe_differences, resampled_eces
from vitswin.report.inputs import ReportContext

SUPPORTED, CONTRADICTED, UNDECIDED, UNMEASURED = "supported", "contradicted", "not decided", "not measured"


@dataclass(frozen=True)
class _Test:
    """One pair of cells a hypothesis is tested on: `a` is the one claimed higher (or lower)."""

    a: ModelFacts
    b: ModelFacts
    means: tuple[float, float] = (0.0, 0.0)
    evidence: object = None  # the Evidence of a - b; None where the number was not measured for both


@dataclass(frozen=True)
class Judged:
    """A hypothesis, its verdict and the numbers behind it, in words."""

    hypothesis: HypothesisConfig
    verdict: str
    evidence: str
    decisions: tuple[Decision, ...] = ()  # of its measured tests, in the order the evidence lists them


def judge(hypotheses: tuple[HypothesisConfig, ...], models: list[ModelFacts], method: str, machine: str) -> list[Judged]:
    """Every hypothesis's verdict; the tests of all of them form one Holm family."""
    if not hypotheses:
        return []
    seeds = len(models[0].seeds)
    if seeds < ARCHITECTURE_SEEDS:
        reason = (
            f"not tested: with {seeds} seed{'s' * (seeds > 1)} per model a claim about architectures cannot be "
            f"decided; train at least {ARCHITECTURE_SEEDS}"
        )
        return [Judged(each, UNDECIDED, reason) for each in hypotheses]
    tests = [[_test(each, a, b, method, machine) for a, b in _pairs(each, models)] for each in hypotheses]
    measured = [test for group in tests for test in group if test.evidence is not None]
    decisions = dict(zip(map(id, measured), decide([test.evidence for test in measured]), strict=True))
    return [_judged(each, group, decisions, models) for each, group in zip(hypotheses, tests, strict=True)]


def _pairs(hypothesis: HypothesisConfig, models: list[ModelFacts]) -> list[tuple[ModelFacts, ModelFacts]]:
    """The cells a hypothesis is tested on: (the claimed model's cell, the other's)."""
    by_name = {model.name: model for model in models}
    if hypothesis.within is None and hypothesis.model in by_name and hypothesis.than in by_name:
        return [(by_name[hypothesis.model], by_name[hypothesis.than])]
    if hypothesis.within and not any(hypothesis.within in model.coordinates for model in models):
        return []
    return [
        (a, b)
        for a in models
        for b in models
        if a.model == hypothesis.model and b.model == hypothesis.than and a.coordinates == b.coordinates
    ]


def _test(hypothesis: HypothesisConfig, a: ModelFacts, b: ModelFacts, method: str, machine: str) -> _Test:
    if hypothesis.metric == BEST_EPOCH.key:
        epochs_a, epochs_b = np.array(a.best_epochs, float), np.array(b.best_epochs, float)
        return _Test(a, b, (float(epochs_a.mean()), float(epochs_b.mean())), welch(epochs_a, epochs_b))
    resampled = resampled_eces([a, b]) if hypothesis.metric == "calibration" else {}
    found = comparison(hypothesis.metric, a, b, method, machine, resampled)
    return _Test(a, b, found.means, found.evidence) if found else _Test(a, b)


def _judged(hypothesis: HypothesisConfig, tests: list[_Test], decisions: dict[int, Decision], models: list[ModelFacts]) -> Judged:
    if not tests or all(test.evidence is None for test in tests):
        return Judged(hypothesis, UNMEASURED, _unmeasured(hypothesis, tests, models))
    sign = 1 if hypothesis.higher else -1
    verdicts, texts, decided = [], [], []
    for test in tests:
        if test.evidence is None:
            verdicts.append(UNDECIDED)
            texts.append(f"{_cells(test)}: not measured")
            continue
        decision = decisions[id(test)]
        decided.append(decision)
        shown = decision.rejected and sign * decision.evidence.estimate > 0
        verdicts.append(SUPPORTED if shown else CONTRADICTED if decision.rejected else UNDECIDED)
        texts.append(_numbers(hypothesis, test, decision))
    verdict = CONTRADICTED if CONTRADICTED in verdicts else SUPPORTED if set(verdicts) == {SUPPORTED} else UNDECIDED
    return Judged(hypothesis, verdict, "; ".join(texts), tuple(decided))


def _cells(test: _Test) -> str:
    return f"{test.a.name} against {test.b.name}"


def _numbers(hypothesis: HypothesisConfig, test: _Test, decision: Decision) -> str:
    measure = hypothesis_metrics()[hypothesis.metric]
    mean_a, mean_b = test.means
    numbers = f"{test.a.name} {measure.value(mean_a)}, {test.b.name} {measure.value(mean_b)}"
    # A speed is the network's, timed by the cost stage: the recipe it was trained with plays no part.
    if hypothesis.metric not in SPEEDS and (differences := recipe_differences(test.a, test.b)):
        numbers += f" (model plus recipe: they differ in {', '.join(differences)})"
    if not decision.tested:
        return f"{numbers}; no spread to test"
    low, high = decision.interval
    adjusted = f", Holm-adjusted {decision.p_adjusted:.2g}" if decision.family_size > 1 else ""
    return (
        f"{numbers}; difference {measure.difference(decision.evidence.estimate)}, {100 * decision.confidence:.4g} % "
        f"interval {measure.difference(low)} to {measure.difference(high)} ({decision.evidence.describe()}); "
        f"p = {decision.p_value:.2g}{adjusted}"
    )


def _unmeasured(hypothesis: HypothesisConfig, tests: list[_Test], models: list[ModelFacts]) -> str:
    if hypothesis.within and not any(hypothesis.within in model.coordinates for model in models):
        return f"not tested: the study's design has no {hypothesis.within} axis (e.g. recipes: swap for the recipe)"
    if not tests:
        return f"the study has no cells of {hypothesis.model} and {hypothesis.than} that differ in the architecture alone"
    if hypothesis.metric in ("train_speed", "inference_speed"):
        return "not timed: the cost stage times the networks (vitswin report measures it), two cells of one network once"
    return f"{hypothesis.metric} was not measured for these models (see the explanations section)"


def hypotheses_section(report: ReportContext) -> list[Block]:
    """Nothing when the study states no hypotheses."""
    judged = judge(report.inputs.config.hypotheses, report.facts, report.method, report.machine)
    if not judged:
        return []
    topics = {key: measure.named(report.method).topic for key, measure in hypothesis_metrics().items()}
    rows = []
    for index, each in enumerate(judged, 1):
        stated = each.hypothesis.text(topics[each.hypothesis.metric])
        rows.append([str(index), each.hypothesis.claim or "-", stated, each.verdict, each.evidence])
    return [
        Heading("Hypotheses"),
        Paragraph(
            "Claims stated in the study's config before it ran, each tested on the two models as given (or, within an "
            "axis, on every pair of their cells that differ in the architecture alone), all tests corrected together "
            "(Holm at 5 %). Supported: every test shows the claimed direction; contradicted: one shows the opposite; "
            "not decided: the intervals include 0. Higher and lower are of the number itself (a lower calibration "
            "error or best epoch is better or earlier)."
        ),
        Table(["", "claim", "hypothesis", "verdict", "evidence"], rows),
    ]
