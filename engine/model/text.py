"""Text fields every database can store.

PostgreSQL refuses the NUL character (``\\u0000``) in text columns, and no database stores a lone
UTF-16 surrogate (``\\udbbc``), which JSON's escapes can spell. Free text that lands in a column
(names, reasons, dedup keys) is refused at the edge with a reason instead of failing at the
database.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


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


Text = Annotated[str, AfterValidator(storable)]
"""A ``str`` without NUL characters or lone surrogates."""
