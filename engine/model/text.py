"""Text fields every database can store.

PostgreSQL refuses the NUL character (``\\u0000``) in text columns, and no database stores a lone
UTF-16 surrogate (``\\udbbc``), which JSON's escapes can spell. Free text that lands in a column
(names, reasons, dedup keys) is refused at the edge with a reason instead of failing at the
database.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


def storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000); remove it and send again")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = f"\\u{ord(value[exc.start]):04x}"
        raise ValueError(
            f"must be Unicode text; a lone surrogate ({bad}) is not: send the whole pair"
        ) from None
    return value


class _SaysNoNul:
    """Puts the rule in the JSON Schema too (``pattern``), so a client learns it there."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: dict[str, Any] = handler(core_schema)
        schema.setdefault("pattern", NO_NUL)
        return schema


NO_NUL = r"^[^\u0000]*$"
Text = Annotated[str, AfterValidator(storable), _SaysNoNul()]
"""A ``str`` without NUL characters or lone surrogates."""
