"""Recipes: create, validate, read, list, update (optimistic concurrency), enable, disable,
delete; versions, diffs and rollback. Every change refreshes the dispatcher's index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Header, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import (
    ContainerDep,
    CurrentKey,
    EngineDep,
    RegistryDep,
    RequireWrite,
    SessionDep,
    WorkspaceDep,
    store_aware,
)
from api.errors import ApiError, ErrorItem, not_found, recipe_details, responses
from api.keys import Caller, reachable
from api.models import (
    MAX_VERSION,
    RECIPE_EXAMPLE,
    RecipeCopy,
    RecipeCreate,
    RecipeDiff,
    RecipeDisable,
    RecipePublic,
    RecipeRollback,
    RecipesPublic,
    RecipeUpdate,
    RecipeVersionDocument,
    RecipeVersionPublic,
    RecipeVersionsPublic,
    ValidationResult,
)
from api.pagination import Cursor, Limit, page
from api.recipes_query import public_row, public_stored, search, store_warnings
from api.yaml_body import YAML_REQUEST_BODY, YamlBodyRoute
from engine import SLUG_MAX, NotFoundError, StoredRecipe, Text, validate_document
from sous.container import Container

router = APIRouter(
    prefix="/v1/recipes",
    tags=["recipes"],
    responses=responses(401, 403, 422),
    route_class=YamlBodyRoute,  # create and replace take a recipe as JSON or as YAML
)
RecipeId = Annotated[str, Path(max_length=SLUG_MAX, description="The recipe's id (slug)")]


async def _change(container: Container, change: Callable[[], StoredRecipe]) -> StoredRecipe:
    """Apply a change in the threadpool, then bring the dispatcher's index up to date."""
    stored = await run_in_threadpool(change)
    container.engine.refresh(stored)
    return stored


def _tagged(response: Response, stored: StoredRecipe) -> RecipePublic:
    response.headers["ETag"] = f'"{stored.version}"'
    return public_stored(stored)


async def _saved(container: Container, response: Response, stored: StoredRecipe) -> RecipePublic:
    """A created or replaced recipe, with :func:`store_warnings`."""
    shown = _tagged(response, stored)
    shown.warnings = await container.db.read(
        lambda tx: store_warnings(tx, stored.workspace, stored.recipe)
    )
    return shown


def _expected_version(if_match: str | None, body_version: int | None) -> int | None:
    if if_match is None:
        if body_version is None:
            raise ApiError(428, "say which version this change is based on: If-Match or version")
        return body_version
    tag = if_match.strip().removeprefix("W/").strip('"')
    if tag == "*":
        return None
    if not tag.isdigit():
        raise ApiError(422, 'If-Match must be the ETag of a version, such as "3"')
    return int(tag)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a recipe",
    description="The body is the recipe document: JSON, or YAML as in a recipe file "
    "(`Content-Type: application/yaml`); errors in YAML name the line and the field.",
    responses=responses(409),
    openapi_extra=YAML_REQUEST_BODY,
)
async def create_recipe(
    body: RecipeCreate, caller: RequireWrite, container: ContainerDep, response: Response
) -> RecipePublic:
    stored = await _change(
        container, lambda: container.engine.recipes.create(caller.workspace, body.document())
    )
    return await _saved(container, response, stored)


@router.post("/validate", summary="Validate a recipe document without saving it")
def validate_recipe(
    document: Annotated[dict[str, Any], Body(examples=[RECIPE_EXAMPLE])],
    workspace: WorkspaceDep,
    registry: RegistryDep,
) -> ValidationResult:
    _, details = validate_document(document, registry)
    return ValidationResult(valid=not details, errors=recipe_details(details))


def _for_stores(document: dict[str, Any], caller: Caller) -> bool:
    """Whether a key limited to stores may see this recipe: it runs for those stores only."""
    if caller.stores is None:
        return True
    store = document.get("store", "*")
    stores = [store] if isinstance(store, str) else list(store or [])
    return "*" not in stores and bool(stores) and set(stores) <= caller.stores


@router.get(
    "",
    summary="List recipes",
    description="A key limited to stores sees the recipes that run for its stores only (a "
    "page may then hold fewer than `limit`; follow `next_cursor`).",
)
@store_aware
def list_recipes(
    caller: CurrentKey,
    session: SessionDep,
    enabled: bool | None = None,
    trigger: Annotated[
        Text | None, Query(max_length=120, description="A trigger type; `prefix.*` for a family")
    ] = None,
    q: Annotated[
        Text | None, Query(max_length=200, description="Text in the id, name or description")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> RecipesPublic:
    rows = search(
        session,
        caller.workspace,
        enabled=enabled,
        trigger=trigger,
        text=q,
        limit=limit,
        cursor=cursor,
    )
    data, next_cursor = page(rows, limit, lambda r: r.slug)
    shown = [public_row(r) for r in data if _for_stores(r.document, caller)]
    return RecipesPublic(data=shown, next_cursor=next_cursor)


@router.get("/{recipe_id}", summary="Show a recipe", responses=responses(404))
@store_aware
def show_recipe(
    recipe_id: RecipeId, caller: CurrentKey, engine: EngineDep, response: Response
) -> RecipePublic:
    stored = engine.recipes.get(caller.workspace, recipe_id)
    if not _for_stores(stored.recipe.document(), caller):
        raise not_found("recipe", recipe_id)
    return _tagged(response, stored)


@router.put(
    "/{recipe_id}",
    summary="Replace a recipe (a new version)",
    description="The body is the whole new document: JSON, or YAML as in a recipe file "
    "(`Content-Type: application/yaml`); errors in YAML name the line and the field.",
    responses=responses(404, 409, 428),
    openapi_extra=YAML_REQUEST_BODY,
)
async def update_recipe(
    recipe_id: RecipeId,
    body: RecipeUpdate,
    caller: RequireWrite,
    container: ContainerDep,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(max_length=40, description='The ETag of the version this is based on: "3"'),
    ] = None,
) -> RecipePublic:
    expected = _expected_version(if_match, body.version)
    recipes = container.engine.recipes
    stored = await _change(
        container, lambda: recipes.update(caller.workspace, recipe_id, body.document(), expected)
    )
    return await _saved(container, response, stored)


@router.post("/{recipe_id}/enable", summary="Enable a recipe", responses=responses(404))
async def enable_recipe(
    recipe_id: RecipeId, caller: RequireWrite, container: ContainerDep, response: Response
) -> RecipePublic:
    stored = await _change(
        container, lambda: container.engine.recipes.set_enabled(caller.workspace, recipe_id, True)
    )
    return _tagged(response, stored)


@router.post("/{recipe_id}/disable", summary="Disable a recipe", responses=responses(404))
async def disable_recipe(
    recipe_id: RecipeId,
    caller: RequireWrite,
    container: ContainerDep,
    response: Response,
    body: RecipeDisable | None = None,
) -> RecipePublic:
    reason = body.reason if body else None
    recipes = container.engine.recipes
    stored = await _change(
        container, lambda: recipes.set_enabled(caller.workspace, recipe_id, False, reason)
    )
    return _tagged(response, stored)


@router.delete(
    "/{recipe_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a recipe",
    responses=responses(404),
)
async def delete_recipe(recipe_id: RecipeId, caller: RequireWrite, engine: EngineDep) -> None:
    uid = await run_in_threadpool(engine.recipes.delete, caller.workspace, recipe_id)
    engine.refresh(None, uid)


@router.post(
    "/{recipe_id}/copy",
    status_code=status.HTTP_201_CREATED,
    summary="Copy a recipe to another store or workspace",
    description="A new recipe from this one's document, in the same workspace or another "
    "(an agency key: any of its workspaces), for other stores, under another id or name. "
    "Its `source` is `copy:WORKSPACE/ID`.",
    responses=responses(404, 409),
)
async def copy_recipe(
    recipe_id: RecipeId,
    body: RecipeCopy,
    caller: RequireWrite,
    container: ContainerDep,
    response: Response,
) -> RecipePublic:
    target = body.workspace or caller.workspace
    if not await run_in_threadpool(reachable, container.db, caller, target):
        raise not_found("workspace", target)
    original = await run_in_threadpool(container.engine.recipes.get, caller.workspace, recipe_id)
    same = target == caller.workspace
    changes: dict[str, Any] = {"version": None, "id": body.id or _copy_id(recipe_id, same)}
    changes |= {k: v for k, v in (("store", body.store), ("name", body.name)) if v is not None}
    document = original.recipe.model_copy(update=changes).document()
    source = f"copy:{caller.workspace}/{recipe_id}"
    stored = await _change(
        container, lambda: container.engine.recipes.create(target, document, source=source)
    )
    return await _saved(container, response, stored)


def _copy_id(recipe_id: str, same_workspace: bool) -> str:
    """The copy's default id: `-copy` added in the same workspace, the original's cut to fit."""
    if not same_workspace:
        return recipe_id
    return recipe_id[: SLUG_MAX - len("-copy")] + "-copy"


@router.get(
    "/{recipe_id}/yaml",
    summary="Download a recipe as a YAML file",
    description="The recipe's document as a recipe file (its version left out), to keep, "
    "edit or create again with `POST /v1/recipes` and `Content-Type: application/yaml`.",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/yaml": {
                    "schema": {"type": "object", "description": "The recipe document, as YAML"}
                }
            }
        },
        **responses(404),
    },
)
def download_recipe(recipe_id: RecipeId, workspace: WorkspaceDep, engine: EngineDep) -> Response:
    stored = engine.recipes.get(workspace, recipe_id)
    document = stored.recipe.model_copy(update={"version": None}).document()
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    headers = {"Content-Disposition": f'attachment; filename="{recipe_id}.yaml"'}
    return Response(text, media_type="application/yaml", headers=headers)


@router.get("/{recipe_id}/versions", summary="List a recipe's versions", responses=responses(404))
def list_versions(
    recipe_id: RecipeId, workspace: WorkspaceDep, engine: EngineDep
) -> RecipeVersionsPublic:
    history = engine.recipes.history(workspace, recipe_id)
    return RecipeVersionsPublic(
        data=[
            RecipeVersionPublic(version=v, created_at=t, author=who, reason=why)
            for v, t, who, why in history
        ]
    )


@router.get(
    "/{recipe_id}/versions/{version}",
    summary="Show one version's document",
    responses=responses(404),
)
def show_version(
    recipe_id: RecipeId,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    workspace: WorkspaceDep,
    engine: EngineDep,
) -> RecipeVersionDocument:
    document = engine.recipes.version(workspace, recipe_id, version)
    return RecipeVersionDocument(version=version, document=document)


@router.get("/{recipe_id}/diff", summary="Compare two versions", responses=responses(404))
def diff_versions(
    recipe_id: RecipeId,
    workspace: WorkspaceDep,
    engine: EngineDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to: Annotated[int, Query(ge=1, le=MAX_VERSION)],
) -> RecipeDiff:
    text = engine.recipes.diff(workspace, recipe_id, from_, to)
    return RecipeDiff(from_=from_, to=to, diff=text)


@router.post(
    "/{recipe_id}/rollback",
    summary="Make an old version current again (as a new version)",
    responses=responses(404),
)
async def rollback_recipe(
    recipe_id: RecipeId,
    body: RecipeRollback,
    caller: RequireWrite,
    container: ContainerDep,
    response: Response,
) -> RecipePublic:
    recipes = container.engine.recipes
    try:
        stored = await _change(
            container, lambda: recipes.rollback(caller.workspace, recipe_id, body.version)
        )
    except NotFoundError as exc:
        if exc.kind == "recipe":
            raise
        # The recipe exists; the body names a version it never had: the body is wrong.
        message = f"recipe {recipe_id!r} has no version {body.version}"
        detail = ErrorItem(path="/version", message=message)
        raise ApiError(422, message, details=[detail]) from None
    return _tagged(response, stored)
