"""Identifiers that sort by creation time (ULID-like), so cursors can page by id."""

from __future__ import annotations

import base64
import os
import time


def new_id(prefix: str) -> str:
    """``prefix_`` + 26 characters: 48 bits of milliseconds then 80 random bits, in base32hex
    (whose alphabet sorts like the numbers it encodes), so ids sort by creation time."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return f"{prefix}_{base64.b32hexencode(raw)[:26].decode().lower()}"
