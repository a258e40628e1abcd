"""Identifiers sort by creation time, also within one millisecond."""

from __future__ import annotations

from engine.model.ids import new_id


def test_ids_made_one_after_another_sort_in_that_order() -> None:
    made = [new_id("run") for _ in range(20_000)]  # many share a millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == len("run_") + 26 for i in made)
