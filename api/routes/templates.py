"""Recipe templates: list them, read one with its inputs as JSON Schema (draft 2020-12, pickers
marked ``x-sous-picker``) for a front end's form, and make a recipe from one.

Templates come from the workspace's installed packs and from the library Sous ships; making a
recipe from a library template installs its pack version in the workspace first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ContainerDep, RequireWrite, WorkspaceDep
from api.errors import responses
from api.models import RecipePublic
from api.recipes_query import public_stored
from api.routes.packs import PacksDep, run
from engine import PackService, TemplateEntry, Text
from sous.container import Container

router = APIRouter(
    prefix="/v1/templates", tags=["templates"], responses=responses(401, 403, 404, 422)
)


class TemplateSummary(BaseModel):
    ref: str = Field(description="PACK/TEMPLATE, as the other template routes take it")
    pack: str
    version: str = Field(description="The pack version the template comes from")
    installed: bool = Field(
        description="False for a library pack not installed in this workspace yet"
    )
    id: str
    name: str
    description: str
    tags: list[str]
    trigger: str
    actions: list[str]


class TemplatesPublic(BaseModel):
    data: list[TemplateSummary]


class TemplateDetail(TemplateSummary):
    inputs_schema: dict[str, Any] = Field(description="The inputs as a JSON Schema (draft 2020-12)")
    template: dict[str, Any] = Field(description="The template as written, placeholders and all")


class TemplateInstantiate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="Input name → value")
    id: Text | None = Field(
        default=None, description="The recipe's id (default: the template's, plus the store)"
    )
    name: Text | None = Field(
        default=None, description="The recipe's name (default: the template's)"
    )
    store: Text | None = Field(default=None, description="Limit the recipe to this store hash")
    version: Text | None = Field(default=None, description="The pack version (default: the newest)")
    dry_run: bool = Field(default=False, description="Return the recipe without saving it")


class TemplateMade(BaseModel):
    document: dict[str, Any] = Field(description="The recipe made")
    inputs: dict[str, Any] = Field(description="Every input's value, defaults included")
    pack: str = Field(description="NAME@VERSION of the pack the template came from")
    recipe: RecipePublic | None = Field(
        default=None, description="The saved recipe (not on a dry run)"
    )


def _ref(pack: str, template: str, version: str | None) -> str:
    return f"{pack}@{version}/{template}" if version else f"{pack}/{template}"


def _summary(entry: TemplateEntry) -> TemplateSummary:
    return TemplateSummary.model_validate(entry.summary())


@router.get("", summary="Templates from installed packs and the library")
def list_templates(
    workspace: WorkspaceDep, service: PacksDep, all_versions: bool = False
) -> TemplatesPublic:
    return TemplatesPublic(
        data=[_summary(e) for e in service.templates(workspace, every_version=all_versions)]
    )


@router.get("/{pack}/{template}", summary="A template, with its inputs as JSON Schema")
def show(
    pack: str, template: str, workspace: WorkspaceDep, service: PacksDep, version: str | None = None
) -> TemplateDetail:
    entry = service.find(workspace, _ref(pack, template, version))
    return TemplateDetail(
        **entry.summary(), inputs_schema=entry.template.schema(), template=entry.template.document()
    )


@router.get(
    "/{pack}/{template}/schema",
    summary="A template's inputs as JSON Schema (draft 2020-12), for a form",
    response_model=dict[str, Any],
)
def schema(
    pack: str, template: str, workspace: WorkspaceDep, service: PacksDep, version: str | None = None
) -> Any:
    return service.find(workspace, _ref(pack, template, version)).template.schema()


@router.post(
    "/{pack}/{template}/instantiate",
    status_code=status.HTTP_201_CREATED,
    summary="Make a recipe from a template (200 and nothing saved on a dry run)",
)
async def instantiate(
    pack: str,
    template: str,
    body: TemplateInstantiate,
    caller: RequireWrite,
    service: PacksDep,
    container: ContainerDep,
    response: Response,
) -> TemplateMade:
    made = await make_from_template(service, container, caller.workspace, pack, template, body)
    if made.recipe is None:
        response.status_code = status.HTTP_200_OK
    return made


async def make_from_template(
    service: PackService,
    container: Container,
    workspace: str,
    pack: str,
    template: str,
    body: TemplateInstantiate,
) -> TemplateMade:
    """Make (and unless ``body.dry_run``, save) a recipe from a template; raises the engine's
    errors (:class:`~engine.RecipeError` with every input's problem, ...)."""
    from engine import make_recipe

    ref = _ref(pack, template, body.version)
    made = await run(
        container,
        lambda: make_recipe(
            service,
            workspace,
            ref,
            body.inputs,
            recipe_id=body.id,
            name=body.name,
            store=body.store,
            save=not body.dry_run,
        ),
        lambda m: [m.stored] if m.stored is not None else [],
    )
    return TemplateMade(
        document=made.instance.document(),
        inputs=made.instance.values,
        pack=made.pack.ref,
        recipe=public_stored(made.stored) if made.stored is not None else None,
    )
