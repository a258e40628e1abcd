"""Inbound hooks: signed webhooks from any system start recipes (Standard Webhooks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.http.signing import SignatureError, new_secret, sign, verify
from engine import Engine
from engine.clock import ManualClock
from tests.api.conftest import KeyFactory, error_of, recipe
from tests.fakes import Recorder

Client = httpx.AsyncClient
Headers = dict[str, str]

# The example of the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIME = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_headers(signature: str = SPEC_SIGNATURE) -> dict[str, str]:
    stamp = str(SPEC_TIME)
    return {"webhook-id": SPEC_ID, "webhook-timestamp": stamp, "webhook-signature": signature}


def test_the_specifications_example_signs_and_verifies() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIME, SPEC_BODY) == SPEC_SIGNATURE
    at = datetime.fromtimestamp(SPEC_TIME + 60, UTC)
    assert verify(SPEC_SECRET, spec_headers(), SPEC_BODY, at) == SPEC_ID
    rotating = spec_headers(f"v1,bm90IHRoaXMgb25l {SPEC_SIGNATURE}")  # old and new secret
    assert verify(SPEC_SECRET, rotating, SPEC_BODY, at) == SPEC_ID


@pytest.mark.parametrize(
    ("headers", "body", "seconds_later", "reason"),
    [
        (spec_headers(), b'{"test": 2432232315}', 0, "does not match"),
        (spec_headers(), SPEC_BODY, 301, "more than 300 s away"),
        (spec_headers(), SPEC_BODY, -301, "more than 300 s away"),
        ({"webhook-id": SPEC_ID}, SPEC_BODY, 0, "Standard Webhooks"),
        ({**spec_headers(), "webhook-timestamp": "soon"}, SPEC_BODY, 0, "Unix seconds"),
    ],
)
def test_a_bad_message_is_refused_with_its_reason(
    headers: dict[str, str], body: bytes, seconds_later: int, reason: str
) -> None:
    at = datetime.fromtimestamp(SPEC_TIME + seconds_later, UTC)
    with pytest.raises(SignatureError, match=reason):
        verify(SPEC_SECRET, headers, body, at)


def test_new_secrets_differ_and_carry_the_prefix() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second


def signed(secret: str, clock: ManualClock, msg_id: str, data: Any) -> tuple[bytes, Headers]:
    body = json.dumps(data).encode()
    stamp = int(clock.now().timestamp())
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, msg_id, stamp, body),
        "content-type": "application/json",
    }


async def test_a_signed_webhook_runs_the_hooks_recipes_once(
    client: Client, admin: Headers, engine: Engine, recorder: Recorder, clock: ManualClock
) -> None:
    made = await client.post("/v1/hooks", json={"name": "warehouse"}, headers=admin)
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"].startswith("whsec_") and hook["url"].endswith("/events")
    listed = (await client.get("/v1/hooks", headers=admin)).json()["data"]
    assert [h["name"] for h in listed] == ["warehouse"] and "secret" not in listed[0]
    steps = [{"use": "test.record", "with": {"message": "{{ body.sku }} late: {{ hook }}"}}]
    for name, hook_name in (("from-warehouse", "warehouse"), ("from-erp", "erp")):
        trigger = {"type": "http.webhook", "with": {"hook": hook_name}}
        created = await client.post(
            "/v1/recipes",
            json=recipe(id=name, trigger=trigger, conditions=[], actions=steps),
            headers=admin,
        )
        assert created.status_code == 201, created.text
    body, headers = signed(hook["secret"], clock, "msg_1", {"sku": "SUN-CATEYE"})
    sent = await client.post(hook["url"], content=body, headers=headers)  # no API key
    assert sent.status_code == 202, sent.text
    assert sent.json()["duplicate"] is False and len(sent.json()["runs"]) == 1
    again = await client.post(hook["url"], content=body, headers=headers)  # a sender's retry
    assert again.json() == {"event_id": sent.json()["event_id"], "duplicate": True, "runs": []}
    await engine.drain()
    assert [c["message"] for c in recorder.named("test.record")] == ["SUN-CATEYE late: warehouse"]
    event = (await client.get(f"/v1/events/{sent.json()['event_id']}", headers=admin)).json()
    assert event["type"] == "http.webhook"
    assert event["payload"] == {
        "hook": "warehouse",
        "webhook_id": "msg_1",
        "body": {"sku": "SUN-CATEYE"},
    }


async def test_unsigned_forged_and_malformed_messages_store_nothing(
    client: Client, admin: Headers, clock: ManualClock
) -> None:
    hook = (await client.post("/v1/hooks", json={"name": "erp"}, headers=admin)).json()
    body, headers = signed(hook["secret"], clock, "msg_2", {"order": 7})
    forged = {**headers, "webhook-signature": sign(new_secret(), "msg_2", 0, body)}
    for bad in ({"content-type": "application/json"}, forged):
        refused = await client.post(hook["url"], content=body, headers=bad)
        assert refused.status_code == 401
        assert error_of(refused)["message"]
    text, text_headers = b"not json", signed(hook["secret"], clock, "msg_3", None)[1]
    text_headers["webhook-signature"] = sign(
        hook["secret"], "msg_3", int(text_headers["webhook-timestamp"]), text
    )
    malformed = await client.post(hook["url"], content=text, headers=text_headers)
    assert malformed.status_code == 400
    assert "not JSON" in error_of(malformed)["message"]
    listed, list_headers = signed(hook["secret"], clock, "msg_5", [1, 2])
    assert (await client.post(hook["url"], content=listed, headers=list_headers)).status_code == 400
    assert (await client.get("/v1/events", headers=admin)).json()["data"] == []


async def test_a_deleted_hook_stops_accepting_and_its_name_is_free_again(
    client: Client, admin: Headers, make_key: KeyFactory, clock: ManualClock
) -> None:
    hook = (await client.post("/v1/hooks", json={"name": "erp"}, headers=admin)).json()
    taken = await client.post("/v1/hooks", json={"name": "erp"}, headers=admin)
    assert taken.status_code == 409
    reader = make_key("default", "read")
    assert (await client.post("/v1/hooks", json={"name": "x"}, headers=reader)).status_code == 403
    assert (await client.delete(f"/v1/hooks/{hook['id']}", headers=admin)).status_code == 204
    body, headers = signed(hook["secret"], clock, "msg_4", {})
    assert (await client.post(hook["url"], content=body, headers=headers)).status_code == 404
    again = await client.post("/v1/hooks", json={"name": "erp"}, headers=admin)
    assert again.status_code == 201 and again.json()["secret"] != hook["secret"]
