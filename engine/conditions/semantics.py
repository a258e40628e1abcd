"""JavaScript value semantics for JsonLogic: truthiness, coercion, equality, ordering, arithmetic.

Everything here works on JSON-shaped Python values (``None``, ``bool``, ``int``, ``float``,
``str``, ``list``, ``dict``). Python and JavaScript disagree in places that matter to rules
(``bool`` is an ``int`` in Python, ``{}`` is falsy in Python, ``-1 % 2`` differs), so every
operator goes through these functions rather than Python's own operators.

Order of authority when sources disagree: ``jsonlogic.com/tests.json`` (must pass), then the
explicit decisions below, then the community "JSON Logic Core" suites, then json-logic-js.

Decisions for the cases the conformance suites leave open (each is tested explicitly):

* **Truthiness** is JavaScript's, as on jsonlogic.com/truthy.html: ``false``, ``0``, ``""``,
  ``null`` and ``[]`` are falsy, ``"0"`` is truthy, and **every object, including ``{}``, is
  truthy**. A NaN float in the data is falsy.
* **``==`` is JavaScript abstract equality and never raises**: ``null == 0`` is false (``null``
  only equals ``null``; a missing ``var`` is ``null``), ``"1" == 1``, ``1 == true``,
  ``"1" == true``, ``[] == ""`` and ``[] == 0`` are true; an array or object is converted to a
  string (``[1,2]`` -> ``"1,2"``) when compared with a primitive, and two arrays/objects are
  equal only when they are the same value instance (so two literal arrays are never equal).
  A non-numeric string compared with a number is simply unequal.
* **``===``** requires the same JSON type: ``true === 1`` is false, ``1 === 1.0`` is true.
* **Ordering** (``<``, ``<=``, ``>``, ``>=``): two strings compare lexicographically (by code
  point); otherwise both sides are converted with :func:`to_number` (``null`` -> 0, booleans ->
  0/1, numeric strings -> numbers). A comparison that JavaScript would answer with NaN (a
  non-numeric string against a number, or any array/object operand) raises
  :class:`EvaluationError` with type ``"NaN"`` instead of quietly returning false.
* **Arithmetic on non-numeric values raises** :class:`EvaluationError` (type ``"NaN"``):
  ``{"+": ["a", 1]}``, arrays and objects as operands. ``null`` and ``""`` count as 0, booleans
  as 0/1. Numeric strings follow JavaScript's grammar (surrounding whitespace, exponents,
  ``0x``/``0o``/``0b``); ``"Infinity"``, ``"NaN"`` and ``"1_000"`` are not numbers.
* **Division or modulo by zero raises** (type ``"NaN"``), as does any result that is not a
  finite number: JSON cannot carry ``Infinity`` or ``NaN``.
* **Numbers**: integral results are returned as ``int`` (``{"/": [4, 2]}`` is ``2``);
  ``%`` is JavaScript's remainder (sign of the dividend: ``-1 % 2`` is ``-1``); ``-``, ``/``
  and ``%`` chain over all their arguments (json-logic-js ignores a third one).
* **``var`` through a null**: the default (or ``null``) is returned when a key is absent *or*
  an intermediate value is ``null`` or not a container (``a.b`` on ``{"a": null}``); a ``null``
  stored at the end of the path is returned as ``null``, not replaced by the default
  (json-logic-js). Numeric segments index arrays (``tags.0``); strings are not indexed and
  there are no JavaScript properties such as ``length``.
* **Iterators** (``map``, ``filter``, ``reduce``) over a non-array give ``[]`` (``reduce``: its
  initial value); the quantifiers ``all``, ``some``, ``none`` raise for a non-array (type
  ``"Invalid Arguments"``); ``all`` of ``[]`` is false. Bodies see only the element.
* **``in``** on an array uses strict equality (``1`` is not in ``[true]``), on a string it is a
  substring test, and on anything else it is false.
* Strings are compared and sliced by Unicode code point; JavaScript uses UTF-16 code units, so
  results differ only for characters outside the Basic Multilingual Plane.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from engine.errors import ConditionError

NAN_ERROR: Final = "NaN"
INVALID_ARGUMENTS: Final = "Invalid Arguments"

_MAX_SAFE_INTEGER: Final = 2**53


class EvaluationError(ConditionError):
    """A rule failed while being evaluated against data.

    ``error_type`` classifies the failure the way the JSON Logic suites do: ``"NaN"`` for
    arithmetic or ordering without a numeric answer, ``"Invalid Arguments"`` for arguments of
    the wrong shape, or the value given to ``throw``. ``payload`` is the thrown value itself.
    """

    def __init__(
        self, error_type: Any, message: str = "", *, path: str = "", payload: Any = None
    ) -> None:
        self.error_type = error_type
        self.payload = payload
        super().__init__(path, message or f"evaluation failed: {error_type}")

    def at(self, path: str) -> EvaluationError:
        """The same error located at ``path`` (kept as is when it already has a path)."""
        if self.path:
            return self
        return EvaluationError(self.error_type, self.message, path=path, payload=self.payload)


def nan_error(message: str) -> EvaluationError:
    """An :class:`EvaluationError` of type ``"NaN"``."""
    return EvaluationError(NAN_ERROR, message)


def invalid_arguments(message: str) -> EvaluationError:
    """An :class:`EvaluationError` of type ``"Invalid Arguments"``."""
    return EvaluationError(INVALID_ARGUMENTS, message)


# --------------------------------------------------------------------------- types


def is_number(value: Any) -> bool:
    """True for ``int`` and ``float`` values; False for booleans (JSON ``true`` is no number)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def js_type(value: Any) -> str:
    """The JavaScript type family: ``null``, ``boolean``, ``number``, ``string`` or ``object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def truthy(value: Any) -> bool:
    """JavaScript truthiness, except that an empty array is falsy (JsonLogic's one change)."""
    if value.__class__ is bool:
        return value
    if value is None:
        return False
    if isinstance(value, dict):
        return True
    if isinstance(value, float):
        return value == value and value != 0.0
    return bool(value)


# --------------------------------------------------------------------------- numbers

_JS_SPACE: Final = " \t\n\v\f\r\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_RADIX_BASE: Final = {"x": 16, "o": 8, "b": 2}


def normalise_number(value: int | float) -> int | float:
    """``value`` as an ``int`` when it is integral (and exactly representable), else unchanged.

    Raises :class:`EvaluationError` (``"NaN"``) for NaN and infinities, which JSON cannot carry.
    """
    if value.__class__ is float:
        if value != value or value in (math.inf, -math.inf):
            raise nan_error("the result is not a finite number")
        if value.is_integer() and -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            return int(value)
    return value


def _parse_number(text: str) -> int | float | None:
    """JavaScript ``Number(text)`` for strings; None where JavaScript gives NaN or Infinity."""
    text = text.strip(_JS_SPACE)
    if not text:
        return 0
    try:
        if _INTEGER.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            number = float(text)
            return None if math.isinf(number) else normalise_number(number)
        if _RADIX.fullmatch(text):
            return int(text[2:], _RADIX_BASE[text[1].lower()])
    except ValueError:  # more digits than int() accepts
        return None
    return None


def to_number(value: Any) -> int | float:
    """JavaScript ``Number(value)`` for JSON values; raises where JavaScript would give NaN.

    ``null`` -> 0, booleans -> 0/1, numeric strings -> their number, ``""`` -> 0. Non-numeric
    strings, arrays, objects and non-finite floats raise :class:`EvaluationError` (``"NaN"``).
    """
    if value.__class__ is int:
        return value
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise nan_error("not a finite number")
    if isinstance(value, str):
        number = _parse_number(value)
        if number is None:
            raise nan_error(f"{value!r} is not a number")
        return number
    raise nan_error(f"{js_type(value)} value {short_repr(value)} is not a number")


def to_number_or_nan(value: Any) -> float | int:
    """Like :func:`to_number`, but NaN (``float("nan")``) instead of raising."""
    try:
        return to_number(value)
    except EvaluationError:
        return math.nan


def to_integer(value: Any) -> int:
    """JavaScript ``ToIntegerOrInfinity`` clamped to Python ints: NaN -> 0, truncates toward 0."""
    number = to_number_or_nan(value)
    if number != number:
        return 0
    if number in (math.inf, -math.inf):
        return 2**62 if number > 0 else -(2**62)
    return int(number)


# --------------------------------------------------------------------------- strings


def format_number(value: int | float) -> str:
    """JavaScript ``Number.prototype.toString()``: ``1.0`` -> ``"1"``, ``1e21`` -> ``"1e+21"``."""
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + (int(exponent) if exponent else 0)  # decimal point after `point` digits
    point -= len(whole + fraction) - len((whole + fraction).lstrip("0"))
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    e_text = f"e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + (digits if k == 1 else digits[0] + "." + digits[1:]) + e_text


def to_js_string(value: Any) -> str:
    """JavaScript ``String(value)``: ``null`` -> ``"null"``, arrays joined with ``,``."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else to_js_string(item) for item in value)
    return "[object Object]"


def short_repr(value: Any, limit: int = 60) -> str:
    """A one-line, length-limited rendering of ``value`` for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- equality


def loose_equals(a: Any, b: Any) -> bool:
    """JavaScript ``a == b`` (abstract equality) on JSON values; never raises."""
    ta, tb = js_type(a), js_type(b)
    if ta == tb:
        return a is b if ta == "object" else bool(a == b)
    if ta == "null" or tb == "null":
        return False
    if ta == "boolean":
        return loose_equals(1 if a else 0, b)
    if tb == "boolean":
        return loose_equals(a, 1 if b else 0)
    if ta == "number" and tb == "string":
        return bool(a == to_number_or_nan(b))
    if ta == "string" and tb == "number":
        return bool(to_number_or_nan(a) == b)
    if ta == "object":
        return loose_equals(to_js_string(a), b)
    return loose_equals(a, to_js_string(b))


def strict_equals(a: Any, b: Any) -> bool:
    """JavaScript ``a === b``: same type family and equal; arrays/objects only by identity."""
    ta = js_type(a)
    if ta != js_type(b):
        return False
    return a is b if ta == "object" else bool(a == b)


# --------------------------------------------------------------------------- ordering


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    return to_number(a), to_number(b)


def less_than(a: Any, b: Any) -> bool:
    """``a < b``: strings lexicographically, anything else numerically; raises on NaN."""
    x, y = _ordered(a, b)
    return bool(x < y)


def less_equal(a: Any, b: Any) -> bool:
    """``a <= b``: strings lexicographically, anything else numerically; raises on NaN."""
    x, y = _ordered(a, b)
    return bool(x <= y)


def greater_than(a: Any, b: Any) -> bool:
    """``a > b``: strings lexicographically, anything else numerically; raises on NaN."""
    x, y = _ordered(a, b)
    return bool(x > y)


def greater_equal(a: Any, b: Any) -> bool:
    """``a >= b``: strings lexicographically, anything else numerically; raises on NaN."""
    x, y = _ordered(a, b)
    return bool(x >= y)
