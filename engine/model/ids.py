"""Identifiers that sort by creation time (ULID-like), so cursors can page by id."""

from __future__ import annotations

import base64
import os
import threading
import time

_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, random part) of the newest id made in this process


def new_id(prefix: str) -> str:
    """``prefix_`` + 26 characters: 48 bits of milliseconds then 80 random bits, in base32hex
    (whose alphabet sorts like the numbers it encodes), so ids sort by creation time. Within one
    millisecond the random part counts up from the previous id's (monotonic, as ULIDs do), so
    ids made one after the other in a process sort in that order too."""
    global _last
    now = time.time_ns() // 1_000_000
    with _lock:
        ms, rand = _last
        if now <= ms and rand + 1 < 1 << _RANDOM_BITS:
            now, rand = ms, rand + 1
        else:
            rand = int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big") >> 1  # room to count up
        _last = (now, rand)
    raw = now.to_bytes(6, "big") + rand.to_bytes(_RANDOM_BITS // 8, "big")
    return f"{prefix}_{base64.b32hexencode(raw)[:26].decode().lower()}"
