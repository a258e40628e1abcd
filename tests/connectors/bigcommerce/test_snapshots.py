"""Stock snapshots as another process (or this one after a restart) reads them back."""

from __future__ import annotations

from connectors.bigcommerce.models import Snapshot, Snapshots
from engine.clock import ManualClock
from engine.store.db import Database


async def test_a_snapshot_read_back_keeps_the_time_zone_of_its_read(
    db: Database, clock: ManualClock
) -> None:
    key = ("store-1", "product", 7)
    read_at = clock.now()
    first = Snapshots(db, clock)
    await db.writer.write(lambda tx: first.save(tx, {key: Snapshot(level=3, read_at=read_at)}))
    again = Snapshots(db, clock)  # nothing cached: as after a restart
    found = again.get(key)
    assert found is not None and found.level == 3
    assert found.read_at == read_at  # comparable with the aware times of new reads
