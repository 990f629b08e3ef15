"""Effects in a recipe design: is a gap between two architectures theirs, or their recipes'?

A design trains every model with every recipe of its axis (a cell per model and recipe). The findings then compare
the architectures within each recipe and the recipes within each architecture (never a model with one recipe
against another model with another), and here, per pair of architectures and pair of recipes, the interaction:
the gap a - b under the first recipe minus the gap under the second, per seed and test image, decided by the one
decision rule (`decision.crossed`, one sample against 0) with the findings' other comparisons.
"""

from dataclasses import dataclass
from itertools import combinations

from vitswin.registry import points
from vitswin.report.decision import Decision, Evidence, crossed
from vitswin.report.facts import ModelFacts


@dataclass(frozen=True)
class Interaction:
    """The accuracy gap between architectures `a` and `b` under two recipes, and how it changes."""

    a: str
    b: str
    recipes: tuple[str, str]
    cells: tuple[tuple[ModelFacts, ModelFacts], tuple[ModelFacts, ModelFacts]]  # per recipe: (a's cell, b's cell)
    evidence: Evidence  # (gap under the first recipe) - (gap under the second)

    @property
    def gaps(self) -> tuple[float, float]:
        return tuple(float(cell_a.accuracy.mean() - cell_b.accuracy.mean()) for cell_a, cell_b in self.cells)


def is_design(models: list[ModelFacts]) -> bool:
    """Whether the models are the cells of a recipe design (some model trained with more than one recipe)."""
    return any(model.recipe_name for model in models)


def compared(a: ModelFacts, b: ModelFacts) -> bool:
    """Whether the findings compare two models: in a design, cells that share their architecture or their recipe;
    otherwise any two."""
    return not (a.recipe_name or b.recipe_name) or a.model == b.model or a.recipe_name == b.recipe_name


def interactions(models: list[ModelFacts]) -> list[Interaction]:
    """Every architecture pair under every recipe pair where all four cells are among `models`, with their seeds."""
    cells = {(model.model, model.recipe_name): model for model in models if model.recipe_name}
    architectures = list(dict.fromkeys(model for model, _ in cells))
    recipes = list(dict.fromkeys(recipe for _, recipe in cells))
    found = []
    for a, b in combinations(architectures, 2):
        for first, second in combinations(recipes, 2):
            quad = [cells.get(key) for key in ((a, first), (b, first), (a, second), (b, second))]
            if any(cell is None for cell in quad) or len({len(cell.seeds) for cell in quad}) > 1:
                continue
            a1, b1, a2, b2 = quad
            contrast = (a1.correct.astype(float) - b1.correct) - (a2.correct.astype(float) - b2.correct)
            found.append(Interaction(a, b, (first, second), ((a1, b1), (a2, b2)), crossed(contrast)))
    return found


def interaction_sentence(each: Interaction, decision: Decision, winners: tuple[str, str]) -> str:
    """The interaction's decision, then the verdict read from the two within-recipe decisions: `winners` names the
    architecture shown to be ahead under each recipe ("" where neither is)."""
    a, b = each.a, each.b
    first, second = each.recipes
    gap_first, gap_second = each.gaps
    low, high = decision.interval
    level = f"{100 * decision.confidence:.4g} %"
    adjusted = f", Holm-adjusted {decision.p_adjusted:.2g}" if decision.family_size > 1 else ""
    numbers = (
        f"the gap {a} - {b} is {points(gap_first)} under recipe {first} and {points(gap_second)} under recipe "
        f"{second}; the gaps differ by {points(decision.evidence.estimate)}"
    )
    if not decision.tested:
        return f"Test accuracy, architecture by recipe ({a} and {b}): {numbers}; no spread between seeds or images; not tested."
    numbers += (
        f", {level} interval {points(low)} to {points(high)} ({decision.evidence.describe()}); "
        f"p = {decision.p_value:.2g}{adjusted}"
    )
    depends = "the gap depends on the recipe" if decision.rejected else "the gap is not shown to depend on the recipe"
    return f"Test accuracy, architecture by recipe ({a} and {b}): {numbers}: {depends}. {_verdict(each, winners)}"


def _verdict(each: Interaction, winners: tuple[str, str]) -> str:
    """Which it is, from the within-recipe decisions: the architectures' gap, the recipes', or not decided."""
    a, b = each.a, each.b
    first, second = each.recipes
    if winners[0] and winners[0] == winners[1]:
        loser = b if winners[0] == a else a
        return (
            f"Verdict: {winners[0]} is ahead of {loser} under both recipes ({_gap(each, 0)} and {_gap(each, 1)}): the gap "
            f"is the architectures', not the recipes'."
        )
    if winners[0] and winners[1]:
        return (
            f"Verdict: the ranking reverses with the recipe ({winners[0]} ahead under recipe {first}, {winners[1]} under "
            f"recipe {second}): the recipe, not the architecture alone, decides which is ahead."
        )
    undecided = [recipe for recipe, winner in zip(each.recipes, winners, strict=True) if not winner]
    return (
        f"Verdict: not decided: {a} and {b} are not shown to differ under recipe{'s' * (len(undecided) > 1)} "
        f"{' and '.join(undecided)}."
    )


def _gap(each: Interaction, index: int) -> str:
    return points(abs(each.gaps[index])).lstrip("+")
