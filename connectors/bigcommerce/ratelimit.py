"""One request budget per BigCommerce store, shared by every client in the process.

BigCommerce meters each store with one quota shared by every app and client on it (150 requests
per 30 s on Standard/Plus, 450 on Pro), and reports it on every response in the
``X-Rate-Limit-*`` headers [conventions.md §2]. A :class:`QuotaBudget` decides when the next
request to a store may be sent; :class:`MemoryQuotaBudget` keeps that state in this process.

The process creates **one** :class:`MemoryQuotaBudget` and hands it to every
:class:`~connectors.bigcommerce.client.BigCommerceClient` it builds; the budget keeps one state
per store hash, so all clients talking to a store share it. :class:`RetryPolicy` and
:class:`ClientStats` (re-exported by the client module) describe a client's own retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from engine import Clock, SystemClock

H_LEFT = "x-rate-limit-requests-left"
H_QUOTA = "x-rate-limit-requests-quota"
H_RESET_MS = "x-rate-limit-time-reset-ms"
H_WINDOW_MS = "x-rate-limit-time-window-ms"
H_RETRY_AFTER = "x-retry-after"


class QuotaBudget(Protocol):
    """Decides when a request to a store may be sent, and learns from every response.

    Contract, per store hash:

    * ``acquire`` returns once one more request may be sent and counts it as *in flight*.
    * Every ``acquire`` that returned is matched by exactly one ``observe`` for the same store,
      whatever happens next: with the response's headers and status, or with ``status=None``
      when no response arrived (connection error, timeout, cancellation).
    * After ``observe`` sees a 429, later ``acquire`` calls for that store wait (all of them,
      not only the caller that got the 429) before another request is allowed. The caller
      retries by calling ``acquire`` again and does not sleep on its own.
    """

    async def acquire(self, store_hash: str) -> None:
        """Wait until a request to ``store_hash`` may be sent, then count it as in flight.

        If cancelled while waiting, nothing is counted and no ``observe`` is due.
        """
        ...

    def observe(self, store_hash: str, headers: Mapping[str, str], status: int | None) -> None:
        """Record the outcome of one request counted by ``acquire``.

        ``headers`` are the response headers (names compared case-insensitively; the
        ``X-Rate-Limit-*`` and ``X-Retry-After`` ones matter); ``status`` is the HTTP status,
        or ``None`` when no response arrived. Never blocks.
        """
        ...

    def snapshot(self, store_hash: str) -> QuotaSnapshot:
        """What the budget knows about ``store_hash`` now (for health pages and metrics);
        never blocks."""
        ...


@dataclass(frozen=True)
class BudgetConfig:
    """Tuning for :class:`MemoryQuotaBudget`. Times are in seconds."""

    reserve_fraction: float = 0.1
    """Share of the quota left unspent; once only this many requests remain, wait for the reset."""
    min_reserve: int = 3
    """The reserve is at least this many requests (but always below the quota)."""
    probe_concurrency: int = 2
    """Requests allowed in flight before the first response has told us the quota."""
    max_in_flight: int = 25
    """Never more than this many requests in flight per store, even with quota to spare."""
    default_window: float = 30.0
    """Window length assumed when the headers don't give one."""
    backoff_base: float = 1.0
    """First wait after a 429 without rate-limit headers; doubles on each consecutive 429."""
    backoff_cap: float = 60.0
    """Longest progressive back-off step."""


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries. Delays are seconds on the client's clock, one per retry.

    BigCommerce asks for 3-5 retries of 5xx with increasing delays of at least a minute, longer
    for writes [conventions.md §2]; tests and sandboxes pass shorter delays.
    """

    read_delays: tuple[float, ...] = (60.0, 120.0, 240.0)
    write_delays: tuple[float, ...] = (120.0, 300.0, 600.0)
    network_delays: tuple[float, ...] = (2.0, 8.0, 30.0)
    max_rate_limited: int = 8
    """429s one call accepts (each after the budget's pause) before raising ``RateLimited``."""


@dataclass
class ClientStats:
    """Counters for metrics. ``requests`` counts HTTP attempts, retries included."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    network_errors: int = 0
    last_quota: int | None = None
    last_left: int | None = None


@dataclass(frozen=True)
class QuotaSnapshot:
    """What the budget knows about one store, for metrics and tests."""

    quota: int | None
    left: int | None
    in_flight: int
    queued: int
    reset_in: float | None
    paused_for: float
    consecutive_429: int
    requests: int
    rate_limited: int


@dataclass
class _Store:
    quota: int | None = None
    left: int | None = None
    window: float | None = None
    reset_at: float | None = None
    metered: bool | None = None  # None until the first response says whether headers come
    in_flight: int = 0
    paused_until: float = 0.0
    consecutive_429: int = 0
    requests: int = 0
    rate_limited: int = 0
    queue: deque[asyncio.Future[None]] = field(default_factory=deque)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None


def _number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


class MemoryQuotaBudget:
    """In-process :class:`QuotaBudget`, one state per store hash.

    * **Reserve.** Of the quota, ``max(min_reserve, ceil(quota * reserve_fraction))`` requests
      are never spent (capped at ``quota - 1``). A request is allowed while
      ``left - in_flight > reserve``, where ``left`` is the lowest
      ``X-Rate-Limit-Requests-Left`` seen in the current window and ``in_flight`` counts requests
      sent but not yet answered, so concurrent callers never spend the same unit twice.
      Otherwise callers wait until the window resets: the time the headers were seen plus
      ``X-Rate-Limit-Time-Reset-Ms`` on the clock. At that point ``left`` is assumed to be the
      full quota again, until the next response says otherwise. Responses from an older window
      that arrive late are ignored.
    * **Unknown budget.** Until the first response, ``probe_concurrency`` requests may be in
      flight. A store whose responses carry no rate-limit headers is limited only by
      ``max_in_flight``.
    * **429.** Every caller for the store pauses: ``Reset-Ms`` (or ``X-Retry-After`` seconds)
      for the first 429, plus a doubling back-off (``backoff_base``, 2x, 4x, capped at
      ``backoff_cap``) for each consecutive one. A 429 without those headers means the platform
      is under load: pause ``backoff_base``, then 2x, 4x, and so on. A 429 for a request sent
      before the current pause began extends the pause to its own reset time but does not
      count as consecutive.
    * **Fairness.** Waiting callers are served first in, first out.
    """

    def __init__(self, clock: Clock | None = None, config: BudgetConfig | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self.config = config or BudgetConfig()
        self._stores: dict[str, _Store] = {}

    # -- protocol -------------------------------------------------------------------------

    async def acquire(self, store_hash: str) -> None:
        st = self._store(store_hash)
        if not st.queue and self._delay(st) == 0.0:
            self._grant(st)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        st.queue.append(fut)
        self._ensure_pump(st)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # The slot was granted just as we were cancelled: give it back.
                st.in_flight -= 1
                st.requests -= 1
                st.changed.set()
            raise

    def observe(self, store_hash: str, headers: Mapping[str, str], status: int | None) -> None:
        st = self._store(store_hash)
        st.in_flight = max(0, st.in_flight - 1)
        st.changed.set()
        if status is None:
            return
        now = self._clock.monotonic()
        h = {k.lower(): v for k, v in headers.items()}
        left, reset_ms = _number(h, H_LEFT), _number(h, H_RESET_MS)
        if left is not None:
            self._learn(st, now, h, int(left), reset_ms)
        elif st.metered is None and status != 429:
            st.metered = False
        if status == 429:
            wait = reset_ms / 1000 if reset_ms is not None else _number(h, H_RETRY_AFTER)
            self._on_429(st, now, wait)
        else:
            st.consecutive_429 = 0

    # -- introspection --------------------------------------------------------------------

    def snapshot(self, store_hash: str) -> QuotaSnapshot:
        st = self._store(store_hash)
        now = self._clock.monotonic()
        self._roll(st, now)
        return QuotaSnapshot(
            quota=st.quota,
            left=st.left,
            in_flight=st.in_flight,
            queued=sum(1 for f in st.queue if not f.done()),
            reset_in=None if st.reset_at is None else max(0.0, st.reset_at - now),
            paused_for=max(0.0, st.paused_until - now),
            consecutive_429=st.consecutive_429,
            requests=st.requests,
            rate_limited=st.rate_limited,
        )

    def reserve(self, quota: int) -> int:
        """How many of ``quota`` requests per window are left unspent."""
        cfg = self.config
        wanted = max(cfg.min_reserve, math.ceil(quota * cfg.reserve_fraction))
        return max(0, min(wanted, quota - 1))

    # -- internals ------------------------------------------------------------------------

    def _store(self, store_hash: str) -> _Store:
        st = self._stores.get(store_hash)
        if st is None:
            st = self._stores[store_hash] = _Store()
        return st

    def _grant(self, st: _Store) -> None:
        st.in_flight += 1
        st.requests += 1

    def _window(self, st: _Store) -> float:
        return st.window or self.config.default_window

    def _roll(self, st: _Store, now: float) -> None:
        """Start a new window locally once the known reset time has passed."""
        if st.reset_at is None or now < st.reset_at:
            return
        window = self._window(st)
        periods = math.floor((now - st.reset_at) / window) + 1
        st.reset_at += periods * window
        st.left = st.quota

    def _learn(
        self, st: _Store, now: float, h: Mapping[str, str], left: int, reset_ms: float | None
    ) -> None:
        st.metered = True
        quota, window_ms = _number(h, H_QUOTA), _number(h, H_WINDOW_MS)
        if window_ms:
            st.window = window_ms / 1000
        st.quota = int(quota) if quota is not None else max(st.quota or 0, left)
        self._roll(st, now)
        reset_at = now + (reset_ms / 1000 if reset_ms is not None else self._window(st))
        if st.reset_at is None or st.left is None:
            st.left, st.reset_at = left, reset_at
            return
        tolerance = self._window(st) / 2
        if reset_at < st.reset_at - tolerance:
            return  # a late answer from an earlier window: its count is stale
        if reset_at > st.reset_at + tolerance:
            st.left, st.reset_at = left, reset_at  # the server has moved on to a new window
        else:
            st.left = min(st.left, left)
            if reset_ms is not None:
                st.reset_at = max(st.reset_at, reset_at)

    def _on_429(self, st: _Store, now: float, header_wait: float | None) -> None:
        st.rate_limited += 1
        if header_wait is not None:
            st.left = 0
            st.reset_at = now + header_wait
        if now < st.paused_until:
            # Sent before the current pause began: not a fresh consecutive 429.
            if header_wait is not None:
                st.paused_until = max(st.paused_until, now + header_wait)
            return
        st.consecutive_429 += 1
        n, cfg = st.consecutive_429, self.config
        if header_wait is None:
            wait = min(cfg.backoff_cap, cfg.backoff_base * 2 ** (n - 1))
        else:
            extra = 0.0 if n == 1 else min(cfg.backoff_cap, cfg.backoff_base * 2 ** (n - 2))
            wait = header_wait + extra
        st.paused_until = now + wait

    def _delay(self, st: _Store) -> float | None:
        """0 when a request may go now; seconds to wait; ``None`` to wait for a response."""
        now = self._clock.monotonic()
        self._roll(st, now)
        if st.paused_until > now:
            return st.paused_until - now
        if st.in_flight >= self.config.max_in_flight:
            return None
        if st.metered is None:
            return 0.0 if st.in_flight < self.config.probe_concurrency else None
        if not st.metered or st.left is None or st.quota is None:
            return 0.0
        if st.left - st.in_flight > self.reserve(st.quota):
            return 0.0
        if st.reset_at is None:  # pragma: no cover - _learn always sets it with left
            return self._window(st)
        return max(st.reset_at - now, 1e-3)

    def _ensure_pump(self, st: _Store) -> None:
        if st.pump is None or st.pump.done():
            st.pump = asyncio.get_running_loop().create_task(self._pump(st))

    async def _pump(self, st: _Store) -> None:
        """Hand out slots to queued callers in order, waiting on the clock or on responses."""
        while st.queue:
            if st.queue[0].done():  # cancelled while queued
                st.queue.popleft()
                continue
            st.changed.clear()
            delay = self._delay(st)
            if delay == 0.0:
                self._grant(st)
                st.queue.popleft().set_result(None)
                continue
            await self._wait_for_change(st, delay)

    async def _wait_for_change(self, st: _Store, delay: float | None) -> None:
        waiters: list[asyncio.Task[object]] = [asyncio.ensure_future(st.changed.wait())]
        if delay is not None:
            waiters.append(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            for task in waiters:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
