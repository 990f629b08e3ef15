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
    "input size": ("input size", "at {} px"),
    "weights": ("initialisation", "with weights {}"),
}


# Axes whose values are ordered: their interaction compares the smallest value with the largest (the trend of the
# gap), and the sentence lists the gap at every value in between (where the curves cross).
ORDERED = {"train size": lambda cell: cell.train_images, "input size": lambda cell: int(cell.coordinates["input size"])}


@dataclass(frozen=True)
class Interaction:
    """The accuracy gap between architectures `a` and `b` at values of one axis of the design (the other axes held
    at the same values), and how it changes from the first value to the last: two values of an unordered axis, every
    value of an ordered one, smallest first."""

    a: str
    b: str
    axis: str
    values: tuple[str, ...]
    cells: tuple[tuple[ModelFacts, ModelFacts], ...]  # per value: (a's cell, b's cell)
    evidence: Evidence  # (gap at the first value) - (gap at the last)

    @property
    def gaps(self) -> tuple[float, ...]:
        return tuple(float(cell_a.accuracy.mean() - cell_b.accuracy.mean()) for cell_a, cell_b in self.cells)

    def at(self, index: int) -> str:
        return AXES[self.axis][1].format(self.values[index])


def compared(a: ModelFacts, b: ModelFacts) -> bool:
    """Whether the findings compare two models: in a design, cells that differ in one thing alone (the architecture,
    or the value of one axis); otherwise any two."""
    differences = (a.model != b.model) + sum(a.coordinates.get(k) != b.coordinates.get(k) for k in a.coordinates | b.coordinates)
    return not (a.coordinates or b.coordinates) or differences <= 1


def interactions(models: list[ModelFacts]) -> list[Interaction]:
    """Per axis, every architecture pair along the axis's values (the other axes equal), where every cell is among
    `models` with the same number of seeds: each pair of values of an unordered axis, the whole path of an ordered
    one."""
    found = []
    for axis in dict.fromkeys(key for model in models for key in model.coordinates):
        cells = {(m.model, m.coordinates[axis], _others(m, axis)): m for m in models if axis in m.coordinates}
        architectures = list(dict.fromkeys(model for model, _, _ in cells))
        for rest in dict.fromkeys(rest for _, _, rest in cells):
            for a, b in combinations(architectures, 2):
                pairs = {value: (cells.get((a, value, r)), cells.get((b, value, r))) for _, value, r in cells if r == rest}
                complete = {value: pair for value, pair in pairs.items() if None not in pair}
                for path in _paths(axis, complete):
                    quads = [cell for value in path for cell in complete[value]]
                    if len({len(cell.seeds) for cell in quads}) > 1:
                        continue
                    (a1, b1), (a2, b2) = complete[path[0]], complete[path[-1]]
                    contrast = (a1.correct.astype(float) - b1.correct) - (a2.correct.astype(float) - b2.correct)
                    found.append(Interaction(a, b, axis, path, tuple(complete[v] for v in path), crossed(contrast)))
    return found


def _paths(axis: str, complete: dict[str, tuple[ModelFacts, ModelFacts]]) -> list[tuple[str, ...]]:
    """The values each interaction runs along: an ordered axis's every value, smallest first; an unordered one's
    pairs."""
    if axis in ORDERED:
        path = tuple(sorted(complete, key=lambda value: ORDERED[axis](complete[value][0])))
        return [path] if len(path) > 1 else []
    return list(combinations(complete, 2))


def _others(model: ModelFacts, axis: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, value) for key, value in model.coordinates.items() if key != axis))


def interaction_sentence(each: Interaction, decision: Decision, winners: tuple[str, ...]) -> str:
    """The interaction's decision, then the verdict read from the decisions at each value: `winners` names the
    architecture shown to be ahead at each value of the path ("" where neither is)."""
    a, b = each.a, each.b
    name = AXES[each.axis][0]
    low, high = decision.interval
    level = f"{100 * decision.confidence:.4g} %"
    adjusted = f", Holm-adjusted {decision.p_adjusted:.2g}" if decision.family_size > 1 else ""
    gaps = ", ".join(f"{points(gap)} {each.at(index)}" for index, gap in enumerate(each.gaps))
    change = f"the {'last' if len(each.values) > 2 else 'second'} minus the first is {points(-decision.evidence.estimate)}"
    numbers = f"the gap {a} - {b} is {_and(gaps)}; {change}"
    topic = f"Test accuracy, architecture by {name} ({a} and {b})"
    if not decision.tested:
        return f"{topic}: {numbers}; no spread between seeds or images; not tested."
    numbers += (
        f", {level} interval {points(-high)} to {points(-low)} ({decision.evidence.describe()}); "
        f"p = {decision.p_value:.2g}{adjusted}"
    )
    depends = f"the gap depends on the {name}" if decision.rejected else f"the gap is not shown to depend on the {name}"
    return f"{topic}: {numbers}: {depends}. {_verdict(each, winners)}"


def _and(items: str) -> str:
    head, _, last = items.rpartition(", ")
    return f"{head} and {last}" if head else last


def _verdict(each: Interaction, winners: tuple[str, ...]) -> str:
    """Which it is, from the decisions at each value: the architectures' gap, the axis's, or not decided."""
    a, b = each.a, each.b
    name = AXES[each.axis][0]
    decided = [(index, winner) for index, winner in enumerate(winners) if winner]
    if len(decided) == len(winners) and len(set(winners)) == 1:
        loser = b if winners[0] == a else a
        where = _and(", ".join(each.at(index) for index in range(len(winners))))
        gaps = _and(", ".join(_gap(each, index) for index in range(len(winners))))
        return f"Verdict: {winners[0]} is ahead of {loser} {where} ({gaps}): the gap is the architectures', whichever the {name}."
    if len({winner for _, winner in decided}) > 1:
        (first, ahead), (second, other) = decided[0], next(pair for pair in decided if pair[1] != decided[0][1])
        if each.axis in ORDERED:
            return (
                f"Verdict: the curves cross ({ahead} ahead {each.at(first)}, {other} {each.at(second)}): which "
                f"architecture is ahead depends on the {name}."
            )
        return (
            f"Verdict: the ranking reverses with the {name} ({ahead} ahead {each.at(first)}, {other} {each.at(second)}): "
            f"the {name}, not the architecture alone, decides which is ahead."
        )
    undecided = [each.at(index) for index, winner in enumerate(winners) if not winner]
    return f"Verdict: not decided: {a} and {b} are not shown to differ {' or '.join(undecided)}."


def _gap(each: Interaction, index: int) -> str:
    return points(abs(each.gaps[index])).lstrip("+")
