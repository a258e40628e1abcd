"""SMTP settings for ``email.send``, as a service the composition root registers.

:func:`services_from_settings` builds an :class:`SmtpConfig` from the settings
(:class:`SmtpSettings`).
The SMTP password comes from ``SOUS_SMTP_PASSWORD`` when it is set; when a username is set
without a password, the password is read at send time from the sending workspace's vault
under the name in ``password_secret`` (``SMTP_PASSWORD`` by default), and the runner masks it
in the step's trace like any other secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Literal, Protocol

from pydantic import SecretStr

from engine import Database, Services

TlsMode = Literal["none", "starttls", "tls"]


class SmtpSettings(Protocol):
    """The settings ``email.send`` reads (``SOUS_SMTP_HOST``, ``_PORT``, ``_USERNAME``,
    ``_PASSWORD``, ``_TLS``, ``_FROM``)."""

    @property
    def smtp_host(self) -> str: ...
    @property
    def smtp_port(self) -> int: ...
    @property
    def smtp_username(self) -> str | None: ...
    @property
    def smtp_password(self) -> SecretStr | None: ...
    @property
    def smtp_tls(self) -> str: ...
    @property
    def smtp_from(self) -> str: ...


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how ``email.send`` delivers.

    ``tls``: ``none`` (plain, for a local relay or the sink), ``starttls`` (upgrade required,
    port 587) or ``tls`` (implicit TLS, port 465). ``ca_file`` adds a private CA to the system's
    trusted certificates. ``local_hostname`` is the name sent in EHLO (the machine's FQDN when
    ``None``).
    """

    host: str = "127.0.0.1"
    port: int = 1025
    sender: str = "sous@localhost"
    tls: TlsMode = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_secret: str | None = None
    timeout: float = 30.0
    local_hostname: str | None = None
    ca_file: str | None = None
    validate_certs: bool = True

    def __post_init__(self) -> None:
        if self.tls not in ("none", "starttls", "tls"):
            raise ValueError(f"smtp tls must be none, starttls or tls, not {self.tls!r}")
        if not parseaddr(self.sender)[1]:
            raise ValueError(f"smtp sender {self.sender!r} is not an email address")

    @property
    def sender_address(self) -> str:
        """The bare address of ``sender`` (for the envelope's MAIL FROM)."""
        return parseaddr(self.sender)[1]

    @classmethod
    def from_settings(cls, settings: SmtpSettings) -> SmtpConfig:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        tls: TlsMode = "none"
        if settings.smtp_tls == "starttls":
            tls = "starttls"
        elif settings.smtp_tls == "tls":
            tls = "tls"
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            tls=tls,
            username=settings.smtp_username or None,
            password=password,
            password_secret="SMTP_PASSWORD"
            if settings.smtp_username and password is None
            else None,
        )


def services_from_settings(settings: SmtpSettings, services: Services, db: Database) -> None:
    """Register what ``email.send`` needs: the :class:`SmtpConfig`, and the database (for the
    sent log) unless one is registered already."""
    services.add(SmtpConfig.from_settings(settings), SmtpConfig)
    if services.find(Database) is None:
        services.add(db, Database)
