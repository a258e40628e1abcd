"""Named credentials of the caller's workspace, kept encrypted; values are never returned."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from starlette.concurrency import run_in_threadpool

from api.deps import RequireAdmin, VaultDep, WorkspaceDep
from api.errors import responses
from api.models import SecretPublic, SecretPut, SecretsPublic

router = APIRouter(prefix="/v1/secrets", tags=["secrets"], responses=responses(401, 403, 422))

SecretName = Annotated[
    str,
    Path(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$", description="Read in templates as secrets.NAME"),
]


@router.get("", summary="List secret names")
async def list_secrets(workspace: WorkspaceDep, vault: VaultDep) -> SecretsPublic:
    names = await run_in_threadpool(vault.names, workspace)
    return SecretsPublic(data=[SecretPublic(name=n) for n in names])


@router.put("/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Set a secret")
async def put_secret(
    name: SecretName, body: SecretPut, caller: RequireAdmin, vault: VaultDep
) -> None:
    await run_in_threadpool(vault.put, caller.workspace, name, body.value)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a secret",
    responses=responses(404),
)
async def delete_secret(name: SecretName, caller: RequireAdmin, vault: VaultDep) -> None:
    await run_in_threadpool(vault.delete, caller.workspace, name)
