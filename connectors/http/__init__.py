"""HTTP: call an outside API from a recipe (``http.request``), through the outbound guard, and
start recipes from signed webhooks of any system (``http.webhook``, :mod:`connectors.http.inbound`).

- ``http.request``: method, url, headers, query, a json, form or raw body, timeout, ``expect``
  (acceptable statuses, default 2xx), ``max_response_bytes``. Returns the status, headers, the
  parsed JSON (when the response is JSON), the text (cut short), and the time it took.
- :mod:`connectors.http.guard`: which addresses may be reached (no loopback, private networks
  or cloud metadata unless the settings allow them), checked at connect time.

The composition root calls :func:`services_from_settings` to register the
:class:`OutboundPolicy` built from the ``outbound_*`` settings.
"""

from __future__ import annotations

from connectors.http.guard import OutboundPolicy, OutboundRefused, OutboundSettings
from connectors.http.inbound import TRIGGER as WEBHOOK_TRIGGER
from connectors.http.request import RequestOutput, RequestParams, http_request
from engine import ActionSpec, Connector, Database, Services


def services_from_settings(settings: OutboundSettings, services: Services, db: Database) -> None:
    """Register the :class:`OutboundPolicy` for ``http.request`` (``db`` is not needed here;
    the signature matches :func:`connectors.email.services_from_settings`)."""
    services.add(OutboundPolicy.from_settings(settings), OutboundPolicy)


CONNECTOR = Connector(
    name="http",
    description="Call outside HTTP APIs; receive signed webhooks",
    triggers=(WEBHOOK_TRIGGER,),
    actions=(
        ActionSpec(
            name="http.request",
            description="Send an HTTP request; returns status, headers, JSON and text",
            params=RequestParams,
            output=RequestOutput,
            handler=http_request,
            writes="whatever the called endpoint does with the request (POST, PUT, PATCH, DELETE)",
            is_write=lambda params: params.method not in ("GET", "HEAD", "OPTIONS"),
            timeout=310,
        ),
    ),
)

__all__ = [
    "CONNECTOR",
    "OutboundPolicy",
    "OutboundRefused",
    "RequestOutput",
    "RequestParams",
    "services_from_settings",
]
