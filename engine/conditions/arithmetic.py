"""JsonLogic arithmetic: ``+ - * / %``, ``max`` and ``min`` with JavaScript coercion.

Operands go through :func:`~engine.conditions.semantics.to_number`, so non-numeric strings,
arrays and objects raise :class:`~engine.conditions.semantics.EvaluationError` (``"NaN"``), as
do division or modulo by zero and results that are not finite. Integral results are ``int``.
The reasoning is in :mod:`engine.conditions.semantics` and ``docs/conditions.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from engine.conditions.semantics import (
    invalid_arguments,
    nan_error,
    normalise_number,
    to_number,
)


def add(*values: Any) -> int | float:
    """The sum of ``values`` after :func:`to_number`; 0 for no values."""
    total: int | float = 0
    try:
        for value in values:
            total += to_number(value)
        return normalise_number(total)
    except OverflowError:
        raise nan_error("the sum is too large") from None


def multiply(*values: Any) -> int | float:
    """The product of ``values`` after :func:`to_number`; 1 for no values."""
    product: int | float = 1
    try:
        for value in values:
            product *= to_number(value)
        return normalise_number(product)
    except OverflowError:
        raise nan_error("the product is too large") from None


def subtract(*values: Any) -> int | float:
    """``-a`` for one value, else ``a - b - c ...``; at least one value is required."""
    if not values:
        raise invalid_arguments("'-' needs at least one argument")
    numbers = [to_number(v) for v in values]
    if len(numbers) == 1:
        return normalise_number(-numbers[0])
    result = numbers[0]
    try:
        for number in numbers[1:]:
            result -= number
        return normalise_number(result)
    except OverflowError:
        raise nan_error("the difference is too large") from None


def _divide2(a: int | float, b: int | float) -> int | float:
    if b == 0:
        raise nan_error("division by zero")
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b
    try:
        return normalise_number(a / b)
    except OverflowError:
        raise nan_error("the quotient is too large") from None


def divide(*values: Any) -> int | float:
    """``1 / a`` for one value, else ``a / b / c ...``; raises on division by zero."""
    if not values:
        raise invalid_arguments("'/' needs at least one argument")
    numbers = [to_number(v) for v in values]
    if len(numbers) == 1:
        return _divide2(1, numbers[0])
    result = numbers[0]
    for number in numbers[1:]:
        result = _divide2(result, number)
    return result


def _remainder2(a: int | float, b: int | float) -> int | float:
    if b == 0:
        raise nan_error("modulo by zero")
    if isinstance(a, int) and isinstance(b, int):
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    try:
        return normalise_number(math.fmod(a, b))
    except OverflowError:
        raise nan_error("the remainder is too large") from None


def remainder(*values: Any) -> int | float:
    """``a % b % c ...`` with JavaScript's remainder (sign of the dividend); needs 2+ values."""
    if len(values) < 2:
        raise invalid_arguments("'%' needs at least two arguments")
    numbers = [to_number(v) for v in values]
    result = numbers[0]
    for number in numbers[1:]:
        result = _remainder2(result, number)
    return result


def _numbers_for_extremum(name: str, values: Iterable[Any]) -> list[int | float]:
    numbers = [to_number(v) for v in values]
    if not numbers:
        raise invalid_arguments(f"'{name}' needs at least one argument")
    return numbers


def maximum(*values: Any) -> int | float:
    """The largest of ``values`` after :func:`to_number`; raises for no values."""
    return max(_numbers_for_extremum("max", values))


def minimum(*values: Any) -> int | float:
    """The smallest of ``values`` after :func:`to_number`; raises for no values."""
    return min(_numbers_for_extremum("min", values))
