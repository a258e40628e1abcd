"""email.send parameters, error classification and wiring, without a server."""

from __future__ import annotations

import pytest
from aiosmtplib import (
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)
from pydantic import SecretStr, ValidationError

from connectors.email import SendParams, SmtpConfig, services_from_settings
from connectors.email.message import message_id_for, parse_addresses
from connectors.email.send import classify
from engine.context import Services
from engine.errors import PermanentError, RetryableError
from engine.store.db import Database
from sous.settings import Settings


def test_addresses_accept_one_a_list_or_a_comma_separated_string() -> None:
    assert parse_addresses("a@shop.example") == ["a@shop.example"]
    assert parse_addresses(["a@shop.example", "B <b@shop.example>"]) == [
        "a@shop.example",
        "B <b@shop.example>",
    ]
    assert parse_addresses('"Doe, Jane" <jane@shop.example>, x@shop.example') == [
        '"Doe, Jane" <jane@shop.example>',
        "x@shop.example",
    ]
    assert parse_addresses("") == []
    assert parse_addresses(None) == []
    assert parse_addresses("ops@localhost") == ["ops@localhost"]


@pytest.mark.parametrize(
    "bad",
    [
        "not-an-address",
        "a@",
        "@shop.example",
        "a b@shop.example",
        "a@shop.example\nBcc: x@evil.example",
        "a@-bad-.example",
    ],
)
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        SendParams.model_validate({"to": bad, "subject": "s", "text": "t"})


def test_params_need_a_recipient_and_a_body() -> None:
    with pytest.raises(ValidationError, match="at least one recipient"):
        SendParams.model_validate({"to": "", "subject": "s", "text": "t"})
    with pytest.raises(ValidationError, match="text or an html body"):
        SendParams.model_validate({"to": "a@shop.example", "subject": "s"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SendParams.model_validate(
            {"to": "a@shop.example", "subject": "s", "text": "t", "from": "x@y.z"}
        )


def test_attachments_are_checked() -> None:
    base = {"to": "a@shop.example", "subject": "s", "text": "t"}
    with pytest.raises(ValidationError, match="not valid base64"):
        SendParams.model_validate(
            base | {"attachments": [{"filename": "a.bin", "content": "%%%", "base64": True}]}
        )
    with pytest.raises(ValidationError, match="path separators"):
        SendParams.model_validate(
            base | {"attachments": [{"filename": "../etc/passwd", "content": "x"}]}
        )
    with pytest.raises(ValidationError, match="content_type"):
        SendParams.model_validate(
            base | {"attachments": [{"filename": "a", "content": "x", "content_type": "csv"}]}
        )


def test_envelope_lists_each_address_once() -> None:
    p = SendParams.model_validate(
        {
            "to": "A <a@shop.example>",
            "cc": "a@shop.example",
            "bcc": ["b@shop.example"],
            "subject": "s",
            "text": "t",
        }
    )
    assert p.envelope_recipients() == ["a@shop.example", "b@shop.example"]


def test_message_id_is_stable_per_key() -> None:
    assert message_id_for("run_1:mail") == message_id_for("run_1:mail")
    assert message_id_for("run_1:mail") != message_id_for("run_1:other")
    assert message_id_for("k").endswith("@sous>")
    assert len(message_id_for("k")) == len("<@sous>") + 32


def test_smtp_replies_are_classified() -> None:
    where = "smtp.example:587"
    assert isinstance(classify(SMTPResponseException(421, "closing"), where), RetryableError)
    assert isinstance(classify(SMTPResponseException(554, "no"), where), PermanentError)
    refused = classify(SMTPSenderRefused(553, "not yours", "sous@shop.example"), where)
    assert isinstance(refused, PermanentError)
    assert "sender sous@shop.example" in str(refused)
    mixed = SMTPRecipientsRefused(
        [
            SMTPRecipientRefused(550, "no", "a@x.example"),
            SMTPRecipientRefused(452, "full", "b@x.example"),
        ]
    )
    assert isinstance(classify(mixed, where), RetryableError)
    assert isinstance(classify(ConnectionRefusedError(111, "refused"), where), RetryableError)
    assert isinstance(classify(TimeoutError(), where), RetryableError)


def test_services_from_settings(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        services = Services()
        settings = Settings(
            smtp_host="smtp.shop.example",
            smtp_port=587,
            smtp_tls="starttls",
            smtp_username="mailer",
            smtp_from="Shop <shop@shop.example>",
        )
        services_from_settings(settings, services, db)
        config = services.get(SmtpConfig)
        assert (config.host, config.port, config.tls, config.username) == (
            "smtp.shop.example",
            587,
            "starttls",
            "mailer",
        )
        assert config.sender_address == "shop@shop.example"
        assert config.password is None
        assert config.password_secret == "SMTP_PASSWORD"
        assert services.get(Database) is db
        with_password = Settings(smtp_username="mailer", smtp_password=SecretStr("pw"))
        config = SmtpConfig.from_settings(with_password)
        assert config.password == "pw"
        assert config.password_secret is None
        assert "pw" not in repr(config)
    finally:
        db.dispose()
