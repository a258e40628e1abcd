"""The expected ship date (ETA) of backordered units, and the messages that show it.

The ETA comes, in this order, from:

1. ``back_in_stock_date``: the merchant knows when stock arrives; that day is the ETA.
2. ``incoming_quantity`` (stock is on its way, no date known): the day the assignment was made
   or last changed plus ``lead_time_days`` (per assignment, else the global setting).
3. nothing: no ETA; the message must then not promise a date.

When ``incoming_quantity`` is given, only that many units are *covered* by the coming stock:
units ordered beyond it are recorded as not covered and carry no ETA in ``backorder.ordered``.

Messages may contain BigCommerce's ``%%DATE%%`` placeholder: the store replaces it with
``preorder_release_date`` on the storefront, and :func:`render` replaces it for e-mails and
event payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

PLACEHOLDER = "%%DATE%%"


@dataclass(frozen=True)
class Eta:
    day: date | None
    source: str
    """``back_in_stock_date``, ``incoming_stock`` or ``none``."""


def compute(
    *,
    today: date,
    back_in_stock_date: date | None,
    incoming_quantity: int | None,
    lead_time_days: int,
) -> Eta:
    if back_in_stock_date is not None:
        return Eta(back_in_stock_date, "back_in_stock_date")
    if incoming_quantity:
        return Eta(today + timedelta(days=lead_time_days), "incoming_stock")
    return Eta(None, "none")


def format_day(day: date, fmt: str) -> str:
    return day.strftime(fmt)


def render(message: str, day: date | None, fmt: str) -> str:
    """``message`` as a shopper reads it: ``%%DATE%%`` replaced by the formatted ETA."""
    if day is None:
        return message
    return message.replace(PLACEHOLDER, format_day(day, fmt))


def release_datetime(day: date | None) -> str | None:
    """The ``preorder_release_date`` BigCommerce wants (ISO 8601 date-time, UTC midnight)."""
    if day is None:
        return None
    return datetime.combine(day, time(0, 0), tzinfo=UTC).isoformat()


def message_for(message: str, day: date | None, dated: str, undated: str) -> str:
    """The message to show: the given one, else the default for a dated or undated backorder."""
    if message:
        return message
    return dated if day is not None else undated


def check(message: str, day: date | None) -> str | None:
    """Why ``message`` cannot be used with this ETA, or None."""
    if PLACEHOLDER in message and day is None:
        return (
            "the message uses %%DATE%% but there is no date: give back_in_stock_date or "
            "incoming_quantity"
        )
    return None
