"""Dry-run: would a recipe fire on an event, which condition said no, and what would each step
receive. Nothing is executed and nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from engine import conditions
from engine.authoring.rendering import Renderer
from engine.errors import ConditionError, RenderError
from engine.match.dispatcher import CompiledRecipe, decide_one
from engine.model.events import Event
from engine.model.recipe import Recipe
from engine.registry import Registry


class _Later:
    """Stands for a value only known at run time (an earlier step's output)."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> _Later:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Later(f"{self._path}.{name}")

    def __getitem__(self, key: object) -> _Later:
        return _Later(f"{self._path}[{key!r}]")

    def __str__(self) -> str:
        return f"<{self._path}>"

    __repr__ = __str__


Later = _Later
"""A value known only once an earlier step has run for real (dry-runs; a test run's writes)."""


@dataclass
class StepPreview:
    id: str
    use: str
    would_run: bool | None
    params: Any = None
    error: str | None = None


@dataclass
class DryRun:
    matched: bool
    stage: str
    reason: dict[str, Any] | None
    steps: list[StepPreview] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "stage": self.stage,
            "reason": self.reason,
            "steps": [s.__dict__ for s in self.steps],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, _Later):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def dry_run(recipe: Recipe, event: Event, registry: Registry, now: Any) -> DryRun:
    compiled = CompiledRecipe.build(
        "dry-run", event.workspace, recipe.version or 1, recipe, registry
    )
    data = event.context()
    stores = recipe.stores()
    if event.type != recipe.trigger.type:
        why = f"the recipe starts on {recipe.trigger.type}, not on {event.type}"
        result = DryRun(False, "trigger", {"message": why})
    elif stores is not None and event.store not in stores:
        why = f"the recipe is limited to store(s) {', '.join(stores)}, not {event.store!r}"
        result = DryRun(False, "trigger", {"message": why})
    else:
        decision = decide_one(compiled, event, data)
        result = DryRun(decision.matched, decision.stage, decision.reason)
    renderer = Renderer(now)
    data["steps"] = _Later("steps")
    for index, step in enumerate(recipe.actions):
        preview = StepPreview(id=step.id or str(index), use=step.use, would_run=True)
        if step.if_ is not None:
            try:
                preview.would_run = conditions.truthy(conditions.apply(step.if_, data))
            except (ConditionError, TypeError):
                preview.would_run = None  # depends on earlier steps' output
        try:
            if step.is_loop():
                preview.params = {
                    "for_each": _plain(renderer.render(step.for_each, data, "for_each"))
                }
                result.steps.append(preview)
                continue
            if step.is_parallel():  # its branches' step ids
                preview.params = {
                    name: [sub.id for sub in subs] for name, subs in (step.parallel or {}).items()
                }
                result.steps.append(preview)
                continue
            rendered = _plain(renderer.render(step.with_, data, "with"))
            preview.params = rendered
            if not any(isinstance(v, str) and v.startswith("<steps") for v in _leaves(rendered)):
                registry.action(step.use).params.model_validate(rendered)
        except RenderError as exc:
            preview.error = str(exc)
        except ValidationError as exc:
            first = exc.errors()[0]
            preview.error = f"with.{'.'.join(map(str, first['loc']))}: {first['msg']}"
        result.steps.append(preview)
    return result


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]
