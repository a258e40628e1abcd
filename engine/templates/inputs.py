"""Typed template inputs: what a merchant fills in to turn a template into a recipe.

Each input has a type, a label and description for forms, constraints, and an optional
default (an input without a default is required). Values are checked and normalised by
:func:`coerce` — strings from a command line (``"50"``, ``"yes"``, ``"a@x.com,b@x.com"``) are
accepted where the type allows — and every input is published as a JSON Schema (draft 2020-12)
property, with store-aware pickers marked ``"x-sous-picker": "product"`` so a front end can
render a product chooser instead of a number field.

Input values are data, never code: a text value may not contain template delimiters
(``{{``, ``{%``, ``{#``, ``[[``), so a form field cannot reach into run-time templates.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.model.durations import parse_duration

INPUT_NAME = r"^[a-z][a-z0-9_]{0,39}$"
_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"']+$")
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"
_DELIMITERS = ("{{", "{%", "{#", "[[", "]]")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
MAX_TEXT = 10_000
MAX_ITEMS = 100


class InputType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    EMAIL = "email"
    EMAILS = "emails"
    URL = "url"
    DURATION = "duration"
    TIME_OF_DAY = "time_of_day"
    CHOICE = "choice"
    PRODUCT = "product"
    VARIANT = "variant"
    CATEGORY = "category"
    CUSTOMER_GROUP = "customer_group"
    ORDER_STATUS = "order_status"


PICKERS = frozenset(
    {
        InputType.PRODUCT,
        InputType.VARIANT,
        InputType.CATEGORY,
        InputType.CUSTOMER_GROUP,
        InputType.ORDER_STATUS,
    }
)
"""Store-aware inputs: the value is a BigCommerce id, chosen from the store in a form."""

PICKER_MIN = {InputType.CUSTOMER_GROUP: 0, InputType.ORDER_STATUS: 0}
PICKER_MAX = {InputType.ORDER_STATUS: 14}

ATTRIBUTES: dict[InputType, frozenset[str]] = {
    InputType.TIME_OF_DAY: frozenset({"hour", "minute"}),
    InputType.DURATION: frozenset({"seconds", "minutes", "hours", "days"}),
}
"""Parts of a value a placeholder may read: ``[[ inputs.send_at.hour ]]``."""


class InputError(ValueError):
    """A value does not fit its input; the message reads after the input's name."""


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str | int | float | bool
    label: str | None = None


class InputSpec(BaseModel):
    """One input of a template. ``name`` is filled from the key it is declared under."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", pattern=r"^$|" + INPUT_NAME)
    type: InputType
    label: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    default: Any = None
    example: Any = None
    min: int | float | None = Field(default=None, description="number and integer")
    max: int | float | None = Field(default=None, description="number and integer")
    min_length: int | None = Field(default=None, ge=0, description="string")
    max_length: int | None = Field(default=None, ge=1, le=MAX_TEXT, description="string")
    options: list[Option] | None = Field(default=None, description="choice")
    multiple: bool = Field(default=False, description="choice and pickers: a list of values")

    @model_validator(mode="before")
    @classmethod
    def _options_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("options"), list):
            data = dict(data)
            data["options"] = [o if isinstance(o, dict) else {"value": o} for o in data["options"]]
        return data

    @model_validator(mode="after")
    def _consistent(self) -> InputSpec:
        numeric = self.type in (InputType.NUMBER, InputType.INTEGER)
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError("min and max apply to number and integer inputs only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        if self.type != InputType.STRING and (
            self.min_length is not None or self.max_length is not None
        ):
            raise ValueError("min_length and max_length apply to string inputs only")
        if (self.type == InputType.CHOICE) != (self.options is not None):
            raise ValueError("a choice input needs options, and only a choice input has them")
        if self.options is not None:
            values = [o.value for o in self.options]
            if not values or len(set(map(repr, values))) != len(values):
                raise ValueError("options must be a non-empty list of different values")
        if self.multiple and self.type not in PICKERS | {InputType.CHOICE}:
            raise ValueError("multiple applies to choice and picker inputs only")
        if not self.label:
            self.label = self.name.replace("_", " ").capitalize()
        return self

    @property
    def required(self) -> bool:
        """An input without a default must be given."""
        return self.default is None

    def check_defaults(self) -> list[tuple[str, str]]:
        """Problems with the declared default and example, as ``(field, message)``."""
        problems = []
        for field in ("default", "example"):
            value = getattr(self, field)
            if value is None:
                continue
            try:
                coerce(self, value)
            except InputError as exc:
                problems.append((field, str(exc)))
        return problems

    def sample(self) -> Any:
        """A valid value for checks and tests: the default, else the example, else a stand-in."""
        for value in (self.default, self.example):
            if value is not None:
                return coerce(self, value)
        return coerce(self, _stand_in(self))


def _stand_in(spec: InputSpec) -> Any:
    if spec.type in (InputType.NUMBER, InputType.INTEGER):
        low = (
            spec.min
            if spec.min is not None
            else (spec.max if spec.max is not None and spec.max < 1 else 1)
        )
        return math.ceil(low) if spec.type == InputType.INTEGER else low
    if spec.type == InputType.STRING:
        return "x" * max(spec.min_length or 0, 4)
    if spec.type == InputType.CHOICE and spec.options:
        first = spec.options[0].value
        return [first] if spec.multiple else first
    if spec.type in PICKERS:
        value = 11 if spec.type == InputType.ORDER_STATUS else 1
        return [value] if spec.multiple else value
    stand_ins: dict[InputType, Any] = {
        InputType.BOOLEAN: True,
        InputType.EMAIL: "staff@example.com",
        InputType.EMAILS: ["staff@example.com"],
        InputType.URL: "https://example.com/hook",
        InputType.DURATION: "1d",
        InputType.TIME_OF_DAY: "08:00",
    }
    return stand_ins[spec.type]


def _number(spec: InputSpec, value: Any) -> int | float:
    if isinstance(value, bool):
        raise InputError(f"must be a {spec.type.value}, not true/false")
    if isinstance(value, str):
        try:
            value = float(value.strip()) if spec.type == InputType.NUMBER else int(value.strip())
        except ValueError:
            raise InputError(f"must be a {spec.type.value}, not {value!r}") from None
    if not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise InputError(f"must be a {spec.type.value}")
    number: int | float = value
    if spec.type == InputType.INTEGER:
        if isinstance(number, float) and not number.is_integer():
            raise InputError("must be a whole number")
        number = int(number)
    if spec.min is not None and number < spec.min:
        raise InputError(f"must be ≥ {_show(spec.min)}")
    if spec.max is not None and number > spec.max:
        raise InputError(f"must be ≤ {_show(spec.max)}")
    return number


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _text(value: Any, what: str = "text") -> str:
    if not isinstance(value, str):
        raise InputError(f"must be {what}")
    for delimiter in _DELIMITERS:
        if delimiter in value:
            raise InputError(
                f"must not contain {delimiter!r}: input values are data, not templates"
            )
    if len(value) > MAX_TEXT:
        raise InputError(f"must be at most {MAX_TEXT} characters")
    return value


def _email(value: Any) -> str:
    text = _text(value, "an e-mail address").strip()
    if not _EMAIL.match(text):
        raise InputError(f"{text!r} is not an e-mail address")
    return text


def _id(spec: InputSpec, value: Any) -> int:
    low, high = PICKER_MIN.get(spec.type, 1), PICKER_MAX.get(spec.type)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"must be a {spec.type.value.replace('_', ' ')} id")
    try:
        number = int(value)
    except ValueError:
        raise InputError(
            f"must be a {spec.type.value.replace('_', ' ')} id, not {value!r}"
        ) from None
    if number < low or (high is not None and number > high):
        span = f"between {low} and {high}" if high is not None else f"≥ {low}"
        raise InputError(f"must be a {spec.type.value.replace('_', ' ')} id {span}")
    return number


def _list(value: Any) -> list[Any]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,;\s]+", value) if v]
    if not isinstance(value, list):
        raise InputError("must be a list")
    if len(value) > MAX_ITEMS:
        raise InputError(f"must have at most {MAX_ITEMS} items")
    return value


def _choice(spec: InputSpec, value: Any) -> Any:
    assert spec.options is not None
    for option in spec.options:
        wanted = option.value
        if type(value) is type(wanted) and value == wanted:
            return wanted
        if _is_number(value) and _is_number(wanted) and value == wanted:
            return wanted
        if (
            isinstance(value, str)
            and not isinstance(wanted, str)
            and value.strip().lower() == str(wanted).lower()
        ):
            return wanted
    allowed = ", ".join(repr(o.value) for o in spec.options)
    raise InputError(f"must be one of {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InputError("must be true or false")


def _single(spec: InputSpec, value: Any) -> Any:
    kind = spec.type
    if kind in (InputType.NUMBER, InputType.INTEGER):
        return _number(spec, value)
    if kind == InputType.BOOLEAN:
        return _boolean(value)
    if kind == InputType.STRING:
        text = _text(value)
        if spec.min_length is not None and len(text) < spec.min_length:
            raise InputError(f"must be at least {spec.min_length} characters")
        if spec.max_length is not None and len(text) > spec.max_length:
            raise InputError(f"must be at most {spec.max_length} characters")
        return text
    if kind == InputType.EMAIL:
        return _email(value)
    if kind == InputType.URL:
        text = _text(value, "a URL").strip()
        if not _URL.match(text):
            raise InputError(f"{text!r} is not an http(s) URL")
        return text
    if kind == InputType.DURATION:
        text = _text(
            str(value) if isinstance(value, int) and not isinstance(value, bool) else value,
            "a duration",
        )
        try:
            parse_duration(text)
        except ValueError:
            raise InputError(f"{text!r} is not a duration (try '90m', '2h' or '14d')") from None
        return text.strip()
    if kind == InputType.TIME_OF_DAY:
        text = _text(value, "a time of day").strip()
        if not TIME_PATTERN.match(text):
            raise InputError(f"{text!r} is not a time of day (HH:MM, 24-hour)")
        return text
    if kind == InputType.CHOICE:
        return _choice(spec, value)
    return _id(spec, value)


def coerce(spec: InputSpec, value: Any) -> Any:
    """``value`` checked against ``spec`` and normalised; raises :class:`InputError`.

    A list input (``emails``, ``multiple``) must not be empty, unless its default is ``[]``
    (an optional list, such as categories to leave out)."""
    if value is None:
        raise InputError("a value is required")
    if spec.type == InputType.EMAILS:
        emails = [_email(v) for v in _list(value)]
        if not emails and spec.default != []:
            raise InputError("must list at least one e-mail address")
        return emails
    if spec.multiple:
        items = [_single(spec, v) for v in _list(value)]
        if not items and spec.default != []:
            raise InputError("must list at least one value")
        return items
    return _single(spec, value)


def attribute(spec: InputSpec, value: Any, name: str) -> int:
    """A part of a value (``hour`` of a time of day, ``days`` of a duration)."""
    if spec.type == InputType.TIME_OF_DAY:
        hour, minute = (int(p) for p in str(value).split(":"))
        return hour if name == "hour" else minute
    seconds = parse_duration(str(value)).total_seconds()
    divisor = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}[name]
    return int(seconds // divisor)


def resolve(
    specs: dict[str, InputSpec], given: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every input's value (given, else default) and the problems found, by input name."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in given:
        if name not in specs:
            known = ", ".join(specs) or "none"
            problems[name] = f"no such input (this template's inputs: {known})"
    for name, spec in specs.items():
        raw = given.get(name, spec.default)
        if raw is None:
            problems[name] = "required: this input has no default"
            continue
        try:
            values[name] = coerce(spec, raw)
        except InputError as exc:
            problems[name] = str(exc)
    return values, problems
