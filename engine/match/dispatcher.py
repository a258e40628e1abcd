"""Match an event to recipes: index → trigger filter → loop guard → conditions.

The index maps ``(store, event type)`` and ``(workspace, event type)`` to compiled recipes, so
the cost of an event does not grow with recipes that do not subscribe to it. Every recipe
considered yields a :class:`Decision`, kept with the event: which matched, and for the others
which stage said no and why. A disabled recipe that subscribes to the event is recorded too
(stage ``disabled``), so an event shows why a recipe did not run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine import conditions
from engine.model.events import Event
from engine.model.recipe import Recipe
from engine.registry import Params, Registry, TriggerSpec


@dataclass
class CompiledRecipe:
    """A recipe made ready to match: its conditions compiled once."""

    uid: str
    workspace: str
    version: int
    recipe: Recipe
    trigger: TriggerSpec
    trigger_params: Params
    checks: list[Callable[[Any], Any]] = field(default_factory=list)

    @classmethod
    def build(
        cls, uid: str, workspace: str, version: int, recipe: Recipe, registry: Registry
    ) -> CompiledRecipe:
        trigger = registry.trigger(recipe.trigger.type)
        return cls(
            uid=uid,
            workspace=workspace,
            version=version,
            recipe=recipe,
            trigger=trigger,
            trigger_params=trigger.params.model_validate(recipe.trigger.with_),
            checks=[conditions.compile_rule(rule) for rule in recipe.conditions],
        )


@dataclass
class Decision:
    recipe: CompiledRecipe
    matched: bool
    stage: str
    """``matched``, ``trigger`` (its filter said no), ``conditions``, ``loop`` (own write),
    ``disabled`` (the recipe is switched off)."""
    reason: dict[str, Any] | None = None


DISABLED = {"message": "the recipe is disabled; enable it to let it run"}


class RecipeIndex:
    """Enabled recipes by ``(store, type)`` and, for all-store recipes, ``(workspace, type)``.

    ``disabled`` indexes the disabled recipes the same way, apart: only to say why they did not
    run. ``by_uid``, ``len`` and :meth:`candidates` see enabled recipes only; :meth:`remove`
    forgets a recipe in both.
    """

    def __init__(self, *, keep_disabled: bool = True) -> None:
        self._by_store: dict[tuple[str, str], list[CompiledRecipe]] = defaultdict(list)
        self._by_workspace: dict[tuple[str, str], list[CompiledRecipe]] = defaultdict(list)
        self.by_uid: dict[str, CompiledRecipe] = {}
        self.disabled = RecipeIndex(keep_disabled=False) if keep_disabled else None

    def __len__(self) -> int:
        return len(self.by_uid)

    def add_disabled(self, compiled: CompiledRecipe) -> None:
        self.remove(compiled.uid)
        if self.disabled is not None:
            self.disabled.add(compiled)

    def add(self, compiled: CompiledRecipe) -> None:
        self.remove(compiled.uid)
        self.by_uid[compiled.uid] = compiled
        type_ = compiled.recipe.trigger.type
        stores = compiled.recipe.stores()
        if stores is None:
            self._by_workspace[(compiled.workspace, type_)].append(compiled)
        else:
            for store in stores:
                self._by_store[(store, type_)].append(compiled)

    def remove(self, uid: str) -> None:
        if self.disabled is not None:
            self.disabled.remove(uid)
        old = self.by_uid.pop(uid, None)
        if old is None:
            return
        type_ = old.recipe.trigger.type
        stores = old.recipe.stores()
        keys = [(old.workspace, type_)] if stores is None else [(s, type_) for s in stores]
        table = self._by_workspace if stores is None else self._by_store
        for key in keys:
            table[key] = [c for c in table[key] if c.uid != uid]
            if not table[key]:
                del table[key]

    def candidates(self, event: Event) -> Iterable[CompiledRecipe]:
        if event.target_recipe is not None:
            target = self.by_uid.get(event.target_recipe)
            return [target] if target and target.workspace == event.workspace else []
        found = self._by_workspace.get((event.workspace, event.type), [])
        if event.store is not None:
            in_store = self._by_store.get((event.store, event.type))
            if in_store:
                found = found + [c for c in in_store if c.workspace == event.workspace]
        return found


class Dispatcher:
    def __init__(self, index: RecipeIndex) -> None:
        self.index = index

    def decide(self, event: Event) -> list[Decision]:
        data: dict[str, Any] | None = None
        decisions = []
        for compiled in self.index.candidates(event):
            if data is None:
                data = event.context()
            decisions.append(decide_one(compiled, event, data))
        if self.index.disabled is not None:
            for compiled in self.index.disabled.candidates(event):
                decisions.append(Decision(compiled, False, "disabled", dict(DISABLED)))
        return decisions


def decide_one(
    compiled: CompiledRecipe, event: Event, data: dict[str, Any], *, explain: bool = True
) -> Decision:
    """Would ``compiled`` fire on ``event``? Pure: reads nothing, writes nothing. Without
    ``explain`` a condition's refusal names only the condition (a backtest explains the first
    of each itself: an explanation costs many times the check)."""
    caused = event.caused_by
    if caused is not None and caused.recipe_uid == compiled.uid:
        return Decision(
            compiled,
            False,
            "loop",
            {"message": "the event was caused by this recipe's own write", "run_id": caused.run_id},
        )
    if compiled.trigger.filter is not None:
        why = compiled.trigger.filter(compiled.trigger_params, event)
        if why is not None:
            return Decision(compiled, False, "trigger", {"message": why})
    for index, check in enumerate(compiled.checks):
        if not conditions.truthy(check(data)):
            if not explain:
                return Decision(compiled, False, "conditions", {"condition": index})
            rule = compiled.recipe.conditions[index]
            explanation = conditions.explain(rule, data)
            reason = {"condition": index, **explanation_dict(explanation)}
            return Decision(compiled, False, "conditions", reason)
    return Decision(compiled, True, "matched")


def explanation_dict(explanation: Any) -> dict[str, Any]:
    """A condition's explanation as a JSON object (what match rows and traces store)."""
    if hasattr(explanation, "to_dict"):
        result: dict[str, Any] = explanation.to_dict()
        return result
    if hasattr(explanation, "model_dump"):
        dumped: dict[str, Any] = explanation.model_dump(mode="json")
        return dumped
    return {"message": str(explanation)}
