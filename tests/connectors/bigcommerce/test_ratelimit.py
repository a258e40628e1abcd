"""MemoryQuotaBudget: reserve, in-flight counting, windows, 429 pauses, fairness."""

from __future__ import annotations

import asyncio

import pytest

from connectors.bigcommerce.ratelimit import BudgetConfig, MemoryQuotaBudget
from engine.clock import ManualClock
from tests.connectors.bigcommerce.conftest import (
    STORE,
    FakeStore,
    drive,
    live_simulator,
    rl_headers,
    settle,
)


def start(budget: MemoryQuotaBudget, n: int, store: str = STORE) -> list[asyncio.Task[None]]:
    return [asyncio.ensure_future(budget.acquire(store)) for _ in range(n)]


async def test_reserve_size(budget):
    assert budget.reserve(150) == 15
    assert budget.reserve(450) == 45
    assert budget.reserve(10) == 3  # min_reserve
    assert budget.reserve(2) == 1  # always below the quota
    assert budget.reserve(1) == 0


async def test_unknown_budget_allows_only_a_few_probes(budget):
    tasks = start(budget, 5)
    await settle()
    assert sum(t.done() for t in tasks) == 2
    budget.observe(STORE, rl_headers(left=100, reset_ms=20_000), 200)
    await settle()
    assert all(t.done() for t in tasks)
    assert budget.snapshot(STORE).in_flight == 5 - 1


async def test_in_flight_requests_are_not_spent_twice(budget):
    await budget.acquire(STORE)
    budget.observe(STORE, rl_headers(left=21, reset_ms=10_000), 200)
    # 21 left, reserve 15: exactly 6 may be in flight at once.
    tasks = start(budget, 10)
    await settle()
    assert sum(t.done() for t in tasks) == 6
    assert budget.snapshot(STORE).queued == 4
    for t in tasks:
        t.cancel()
    await settle()


async def test_inside_the_reserve_waits_exactly_for_the_window_reset(budget, clock: ManualClock):
    await budget.acquire(STORE)
    budget.observe(STORE, rl_headers(left=15, reset_ms=12_000), 200)
    waiter = asyncio.ensure_future(budget.acquire(STORE))
    clock.advance(11.999)
    await settle()
    assert not waiter.done()
    clock.advance(0.001)
    await settle()
    assert waiter.done()
    snap = budget.snapshot(STORE)
    assert snap.left == 150  # assumed refreshed until a response says otherwise
    assert snap.reset_in == pytest.approx(30.0)


async def test_header_names_are_case_insensitive(budget):
    await budget.acquire(STORE)
    lower = {k.lower(): v for k, v in rl_headers(left=40, reset_ms=5_000, quota=450).items()}
    budget.observe(STORE, lower, 200)
    snap = budget.snapshot(STORE)
    assert (snap.quota, snap.left, snap.in_flight) == (450, 40, 0)


async def test_late_answer_from_an_earlier_window_is_ignored(budget, clock: ManualClock):
    await budget.acquire(STORE)
    await budget.acquire(STORE)
    budget.observe(STORE, rl_headers(left=100, reset_ms=1_000), 200)
    clock.advance(2)  # the window has reset; the second answer was computed before that
    budget.observe(STORE, rl_headers(left=140, reset_ms=29_000), 200)
    await budget.acquire(STORE)
    budget.observe(STORE, rl_headers(left=3, reset_ms=50), 200)  # stale: from the old window
    assert budget.snapshot(STORE).left == 140


async def test_out_of_order_answers_in_one_window_keep_the_lowest_left(budget):
    for _ in range(2):
        await budget.acquire(STORE)
    budget.observe(STORE, rl_headers(left=90, reset_ms=20_000), 200)
    budget.observe(STORE, rl_headers(left=95, reset_ms=20_010), 200)
    assert budget.snapshot(STORE).left == 90


async def test_429_with_headers_pauses_every_caller_for_exactly_reset_ms(
    budget, clock: ManualClock
):
    await budget.acquire(STORE)
    budget.observe(STORE, rl_headers(left=0, reset_ms=15_000), 429)
    tasks = start(budget, 10)
    clock.advance(14.999)
    await settle()
    assert not any(t.done() for t in tasks)
    clock.advance(0.001)
    await settle()
    # The window has reset: everyone may go (well within quota minus reserve).
    assert all(t.done() for t in tasks)


async def test_retry_after_seconds_used_when_reset_ms_is_missing(budget, clock: ManualClock):
    await budget.acquire(STORE)
    budget.observe(STORE, {"X-Retry-After": "7"}, 429)
    waiter = asyncio.ensure_future(budget.acquire(STORE))
    clock.advance(6.9)
    await settle()
    assert not waiter.done()
    clock.advance(0.1)
    await settle()
    assert waiter.done()


async def pause_after_429(
    budget: MemoryQuotaBudget, clock: ManualClock, headers: dict[str, str]
) -> float:
    """Send one request that gets a 429; return how long the next acquire had to wait."""
    await budget.acquire(STORE)
    budget.observe(STORE, headers, 429)
    began = clock.monotonic()
    await drive(clock, budget.acquire(STORE), step=0.25)
    return clock.monotonic() - began


async def test_429_without_headers_backs_off_progressively_and_caps(clock: ManualClock):
    budget = MemoryQuotaBudget(clock, BudgetConfig(backoff_base=1.0, backoff_cap=8.0))
    await budget.acquire(STORE)
    budget.observe(STORE, {}, 429)
    waits = []
    for _ in range(5):
        began = clock.monotonic()
        await drive(clock, budget.acquire(STORE), step=0.25)
        waits.append(clock.monotonic() - began)
        budget.observe(STORE, {}, 429)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert budget.snapshot(STORE).rate_limited == 6


async def test_repeated_429_with_headers_add_growing_back_off(budget, clock: ManualClock):
    first = await pause_after_429(budget, clock, rl_headers(left=0, reset_ms=3_000))
    second = await pause_after_429(budget, clock, rl_headers(left=0, reset_ms=3_000))
    third = await pause_after_429(budget, clock, rl_headers(left=0, reset_ms=3_000))
    assert (first, second, third) == (3.0, 4.0, 5.0)


async def test_a_success_resets_the_back_off(budget, clock: ManualClock):
    assert await pause_after_429(budget, clock, {}) == 1.0
    assert await pause_after_429(budget, clock, {}) == 2.0
    budget.observe(STORE, rl_headers(left=100, reset_ms=20_000), 200)
    assert await pause_after_429(budget, clock, {}) == 1.0


async def test_429s_of_requests_already_in_flight_do_not_escalate(budget, clock: ManualClock):
    await budget.acquire(STORE)
    budget.observe(STORE, rl_headers(left=100, reset_ms=20_000), 200)
    for _ in range(3):
        await budget.acquire(STORE)
    budget.observe(STORE, {}, 429)
    budget.observe(STORE, {}, 429)
    budget.observe(STORE, {}, 429)
    snap = budget.snapshot(STORE)
    assert snap.consecutive_429 == 1
    assert snap.paused_for == 1.0
    assert snap.rate_limited == 3


async def test_stores_are_independent(budget):
    await budget.acquire("one")
    budget.observe("one", rl_headers(left=0, reset_ms=15_000), 429)
    await asyncio.wait_for(budget.acquire("two"), timeout=1)
    assert budget.snapshot("one").paused_for == 15.0
    assert budget.snapshot("two").in_flight == 1


async def test_store_without_rate_limit_headers_is_bounded_by_max_in_flight(clock):
    budget = MemoryQuotaBudget(clock, BudgetConfig(max_in_flight=4))
    await budget.acquire(STORE)
    budget.observe(STORE, {"Content-Type": "application/json"}, 200)
    tasks = start(budget, 6)
    await settle()
    assert sum(t.done() for t in tasks) == 4
    budget.observe(STORE, {}, 200)
    await settle()
    assert sum(t.done() for t in tasks) == 5
    for t in tasks:
        t.cancel()
    await settle()


async def test_waiters_are_served_in_order_and_cancellation_frees_the_place(budget):
    await budget.acquire(STORE)
    await budget.acquire(STORE)
    order: list[int] = []

    async def take(i: int) -> None:
        await budget.acquire(STORE)
        order.append(i)

    tasks = [asyncio.ensure_future(take(i)) for i in range(4)]
    await settle()
    tasks[1].cancel()
    budget.observe(STORE, {}, None)  # no response: frees a slot, teaches nothing
    await settle()
    assert order == [0]
    budget.observe(STORE, {}, None)
    await settle()
    assert order == [0, 2]
    snap = budget.snapshot(STORE)
    assert (snap.in_flight, snap.queued, snap.quota) == (2, 1, None)
    tasks[3].cancel()
    await settle()


async def test_400_requests_through_a_150_quota_never_draw_a_429(budget, clock: ManualClock):
    store = FakeStore(clock, quota=150, window=30.0)

    async def one() -> None:
        await budget.acquire(STORE)
        response = store(_request())
        clock_note.append(clock.monotonic())
        budget.observe(STORE, response.headers, response.status_code)

    clock_note: list[float] = []
    await drive(clock, asyncio.gather(*(one() for _ in range(400))), step=0.5)
    assert store.statuses.count(429) == 0
    assert store.statuses.count(200) == 400
    # 135 per window (150 minus a 15 reserve): the last ones go in the third window.
    assert 60.0 <= clock.monotonic() < 90.0
    per_window = [sum(1 for t in clock_note if w * 30 <= t < (w + 1) * 30) for w in range(3)]
    assert per_window == [135, 135, 130]


def _request():
    import httpx

    return httpx.Request("GET", f"https://api.bigcommerce.com/stores/{STORE}/v3/catalog/products")


# -- against the store simulator, over HTTP on loopback ---------------------------------------


async def test_simulator_quota_is_shared_with_another_app_without_a_429(clock, budget):
    async with live_simulator(clock, budget, quota=20, window_ms=30_000) as live:
        for _ in range(15):  # another app on the store spends most of the first window
            live.sim.limiter.take(live.store.store_hash)
        client = live.client()
        calls = [client.get_product(111) for _ in range(60)]
        products = await live.run(asyncio.gather(*calls), step=1.0)
        assert {p["id"] for p in products} == {111}
        assert live.store.counters.rate_limited == 0
        assert live.calls("/v3/catalog/products/111") == 60
        # 2 in the first window (5 left, 3 kept in reserve), then 17 per window: 2+17*3 = 53
        # by the fourth window, the last 7 in the fifth.
        assert 120.0 <= clock.monotonic() < 121.0
        assert client.stats.last_quota == 20


async def test_simulator_429_is_waited_out_once(clock, budget):
    async with live_simulator(clock, budget, quota=10, window_ms=10_000) as live:
        for _ in range(10):
            live.sim.limiter.take(live.store.store_hash)
        client = live.client()
        info = await live.run(client.store_info(), step=0.1)
        assert info["id"] == live.store.store_hash
        assert live.store.counters.rate_limited == 1
        assert (client.stats.rate_limited, client.stats.requests) == (1, 2)
        assert 10.0 <= clock.monotonic() < 10.5
