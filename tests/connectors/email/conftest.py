"""Fixtures for the email connector: a running SMTP sink, SMTP settings pointing at it, the
sent-log table, and an action context for calling ``email.send`` directly."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import SQLModel

import connectors.email.models  # noqa: F401  (registers the email_sent table)
from connectors.email import SmtpConfig
from connectors.email.sink import SmtpSink
from engine.clock import ManualClock
from engine.context import ActionContext, Services
from engine.model.events import Event, NewEvent
from engine.store.db import Database

REFUSED = "nobody@shop.example"
DEFERRED = "busy@shop.example"


@pytest.fixture
def db(db: Database) -> Database:
    SQLModel.metadata.create_all(db.engine)
    return db


@pytest.fixture
async def sink(clock: ManualClock) -> AsyncIterator[SmtpSink]:
    async with SmtpSink(refuse=[REFUSED], defer=[DEFERRED], clock=clock) as running:
        yield running


@pytest.fixture
def smtp(sink: SmtpSink) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=sink.port,
        sender="Sous <sous@shop.example>",
        local_hostname="sous.test",
        timeout=5,
    )


@pytest.fixture
def services(db: Database, smtp: SmtpConfig) -> Services:
    found = Services()
    found.add(db, Database)
    found.add(smtp, SmtpConfig)
    return found


MakeContext = Callable[..., ActionContext]


@pytest.fixture
def make_ctx(services: Services, clock: ManualClock) -> MakeContext:
    def make(
        step_id: str = "mail", run_id: str = "run_1", services_: Services | None = None
    ) -> ActionContext:
        async def emit(event: NewEvent) -> None:
            raise AssertionError("email.send emits nothing")

        now = clock.now()
        event = Event("evt_1", "test.stock", {}, "default", None, "api", "k", now, now)
        return ActionContext(
            run_id=run_id,
            step_id=step_id,
            recipe_uid="rcp_1",
            workspace="default",
            store=None,
            event=event,
            clock=clock,
            services=services_ or services,
            emit=emit,
        )

    return make


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 that is its own CA; returns (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
