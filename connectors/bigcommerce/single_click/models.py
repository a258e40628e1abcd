"""Tables of the single-click app.

* ``bc_app_install``: one row per store that installed the app: which Sous store row holds its
  (encrypted) token, its workspace, the owner and the installing user, the granted scopes and
  the Developer Portal account, as the token endpoint answered them.
* ``bc_app_user``: the store's users Sous has seen (the owner, whoever installed, and every
  user who loaded the app since), per store; ``remove_user`` deletes a row.
* ``bc_app_jwt``: the ids (``jti``) of load payloads already used, until they expire, so a
  load URL that leaked cannot open a second session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime
from sqlmodel import Field, SQLModel


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index)
    )


class BcAppInstallRow(SQLModel, table=True):
    __tablename__ = "bc_app_install"
    store_hash: str = Field(primary_key=True, max_length=64)
    store_id: str = Field(index=True, max_length=40)
    workspace_id: str = Field(index=True, max_length=64)
    scope: str = Field(max_length=2000)
    account_uuid: str = Field(default="", max_length=64)
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    owner_email: str = Field(max_length=320)
    installed_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    installed_at: datetime = _ts()


class BcAppUserRow(SQLModel, table=True):
    __tablename__ = "bc_app_user"
    store_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    email: str = Field(max_length=320)
    locale: str | None = Field(default=None, max_length=35)
    is_owner: bool = False
    added_at: datetime = _ts()
    last_load_at: datetime | None = _ts(nullable=True)


class BcAppJwtRow(SQLModel, table=True):
    __tablename__ = "bc_app_jwt"
    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = _ts(index=True)
