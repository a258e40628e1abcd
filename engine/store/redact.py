"""Keep secrets out of traces and logs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

MASK = "***"
SECRET_WORDS = ("password", "secret", "token", "authorization", "api_key", "apikey")


def redact(value: Any, secret_fields: Iterable[str] = (), secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with secret fields masked and known secret strings replaced.

    A field is secret if it is named in ``secret_fields`` or its name contains a word such as
    ``password`` or ``token``; every occurrence of a string in ``secrets`` (values from the
    vault) is masked wherever it appears.
    """
    fields = {f.lower() for f in secret_fields}
    known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    return _walk(value, fields, known)


def _secret_name(name: str, fields: set[str]) -> bool:
    lowered = name.lower()
    return lowered in fields or any(word in lowered for word in SECRET_WORDS)


def _walk(value: Any, fields: set[str], known: list[str]) -> Any:
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, dict):
        return {
            k: MASK
            if _secret_name(str(k), fields) and v not in (None, "")
            else _walk(v, fields, known)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_walk(v, fields, known) for v in value]
    if isinstance(value, str):
        for secret in known:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    return value
