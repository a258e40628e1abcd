"""What recipes can use: every trigger, action and condition operator, with JSON Schemas, and
the recipe document's own JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import RegistryDep, WorkspaceDep
from api.errors import responses
from api.models import ActionInfo, CatalogPublic, OperatorInfo, TriggerInfo
from engine import OPERATORS, ActionSpec, TriggerSpec, recipe_schema

router = APIRouter(prefix="/v1", tags=["catalog"], responses=responses(401))


def _schema(model: type[BaseModel] | None) -> dict[str, Any] | None:
    return model.model_json_schema() if model is not None else None


def _params(model: Any) -> dict[str, Any]:
    """``TriggerSpec.params`` is a ``type[Params]``; the engine's dataclass field named ``type``
    hides the builtin from type checkers there, so it is typed loosely here."""
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def _trigger(spec: TriggerSpec) -> TriggerInfo:
    return TriggerInfo(
        type=spec.type,
        description=spec.description,
        kind=spec.kind,
        payload_schema=_schema(spec.payload),
        sample=spec.sample,
        params_schema=_params(spec.params),
    )


def _action(spec: ActionSpec) -> ActionInfo:
    return ActionInfo(
        name=spec.name,
        description=spec.description,
        params_schema=spec.params.model_json_schema(),
        output_schema=_schema(spec.output),
        writes=spec.writes,
        retry=spec.retry.model_dump(mode="json"),
        timeout=spec.timeout,
    )


@router.get("/catalog", summary="Every trigger, action and condition operator")
def catalog(workspace: WorkspaceDep, registry: RegistryDep) -> CatalogPublic:
    return CatalogPublic(
        triggers=[_trigger(t) for _, t in sorted(registry.triggers.items())],
        actions=[_action(a) for _, a in sorted(registry.actions.items())],
        operators=[OperatorInfo.model_validate(op.to_dict()) for op in OPERATORS.values()],
    )


@router.get("/schema/recipe", summary="The recipe document's JSON Schema (for editors)")
def recipe_json_schema(workspace: WorkspaceDep, registry: RegistryDep) -> dict[str, Any]:
    return recipe_schema(registry)
