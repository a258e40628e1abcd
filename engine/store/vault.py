"""Credentials encrypted at rest (Fernet, keyed from the ``SOUS_SECRET_KEY`` setting).

Store access tokens, SMTP passwords and HTTP secrets are kept here, per workspace, by name.
Values are never returned by the API and never written to traces: templates read them as
``{{ secrets.NAME }}`` and every value read during a step is masked in that step's trace.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from sqlmodel import select

from engine.clock import Clock
from engine.errors import NotFoundError, SousError
from engine.store import audit
from engine.store.db import Database
from engine.store.models import CredentialRow


class Cipher:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(("sous-vault:" + secret_key).encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SousError(
                "a stored credential cannot be decrypted: was SOUS_SECRET_KEY changed?"
            ) from None


class Vault:
    def __init__(self, db: Database, cipher: Cipher, clock: Clock) -> None:
        self._db = db
        self.cipher = cipher
        self._clock = clock

    def put(self, workspace: str, name: str, value: str) -> None:
        with self._db.session() as s:
            row = s.get(CredentialRow, (workspace, name))
            action = "created" if row is None else "updated"
            if row is None:
                row = CredentialRow(workspace_id=workspace, name=name, created_at=self._clock.now())
            row.value_enc = self.cipher.encrypt(value)
            row.updated_at = self._clock.now()
            s.add(row)
            audit.record(s, workspace, "secret", action, name, row.updated_at)  # never the value
            s.commit()

    def get(self, workspace: str, name: str) -> str:
        with self._db.read_session() as s:
            row = s.get(CredentialRow, (workspace, name))
            if row is None:
                raise NotFoundError("secret", name)
            return self.cipher.decrypt(row.value_enc)

    def names(self, workspace: str) -> list[str]:
        with self._db.read_session() as s:
            rows = s.exec(select(CredentialRow.name).where(CredentialRow.workspace_id == workspace))
            return sorted(rows.all())

    def delete(self, workspace: str, name: str) -> None:
        with self._db.session() as s:
            row = s.get(CredentialRow, (workspace, name))
            if row is None:
                raise NotFoundError("secret", name)
            s.delete(row)
            audit.record(s, workspace, "secret", "deleted", name, self._clock.now())
            s.commit()
