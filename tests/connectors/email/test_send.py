"""email.send against a real SMTP server (the in-memory sink): what arrives, and what fails how."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import select

from connectors.email import SendParams, SmtpConfig, send
from connectors.email.message import message_id_for
from connectors.email.models import EmailSentRow
from connectors.email.sink import SmtpSink
from engine.clock import ManualClock
from engine.context import Services
from engine.errors import PermanentError, RetryableError
from engine.store.db import Database
from engine.store.usage import UsageRow, metering, usage_key
from engine.store.vault import Cipher, Vault
from tests.connectors.email.conftest import (
    DEFERRED,
    REFUSED,
    MakeContext,
    self_signed_cert,
    server_tls,
)

CSV = "sku,backordered,oldest\nCAT-EYE-01,12,2026-11-02\nAVIATOR-7,3,2026-11-20\n"


def params(**fields: object) -> SendParams:
    base: dict[str, object] = {
        "to": "staff@shop.example",
        "subject": "Backorders",
        "text": "See attached.",
    }
    return SendParams.model_validate(base | fields)


async def test_text_html_and_csv_attachment_arrive(sink: SmtpSink, make_ctx: MakeContext) -> None:
    ctx = make_ctx()
    out = await send.send_email(
        ctx,
        params(
            to="Staff Room <staff@shop.example>",
            reply_to="ops@shop.example",
            subject="Backorder report:\n3 products",
            text="Plain body",
            html="<p>HTML <b>body</b></p>",
            attachments=[{"filename": "backlog.csv", "content_type": "text/csv", "content": CSV}],
        ),
    )
    [msg] = await sink.wait_for(1)
    assert out.message_id == message_id_for("run_1:mail") == msg.message_id
    assert out.accepted == ["staff@shop.example"]
    assert out.refused == {}
    assert not out.already_sent
    assert msg.mail_from == "sous@shop.example"
    assert msg.sender == "Sous <sous@shop.example>"
    assert msg.to == ["Staff Room <staff@shop.example>"]
    assert msg.reply_to == ["ops@shop.example"]
    assert msg.subject == "Backorder report: 3 products"
    assert msg.text is not None
    assert msg.text.strip() == "Plain body"
    assert msg.html is not None
    assert "<b>body</b>" in msg.html
    [attachment] = msg.attachments
    assert (attachment.filename, attachment.content_type) == ("backlog.csv", "text/csv")
    assert attachment.data.decode().replace("\r\n", "\n") == CSV
    shown = msg.to_dict()
    assert shown["attachments"][0]["content"].replace("\r\n", "\n") == CSV
    assert shown["received_at"] == "2026-11-27T09:00:00+00:00"  # the sink's clock


async def test_binary_attachment_from_base64(sink: SmtpSink, make_ctx: MakeContext) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00binary"
    encoded = base64.b64encode(png).decode()
    attachment = {
        "filename": "label.png",
        "content_type": "image/png",
        "content": encoded,
        "base64": True,
    }
    await send.send_email(make_ctx(), params(attachments=[attachment]))
    [msg] = await sink.wait_for(1)
    assert msg.attachments[0].data == png
    assert msg.to_dict()["attachments"][0] == {
        "filename": "label.png",
        "content_type": "image/png",
        "size": len(png),
        "content": encoded,
        "base64": True,
    }


async def test_cc_and_bcc_are_delivered_and_bcc_stays_hidden(
    sink: SmtpSink, make_ctx: MakeContext
) -> None:
    out = await send.send_email(
        make_ctx(),
        params(
            to=["a@shop.example"],
            cc="b@shop.example, C <c@shop.example>",
            bcc=["hidden@shop.example"],
        ),
    )
    [msg] = await sink.wait_for(1)
    assert msg.rcpt_tos == [
        "a@shop.example",
        "b@shop.example",
        "c@shop.example",
        "hidden@shop.example",
    ]
    assert out.accepted == msg.rcpt_tos
    assert msg.cc == ["b@shop.example", "C <c@shop.example>"]
    assert b"hidden@shop.example" not in msg.raw
    assert b"Bcc" not in msg.raw


async def test_partly_refused_recipients_are_listed(sink: SmtpSink, make_ctx: MakeContext) -> None:
    out = await send.send_email(make_ctx(), params(to=["staff@shop.example", REFUSED]))
    [msg] = await sink.wait_for(1)
    assert msg.rcpt_tos == ["staff@shop.example"]
    assert out.accepted == ["staff@shop.example"]
    assert list(out.refused) == [REFUSED]
    assert out.refused[REFUSED].startswith("550 ")


async def test_every_recipient_refused_is_permanent(sink: SmtpSink, make_ctx: MakeContext) -> None:
    with pytest.raises(PermanentError, match=f"every recipient was refused: {REFUSED} \\(550"):
        await send.send_email(make_ctx(), params(to=REFUSED))
    assert sink.messages == []


async def test_recipients_deferred_with_4xx_is_retryable(
    sink: SmtpSink, make_ctx: MakeContext
) -> None:
    with pytest.raises(RetryableError, match="451"):
        await send.send_email(make_ctx(), params(to=DEFERRED))


async def test_server_down_is_retryable(
    make_ctx: MakeContext, services: Services, smtp: SmtpConfig
) -> None:
    stopped = SmtpSink()
    await stopped.start()
    port = stopped.port
    await stopped.stop()  # nothing listens on that port now
    services.add(replace(smtp, port=port), SmtpConfig)
    with pytest.raises(RetryableError, match="cannot reach SMTP server"):
        await send.send_email(make_ctx(), params())


async def test_same_idempotency_key_sends_once(
    sink: SmtpSink, make_ctx: MakeContext, db: Database
) -> None:
    first = await send.send_email(make_ctx(), params())
    again = await send.send_email(make_ctx(), params(subject="changed on replay"))
    other_step = await send.send_email(make_ctx(step_id="mail2"), params())
    messages = await sink.wait_for(2)
    assert len(messages) == 2
    assert [m.subject for m in messages] == ["Backorders", "Backorders"]
    assert again.already_sent
    assert again.message_id == first.message_id
    assert again.accepted == first.accepted
    assert other_step.message_id != first.message_id
    with db.session() as s:
        rows = s.exec(select(EmailSentRow).order_by(EmailSentRow.idempotency_key)).all()
    assert [(r.idempotency_key, r.workspace_id, r.accepted) for r in rows] == [
        ("run_1:mail", "default", ["staff@shop.example"]),
        ("run_1:mail2", "default", ["staff@shop.example"]),
    ]


async def test_caller_giving_up_mid_delivery_still_records(
    sink: SmtpSink, make_ctx: MakeContext
) -> None:
    """A step timeout cancels the handler; the delivery and its sent-log row still complete,
    so the retry does not send a second copy."""
    sink.gate = asyncio.Event()
    task = asyncio.create_task(send.send_email(make_ctx(), params()))
    await asyncio.wait_for(sink.at_gate.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sink.gate.set()
    await sink.wait_for(1)
    await asyncio.wait_for(asyncio.gather(*send._in_flight), 5)
    retried = await send.send_email(make_ctx(), params())
    assert retried.already_sent
    assert len(sink.messages) == 1


async def test_starttls_with_login(
    tmp_path: Path, clock: ManualClock, make_ctx: MakeContext, services: Services, smtp: SmtpConfig
) -> None:
    cert, key = self_signed_cert(tmp_path)
    async with SmtpSink(
        tls_context=server_tls(cert, key),
        require_starttls=True,
        login=("mailer", "pw-1234"),
        clock=clock,
    ) as tls_sink:
        config = replace(
            smtp,
            port=tls_sink.port,
            tls="starttls",
            ca_file=str(cert),
            username="mailer",
            password="pw-1234",
        )
        services.add(config, SmtpConfig)
        await send.send_email(make_ctx(), params())
        [msg] = await tls_sink.wait_for(1)
        assert msg.subject == "Backorders"
        assert tls_sink.logins == ["mailer"]
        # wrong password: refused with 535, which is permanent
        services.add(replace(config, password="wrong"), SmtpConfig)
        with pytest.raises(PermanentError, match="refused the login: 535"):
            await send.send_email(make_ctx(step_id="other"), params())
        # a server certificate nobody vouched for is a permanent failure
        services.add(replace(config, ca_file=None), SmtpConfig)
        with pytest.raises(PermanentError, match="TLS with SMTP server"):
            await send.send_email(make_ctx(step_id="third"), params())
    assert len(tls_sink.messages) == 1


async def test_password_from_the_vault_is_recorded_for_masking(
    tmp_path: Path,
    clock: ManualClock,
    db: Database,
    make_ctx: MakeContext,
    services: Services,
    smtp: SmtpConfig,
) -> None:
    cert, key = self_signed_cert(tmp_path)
    vault = Vault(db, Cipher("test-key"), clock)
    vault.put("default", "SMTP_PASSWORD", "vault-pw-5678")
    services.add(vault, Vault)
    async with SmtpSink(
        tls_context=server_tls(cert, key), login=("mailer", "vault-pw-5678"), clock=clock
    ) as tls_sink:
        services.add(
            replace(
                smtp,
                port=tls_sink.port,
                tls="starttls",
                ca_file=str(cert),
                username="mailer",
                password_secret="SMTP_PASSWORD",
            ),
            SmtpConfig,
        )
        ctx = make_ctx()
        await send.send_email(ctx, params())
        await tls_sink.wait_for(1)
    assert ctx.secrets == {"SMTP_PASSWORD": "vault-pw-5678"}
    vault.delete("default", "SMTP_PASSWORD")
    with pytest.raises(PermanentError, match="no secret named 'SMTP_PASSWORD'"):
        await send.send_email(make_ctx(step_id="again"), params())


async def test_usage_counts_each_message_the_server_took_once(
    sink: SmtpSink, make_ctx: MakeContext, db: Database, services: Services, smtp: SmtpConfig
) -> None:
    """An e-mail is counted when the SMTP server takes it: not when it was sent before (the
    same step tried again), not when every recipient was refused or the server is down."""
    key = usage_key("default", "2026-12-01T10:00:00", "s1", "rcp_1")
    with metering(db.usage, key):
        await send.send_email(make_ctx(), params())
        await send.send_email(make_ctx(), params())  # already sent: nothing goes out
        with pytest.raises(PermanentError):
            await send.send_email(make_ctx(step_id="refused"), params(to=REFUSED))
        stopped = SmtpSink()
        await stopped.start()
        port = stopped.port
        await stopped.stop()
        services.add(replace(smtp, port=port), SmtpConfig)
        with pytest.raises(RetryableError):
            await send.send_email(make_ctx(step_id="down"), params())
    await sink.wait_for(1)
    await db.writer.write(lambda tx: None)  # counts go with the engine's next commit
    with db.read_session() as session:
        rows = session.exec(select(UsageRow)).all()
    assert [(r.workspace_id, r.store, r.recipe, r.emails) for r in rows] == [
        ("default", "s1", "rcp_1", 1)
    ]
