"""Per-store request quota with BigCommerce's headers (conventions.md §2).

A store's window opens with its first request and lasts ``window_ms``; each request uses one unit
of ``quota``. Once the quota is used up, requests get 429 until the window ends. Time comes from
the simulator's clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine import Clock


@dataclass(frozen=True)
class Decision:
    allowed: bool
    quota: int
    left: int
    window_ms: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Rate-Limit-Requests-Left": str(self.left),
            "X-Rate-Limit-Time-Reset-Ms": str(self.reset_ms),
            "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
            "X-Rate-Limit-Requests-Quota": str(self.quota),
        }
        if not self.allowed:
            headers["X-Retry-After"] = str(max(1, math.ceil(self.reset_ms / 1000)))
        return headers


@dataclass
class _Window:
    started: float
    used: int = 0


class RateLimiter:
    def __init__(self, clock: Clock, quota: int, window_ms: int) -> None:
        self.clock = clock
        self.quota = quota
        self.window_ms = window_ms
        self._windows: dict[str, _Window] = {}

    def _elapsed_ms(self, window: _Window) -> float:
        # rounded to a microsecond so that float noise never keeps a window open
        return round((self.clock.monotonic() - window.started) * 1000, 3)

    def _window(self, key: str) -> _Window:
        now = self.clock.monotonic()
        window = self._windows.get(key)
        if window is None or self._elapsed_ms(window) >= self.window_ms:
            window = _Window(started=now)
            self._windows[key] = window
        return window

    def _decision(self, window: _Window, allowed: bool) -> Decision:
        reset_ms = max(0, math.ceil(self.window_ms - self._elapsed_ms(window)))
        return Decision(
            allowed=allowed,
            quota=self.quota,
            left=max(0, self.quota - window.used),
            window_ms=self.window_ms,
            reset_ms=reset_ms,
        )

    def take(self, key: str) -> Decision:
        """Use one unit of ``key``'s quota if any is left."""
        window = self._window(key)
        if window.used >= self.quota:
            return self._decision(window, allowed=False)
        window.used += 1
        return self._decision(window, allowed=True)

    def peek(self, key: str) -> Decision:
        """The current state without using quota (for responses to refused requests)."""
        window = self._window(key)
        return self._decision(window, allowed=True)

    def reset(self, key: str | None = None) -> None:
        if key is None:
            self._windows.clear()
        else:
            self._windows.pop(key, None)
