"""Chaos: ``sous serve --sandbox`` is killed with SIGKILL at random moments during a burst of
stock changes and restarted; every change must run and reach the store simulator, and no write
may happen twice, no change be turned into two events (see ``bench/bench_chaos.py``)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from bench.bench_chaos import run_chaos

pytestmark = pytest.mark.slow


async def test_sigkill_during_a_burst_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("SOUS_CHAOS_SEED") or random.randrange(1_000_000))
    report = await run_chaos(products=30, kills=4, seed=seed, deadline=110, folder=tmp_path)
    summary = "\n".join([f"seed {seed} (SOUS_CHAOS_SEED)", *report.lines()])
    assert report.kills == 4, summary
    assert report.events == 30, summary
    assert report.lost == [], summary  # every change ran and reached the store
    assert report.duplicated == [], summary  # no write twice, no change run twice
    assert report.writes == 30, summary
    assert report.runs_completed == 30, summary
    assert not any(n.startswith("runs not succeeded") for n in report.notes), summary
