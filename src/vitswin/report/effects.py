"""Effects in a design: is a gap between two architectures theirs, or their recipes' (or their data's)?

A design trains every model with every value of its axes (recipes, training-set sizes): a cell per combination.
The findings then compare cells that differ in one thing alone (never a model with one recipe against another
model with another), and here, per axis, pair of architectures and pair of the axis's values, the interaction:
the gap a - b at the first value minus the gap at the second, per seed and test image, decided by the one decision
rule (`decision.crossed`, one sample against 0) with the findings' other comparisons.
"""

from dataclasses import dataclass
from itertools import combinations

from vitswin.registry import points
from vitswin.report.decision import Decision, Evidence, crossed
from vitswin.report.facts import ModelFacts

# How each axis reads in a sentence: its name, and a value of it ("under recipe vit", "with 500 training images").
AXES = {
    "recipe": ("recipe", "under recipe {}"),
    "train size": ("training-set size", "with {} training images"),
}


@dataclass(frozen=True)
class Interaction:
    """The accuracy gap between architectures `a` and `b` at two values of one axis of the design (the other axes
    held at the same values), and how it changes."""

    a: str
    b: str
    axis: str
    values: tuple[str, str]
    cells: tuple[tuple[ModelFacts, ModelFacts], tuple[ModelFacts, ModelFacts]]  # per value: (a's cell, b's cell)
    evidence: Evidence  # (gap at the first value) - (gap at the second)

    @property
    def gaps(self) -> tuple[float, float]:
        return tuple(float(cell_a.accuracy.mean() - cell_b.accuracy.mean()) for cell_a, cell_b in self.cells)

    def at(self, index: int) -> str:
        return AXES[self.axis][1].format(self.values[index])


def compared(a: ModelFacts, b: ModelFacts) -> bool:
    """Whether the findings compare two models: in a design, cells that differ in one thing alone (the architecture,
    or the value of one axis); otherwise any two."""
    differences = (a.model != b.model) + sum(a.coordinates.get(k) != b.coordinates.get(k) for k in a.coordinates | b.coordinates)
    return not (a.coordinates or b.coordinates) or differences <= 1


def interactions(models: list[ModelFacts]) -> list[Interaction]:
    """Per axis, every architecture pair at every pair of the axis's values (the other axes equal), where all four
    cells are among `models` with the same number of seeds."""
    found = []
    for axis in dict.fromkeys(key for model in models for key in model.coordinates):
        cells = {(m.model, m.coordinates[axis], _others(m, axis)): m for m in models if axis in m.coordinates}
        architectures = list(dict.fromkeys(model for model, _, _ in cells))
        values = list(dict.fromkeys(value for _, value, _ in cells))
        for rest in dict.fromkeys(rest for _, _, rest in cells):
            for a, b in combinations(architectures, 2):
                for first, second in combinations(values, 2):
                    quad = [cells.get((arch, value, rest)) for value in (first, second) for arch in (a, b)]
                    if any(cell is None for cell in quad) or len({len(cell.seeds) for cell in quad}) > 1:
                        continue
                    a1, b1, a2, b2 = quad
                    contrast = (a1.correct.astype(float) - b1.correct) - (a2.correct.astype(float) - b2.correct)
                    found.append(Interaction(a, b, axis, (first, second), ((a1, b1), (a2, b2)), crossed(contrast)))
    return found


def _others(model: ModelFacts, axis: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, value) for key, value in model.coordinates.items() if key != axis))


def interaction_sentence(each: Interaction, decision: Decision, winners: tuple[str, str]) -> str:
    """The interaction's decision, then the verdict read from the two within-recipe decisions: `winners` names the
    architecture shown to be ahead under each recipe ("" where neither is)."""
    a, b = each.a, each.b
    name = AXES[each.axis][0]
    gap_first, gap_second = each.gaps
    low, high = decision.interval
    level = f"{100 * decision.confidence:.4g} %"
    adjusted = f", Holm-adjusted {decision.p_adjusted:.2g}" if decision.family_size > 1 else ""
    numbers = (
        f"the gap {a} - {b} is {points(gap_first)} {each.at(0)} and {points(gap_second)} {each.at(1)}; the gaps differ by "
        f"{points(decision.evidence.estimate)}"
    )
    topic = f"Test accuracy, architecture by {name} ({a} and {b})"
    if not decision.tested:
        return f"{topic}: {numbers}; no spread between seeds or images; not tested."
    numbers += (
        f", {level} interval {points(low)} to {points(high)} ({decision.evidence.describe()}); "
        f"p = {decision.p_value:.2g}{adjusted}"
    )
    depends = f"the gap depends on the {name}" if decision.rejected else f"the gap is not shown to depend on the {name}"
    return f"{topic}: {numbers}: {depends}. {_verdict(each, winners)}"


def _verdict(each: Interaction, winners: tuple[str, str]) -> str:
    """Which it is, from the decisions at each value: the architectures' gap, the axis's, or not decided."""
    a, b = each.a, each.b
    name = AXES[each.axis][0]
    if winners[0] and winners[0] == winners[1]:
        loser = b if winners[0] == a else a
        return (
            f"Verdict: {winners[0]} is ahead of {loser} {each.at(0)} and {each.at(1)} ({_gap(each, 0)} and "
            f"{_gap(each, 1)}): the gap is the architectures', whichever the {name}."
        )
    if winners[0] and winners[1]:
        return (
            f"Verdict: the ranking reverses with the {name} ({winners[0]} ahead {each.at(0)}, {winners[1]} {each.at(1)}): "
            f"the {name}, not the architecture alone, decides which is ahead."
        )
    undecided = [each.at(index) for index, winner in enumerate(winners) if not winner]
    return f"Verdict: not decided: {a} and {b} are not shown to differ {' or '.join(undecided)}."


def _gap(each: Interaction, index: int) -> str:
    return points(abs(each.gaps[index])).lstrip("+")
