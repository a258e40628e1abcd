"""Alerts without a recipe: a workspace's alert address hears of failed runs and of recipes
switched off, by e-mail, never in a flood.

The engine writes an ``alert.failure`` job with every failed run, under its recipe's lock key
(the recipe's alert jobs run one at a time), and an ``alert.notice`` job with every
``sous.recipe.disabled`` event (:mod:`engine.run.alerts`). :class:`AlertMailer` handles them:

* the first failure of a recipe is e-mailed at once;
* further failures within ``window`` (an hour by default) of the last e-mail are held back and
  counted, and a digest job is written, due when the window ends: one e-mail with the count and
  the first few failures (time, step, error, link to the run). After a digest the window starts
  again, so a recipe that keeps failing sends at most one e-mail per window;
* a notice (auto-disable) is e-mailed at once.

Each recipe's state is a row (:class:`~connectors.email.models.AlertStateRow`). A message is
decided and written to the row's ``outbox`` in one transaction, then sent through the sent log
under a key of its own (so it goes out once however often its job runs), then cleared with the
job's completion; whatever job of the recipe runs next sends a message left in the outbox by a
crash first. A failure is thus either e-mailed or counted in a digest, never lost, never twice.

Where the e-mails go is asked of ``recipients(workspace)`` (the composition root answers with
the workspace's staff e-mail address, by default ``SOUS_STAFF_EMAIL``); ``None`` sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from connectors.email.config import SmtpConfig
from connectors.email.message import SendParams
from connectors.email.models import AlertStateRow
from connectors.email.send import send_logged
from engine import (
    ALERT_DIGEST,
    ALERT_FAILURE,
    ALERT_NOTICE,
    RUN_FAILED,
    ConnectorHost,
    Database,
    Event,
    EventRow,
    Job,
    NewJob,
    PermanentError,
    RunRow,
    Tx,
    alert_lock,
    complete,
    event_from_row,
    put_back,
    retry_delay,
)

log = logging.getLogger("sous.alerts")

STATE = AlertStateRow.__table__  # type: ignore[attr-defined]
EVENTS = EventRow.__table__  # type: ignore[attr-defined]
RUNS = RunRow.__table__  # type: ignore[attr-defined]

SAMPLES = 10
"""Failures a digest lists one by one (it counts them all)."""
MAX_ATTEMPTS = 12

Recipients = Callable[[str], Awaitable[str | None]]


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


class AlertMailer:
    """Handles the engine's alert jobs (see the module's documentation)."""

    def __init__(
        self,
        engine: ConnectorHost,
        recipients: Recipients,
        *,
        window: timedelta = timedelta(hours=1),
    ) -> None:
        self.engine = engine
        self.recipients = recipients
        self.window = window
        self.sent: list[str] = []
        """Keys of the messages this mailer sent (tests, metrics)."""

    def install(self, concurrency: int = 8) -> None:
        """Handle the alert jobs here, and tell the engine to write them."""
        self.engine.handle(ALERT_FAILURE, self._guarded(self.failure), concurrency)
        self.engine.handle(ALERT_DIGEST, self._guarded(self.digest), concurrency)
        self.engine.handle(ALERT_NOTICE, self._guarded(self.notice), concurrency)
        self.engine.alerting = True

    @property
    def db(self) -> Database:
        return self.engine.db

    def _guarded(self, work: Callable[[Job], Awaitable[None]]) -> Callable[[Job], Awaitable[None]]:
        async def run(job: Job) -> None:
            try:
                await work(job)
            except Exception as exc:
                delay = retry_delay(job, exc, MAX_ATTEMPTS)
                if delay is None:
                    log.error("alert job %s (%s) gave up: %s", job.kind, job.ref, exc)
                    await complete(self.db, self.engine.queue, self.engine.clock, job)
                    return
                log.warning("alert job %s (%s): %s; again in %.0fs", job.kind, job.ref, exc, delay)
                await put_back(self.db, self.engine.queue, self.engine.clock, job, delay)

        return run

    # -- failures -------------------------------------------------------------------------------
    async def failure(self, job: Job) -> None:
        run_id = job.ref
        event = await self.db.read(lambda tx: _failure_event(tx, run_id))
        if event is None:  # the run or its notice is gone (retention): nothing to say
            await complete(self.db, self.engine.queue, self.engine.clock, job)
            return
        uid = str(event.payload["recipe"]["uid"])
        await self._flush(uid)
        now = self.engine.clock.now()
        message = await self.db.writer.write(lambda tx: self._decide(tx, job, event, now))
        if message is not None:
            await self._send(uid, message, job)

    def _decide(self, tx: Tx, job: Job, event: Event, now: datetime) -> dict[str, Any] | None:
        """Now (the message, written to the outbox) or later (counted; the job completed)."""
        payload = event.payload
        uid, run_id = str(payload["recipe"]["uid"]), str(payload["run"]["id"])
        state = tx.conn.execute(select(STATE).where(STATE.c.recipe_uid == uid)).first()
        if state is not None and state.last_run == run_id:  # decided before a crash: sent
            self.engine.queue.complete(tx, job)
            return None
        quiet = state is None or (
            state.pending == 0
            and (state.last_sent_at is None or now - _aware(state.last_sent_at) >= self.window)
        )
        if quiet:
            key = f"alert:{uid}:{run_id}"
            message = {"key": key, "workspace": event.workspace, **self._first(payload)}
            values = {"last_sent_at": now, "last_run": run_id, "outbox": message}
            _upsert(tx, state, uid, event.workspace, values)
            return message
        assert state is not None
        samples = list(state.samples or [])
        if len(samples) < SAMPLES:
            samples.append(_sample(payload, now))
        values = {"pending": state.pending + 1, "samples": samples}
        if state.digest_due_at is None:
            due = max(now, _aware(state.last_sent_at or now) + self.window)
            values["digest_due_at"] = due
            self.engine.queue.enqueue(tx, [NewJob(ALERT_DIGEST, uid, due, alert_lock(uid))])
        tx.update(STATE, {"recipe_uid": uid}, values)
        self.engine.queue.complete(tx, job)
        return None

    def _first(self, payload: dict[str, Any]) -> dict[str, Any]:
        recipe, step, run = payload["recipe"], payload["step"], payload["run"]
        minutes = int(self.window.total_seconds() // 60)
        text = "\n".join(
            [
                f"The recipe “{recipe['name']}” ({recipe['id']}) failed.",
                "",
                f"Step:  {step['id']} ({step['use']}), after {step['attempts']} attempt(s)",
                f"Error: {payload['error']}",
                f"Event: {payload['event']['type']} {payload['event']['id']}"
                + (f" (store {payload['store']})" if payload.get("store") else ""),
                f"Run:   {run['url']}",
                "",
                f"Further failures of this recipe within {minutes} minutes come in one digest.",
                self._footer(),
            ]
        )
        return {"subject": f"Sous: “{recipe['name']}” failed at step {step['id']}", "text": text}

    def _footer(self) -> str:
        settings = f"{self.engine.links.rstrip('/')}/console/settings"
        return f"These alerts go to the workspace's staff e-mail address; change it in {settings}"

    # -- digests --------------------------------------------------------------------------------
    async def digest(self, job: Job) -> None:
        uid = job.ref
        await self._flush(uid)
        now = self.engine.clock.now()
        message = await self.db.writer.write(lambda tx: self._gather(tx, job, uid, now))
        if message is not None:
            await self._send(uid, message, job)

    def _gather(self, tx: Tx, job: Job, uid: str, now: datetime) -> dict[str, Any] | None:
        state = tx.conn.execute(select(STATE).where(STATE.c.recipe_uid == uid)).first()
        if state is None or state.pending == 0:
            if state is not None:
                tx.update(STATE, {"recipe_uid": uid}, {"digest_due_at": None})
            self.engine.queue.complete(tx, job)
            return None
        key = f"alert:{uid}:digest:{now.isoformat()}"
        message = {"key": key, "workspace": state.workspace_id, **self._digest(state)}
        values = {
            "pending": 0,
            "samples": [],
            "digest_due_at": None,
            "last_sent_at": now,
            "outbox": message,
        }
        tx.update(STATE, {"recipe_uid": uid}, values)
        return message

    def _digest(self, state: Any) -> dict[str, Any]:
        samples: list[dict[str, Any]] = list(state.samples or [])
        name = samples[0]["recipe"] if samples else state.recipe_uid
        lines = [
            f"The recipe “{name}” failed {state.pending} more time(s) since the last alert"
            + (f" ({_when(_aware(state.last_sent_at))})." if state.last_sent_at else "."),
            "",
        ]
        for sample in samples:
            lines.append(f"{sample['at']}  step {sample['step']}: {sample['error']}")
            lines.append(f"    {sample['url']}")
        if state.pending > len(samples):
            lines.append(f"… and {state.pending - len(samples)} more.")
        if samples:
            runs = f"{self.engine.links.rstrip('/')}/console/runs?recipe={samples[0]['id']}"
            lines += ["", f"Every run of this recipe: {runs}"]
        lines += ["", self._footer()]
        subject = f"Sous: “{name}” failed {state.pending} more time(s)"
        return {"subject": subject, "text": "\n".join(lines)}

    # -- notices --------------------------------------------------------------------------------
    async def notice(self, job: Job) -> None:
        event_id = job.ref
        event = await self.db.read(lambda tx: _event(tx, event_id))
        if event is not None:
            recipe = event.payload.get("recipe") or {}
            name, slug = recipe.get("name", "?"), recipe.get("id", "?")
            page = f"{self.engine.links.rstrip('/')}/console/recipes/{slug}"
            text = "\n".join(
                [
                    f"Sous switched the recipe “{name}” ({slug}) off.",
                    "",
                    f"Why: {event.payload.get('reason', '')}",
                    f"Recipe: {page}",
                    "",
                    "It runs again once you enable it (after fixing what made it fail).",
                    self._footer(),
                ]
            )
            message = {"subject": f"Sous switched off “{name}”", "text": text}
            await self._deliver(event.workspace, f"alert:{event.id}", message)
        await complete(self.db, self.engine.queue, self.engine.clock, job)

    # -- sending --------------------------------------------------------------------------------
    async def _flush(self, uid: str) -> None:
        """Send a message a crash left in the recipe's outbox (once: the sent log knows it)."""
        state = await self.db.read(
            lambda tx: tx.conn.execute(select(STATE).where(STATE.c.recipe_uid == uid)).first()
        )
        if state is not None and state.outbox:
            await self._deliver(state.workspace_id, state.outbox["key"], state.outbox)
            await self.db.writer.write(
                lambda tx: tx.update(STATE, {"recipe_uid": uid}, {"outbox": None})
            )

    async def _send(self, uid: str, message: dict[str, Any], job: Job) -> None:
        """Send the message just decided, then empty the outbox and complete the job."""
        await self._deliver(message["workspace"], message["key"], message)

        def write(tx: Tx) -> None:
            tx.update(STATE, {"recipe_uid": uid}, {"outbox": None})
            self.engine.queue.complete(tx, job)

        await self.db.writer.write(write)

    async def _deliver(self, workspace: str, key: str, message: dict[str, Any]) -> None:
        """E-mail ``message`` to the workspace's alert address, once for ``key``. A message
        that can never go (no address, no SMTP server, refused for good) is logged and dropped;
        one that may go later raises (its job runs again)."""
        address = await self.recipients(workspace)
        config = self.engine.services.find(SmtpConfig)
        if not address or config is None:
            why = "no alert address" if not address else "no SMTP server configured"
            log.warning("alert %s of workspace %s not sent: %s", key, workspace, why)
            return
        params = SendParams(to=[address], subject=message["subject"], text=message["text"])
        try:
            await send_logged(
                self.db, config, params, key=key, workspace=workspace, now=self.engine.clock.now()
            )
        except PermanentError as exc:
            log.error("alert %s to %s refused for good: %s", key, address, exc)
            return
        self.sent.append(key)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _sample(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    step = payload["step"]
    return {
        "at": _when(now),
        "recipe": payload["recipe"]["name"],
        "id": payload["recipe"]["id"],
        "step": f"{step['id']} ({step['use']})",
        "error": str(payload["error"])[:300],
        "url": payload["run"]["url"],
    }


def _upsert(tx: Tx, state: Any, uid: str, workspace: str, values: dict[str, Any]) -> None:
    if state is None:
        tx.conn.execute(STATE.insert().values(recipe_uid=uid, workspace_id=workspace, **values))
    else:
        tx.update(STATE, {"recipe_uid": uid}, values)


def _event(tx: Tx, event_id: str) -> Event | None:
    row = tx.conn.execute(select(EVENTS).where(EVENTS.c.id == event_id)).first()
    return None if row is None else event_from_row(row)


def _failure_event(tx: Tx, run_id: str) -> Event | None:
    """The ``sous.run.failed`` event of run ``run_id`` (written with its failure)."""
    workspace = tx.conn.execute(select(RUNS.c.workspace_id).where(RUNS.c.id == run_id)).scalar()
    if workspace is None:
        return None
    row = tx.conn.execute(
        select(EVENTS).where(
            EVENTS.c.workspace_id == workspace, EVENTS.c.dedup_key == f"{RUN_FAILED}:{run_id}"
        )
    ).first()
    return None if row is None else event_from_row(row)
