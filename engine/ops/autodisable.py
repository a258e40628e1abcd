"""Auto-disable: a recipe that keeps failing is switched off, and its owners are told.

When a run ends ``failed``, the recipe's runs finished within its ``auto_disable.window``
(created within it, counting ``succeeded``, ``succeeded_with_errors`` and ``failed``) are
counted; once there are at least ``min_runs`` and at least ``failure_share`` of them failed, the
recipe is disabled with the reason stored on it (``disabled_reason``), removed from the index,
and an event ``sous.recipe.disabled`` is sent to its workspace (a recipe on that trigger can
e-mail about it); when alerting is on, the workspace's alert address is e-mailed too (an
``alert.notice`` job written with the event). The event is stored before the recipe is
switched off, keyed on the recipe's version, so a crash in between sends it once and the next
failure finishes the job.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from engine.errors import NotFoundError
from engine.match.dispatcher import CompiledRecipe
from engine.model.events import NewEvent
from engine.model.limits import pick
from engine.model.status import COUNTED, RunStatus
from engine.run.alerts import ALERT_NOTICE, RECIPE_DISABLED
from engine.store.db import Tx
from engine.store.models import RunRow

if TYPE_CHECKING:
    from engine.contracts import RecipeHost

log = logging.getLogger("sous.engine")
RUNS = RunRow.__table__  # type: ignore[attr-defined]


class AutoDisabler:
    """Counts a recipe's failures when a run fails and switches it off past its rule."""

    def __init__(self, engine: RecipeHost) -> None:
        self._engine = engine
        self._busy: set[str] = set()
        self.disabled: list[str] = []

    def notice(
        self, type_: str, compiled: CompiledRecipe, reason: str, details: dict[str, Any], key: str
    ) -> NewEvent:
        """An event telling a recipe's workspace about the recipe (deduplicated on ``key``)."""
        recipe = compiled.recipe
        payload = {
            "recipe": {
                "uid": compiled.uid,
                "id": recipe.id,
                "name": recipe.name,
                "version": compiled.version,
            },
            "reason": reason,
            "details": details,
        }
        return NewEvent(
            type=type_,
            payload=payload,
            workspace=compiled.workspace,
            source="internal",
            dedup_key=f"{type_}:{compiled.uid}:{key}",
        )

    def failures(self, uid: str, window: timedelta) -> tuple[int, int]:
        """``(finished runs, failed runs)`` of the recipe created within the last ``window``."""
        since = self._engine.clock.now() - window

        def read(tx: Tx) -> tuple[int, int]:
            rows = tx.conn.execute(
                select(RUNS.c.status, func.count())
                .where(
                    RUNS.c.recipe_uid == uid, RUNS.c.created_at >= since, RUNS.c.status.in_(COUNTED)
                )
                .group_by(RUNS.c.status)
            ).all()
            counts = {status: int(n) for status, n in rows}
            return sum(counts.values()), counts.get(RunStatus.FAILED, 0)

        return self._engine.db.read_sync(read)

    async def run_failed(self, uid: str) -> None:
        compiled = self._engine.index.by_uid.get(uid)
        if compiled is None or uid in self._busy:
            return
        rule = pick(compiled.recipe.auto_disable, self._engine.settings.auto_disable)
        if rule is None:
            return
        total, failed = self.failures(uid, rule.window)
        if total < rule.min_runs or failed < rule.failure_share * total:
            return
        window = rule.model_dump(mode="json")["window"]
        reason = f"auto-disabled: {failed} of the last {total} runs within {window} failed"
        details = {
            "runs": total,
            "failed": failed,
            "window": window,
            "failure_share": rule.failure_share,
        }
        self._busy.add(uid)
        try:
            await self.disable(compiled, reason, details)
        finally:
            self._busy.discard(uid)

    async def disable(self, compiled: CompiledRecipe, reason: str, details: dict[str, Any]) -> None:
        engine = self._engine
        notice = self.notice(RECIPE_DISABLED, compiled, reason, details, str(compiled.version))
        # told to the workspace's alert address too, with the event (see engine.run.alerts)
        await engine.ingest(notice, (ALERT_NOTICE,) if engine.alerting else ())
        try:
            stored = engine.recipes.set_enabled(
                compiled.workspace, compiled.recipe.id, False, reason=reason
            )
        except NotFoundError:  # deleted meanwhile
            engine.index.remove(compiled.uid)
            return
        engine.refresh(stored, compiled.uid)
        self.disabled.append(compiled.uid)
        log.warning("recipe %s (%s) disabled: %s", compiled.recipe.id, compiled.uid, reason)
