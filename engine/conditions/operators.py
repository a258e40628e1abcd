"""The catalog of supported JsonLogic operators: what each does, takes and returns.

:data:`OPERATORS` drives validation (arity, argument shape) and is served to the front end,
which renders operator pickers from it; every example is checked by the test suite.

Argument shapes. ``{"op": [a, b]}`` passes ``a`` and ``b``. Any other value is shorthand for a
single argument (``{"var": "x"}`` is ``{"var": ["x"]}``), except for operators marked
``chains``: given one rule instead of a list (``{"max": {"var": "prices"}}``), they take the
rule's array result as their argument list. Operators marked ``array_only`` control evaluation
(short-circuiting, iteration, comparison chains) and must be written with a literal list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class OperatorExample:
    """A tiny worked example: evaluating ``rule`` against ``data`` gives ``result``."""

    rule: Any
    data: Any
    result: Any


@dataclass(frozen=True)
class OperatorSpec:
    """One operator: its name, a one-line description, its arguments and an example."""

    name: str
    category: str
    description: str
    arguments: str
    min_args: int
    max_args: int | None
    example: OperatorExample
    array_only: bool = False
    chains: bool = False
    extension: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable rendering (for the operator picker)."""
        return asdict(self)


def _op(
    name: str,
    category: str,
    description: str,
    arguments: str,
    arity: tuple[int, int | None],
    example: tuple[Any, Any, Any],
    *,
    array_only: bool = False,
    chains: bool = False,
    extension: bool = False,
) -> OperatorSpec:
    return OperatorSpec(
        name=name,
        category=category,
        description=description,
        arguments=arguments,
        min_args=arity[0],
        max_args=arity[1],
        example=OperatorExample(*example),
        array_only=array_only,
        chains=chains,
        extension=extension,
    )


_ANY = (0, None)
_LOGIC, _CMP, _MATH, _ARR, _STR, _DATA, _MISC = (
    "logic",
    "comparison",
    "arithmetic",
    "array",
    "string",
    "data",
    "misc",
)
_PRODUCT = {"product": {"price": 12.5, "tags": ["sale", "summer"], "stock": 0}}

_SPECS = [
    # data access
    _op("var", _DATA, "Reads a value from the data by dotted path; the default when it is absent.",
        "path (\"a.b.0\"; \"\" for the whole data), optional default", (0, 2),
        ({"var": ["product.price", 0]}, _PRODUCT, 12.5)),
    _op("val", _DATA, "Reads a value by a list of keys (no dot splitting); null when absent.",
        "keys, e.g. [\"product\", \"price\"]; a leading [n] starts n scopes up", _ANY,
        ({"val": ["product", "tags", 1]}, _PRODUCT, "summer"), chains=True, extension=True),
    _op("exists", _DATA, "Whether a path of keys is present in the data (a stored null counts).",
        "keys, as for val", _ANY, ({"exists": ["product", "stock"]}, _PRODUCT, True),
        chains=True, extension=True),
    _op("missing", _DATA, "Lists the var paths that are absent, null or empty strings.",
        "paths, or one list of paths", _ANY,
        ({"missing": ["product.price", "product.sku"]}, _PRODUCT, ["product.sku"]), chains=True),
    _op("missing_some", _DATA,
        "Returns [] when at least N of the paths are present, else the missing paths.",
        "minimum present count, list of paths", (2, 2),
        ({"missing_some": [1, ["product.sku", "product.price"]]}, _PRODUCT, [])),
    # logic
    _op("if", _LOGIC, "Returns the value paired with the first truthy condition, else the last.",
        "condition, value, [condition, value, ...], [else value]", _ANY,
        ({"if": [{"var": "product.stock"}, "in stock", "sold out"]}, _PRODUCT, "sold out"),
        array_only=True),
    _op("?:", _LOGIC, "Ternary: the second argument if the first is truthy, else the third.",
        "condition, value if truthy, value if falsy", (3, 3),
        ({"?:": [{"<": [{"var": "product.price"}, 20]}, "cheap", "dear"]}, _PRODUCT, "cheap"),
        array_only=True),
    _op("and", _LOGIC, "The first falsy argument, else the last one (false when empty).",
        "conditions (evaluated left to right, stopping at the first falsy one)", _ANY,
        ({"and": [{">": [{"var": "product.price"}, 10]}, {"var": "product.stock"}]}, _PRODUCT, 0),
        array_only=True),
    _op("or", _LOGIC, "The first truthy argument, else the last one (false when empty).",
        "conditions (evaluated left to right, stopping at the first truthy one)", _ANY,
        ({"or": [{"var": "product.stock"}, "none left"]}, _PRODUCT, "none left"),
        array_only=True),
    _op("!", _LOGIC, "Negates the truthiness of its argument.", "one value", (0, 1),
        ({"!": {"var": "product.stock"}}, _PRODUCT, True)),
    _op("!!", _LOGIC, "Converts its argument to a boolean (an empty array is false).",
        "one value", (0, 1), ({"!!": [{"var": "product.tags"}]}, _PRODUCT, True)),
    _op("??", _LOGIC, "The first argument that is not null.", "values", _ANY,
        ({"??": [{"var": "product.sku"}, "n/a"]}, _PRODUCT, "n/a"), extension=True),
    # comparison
    _op("==", _CMP, "Loose equality with JavaScript coercion (1 == \"1\", null == null).",
        "two or more values (compared pairwise)", (2, None),
        ({"==": [{"var": "product.stock"}, "0"]}, _PRODUCT, True), array_only=True),
    _op("===", _CMP, "Strict equality: same type and value.", "two or more values", (2, None),
        ({"===": [{"var": "product.stock"}, "0"]}, _PRODUCT, False), array_only=True),
    _op("!=", _CMP, "Loose inequality (the opposite of ==).", "two or more values", (2, None),
        ({"!=": [{"var": "product.stock"}, 1]}, _PRODUCT, True), array_only=True),
    _op("!==", _CMP, "Strict inequality (the opposite of ===).", "two or more values", (2, None),
        ({"!==": [{"var": "product.stock"}, 0]}, _PRODUCT, False), array_only=True),
    _op(">", _CMP, "Greater than (numbers, or two strings alphabetically).",
        "two or more values (each greater than the next)", (2, None),
        ({">": [{"var": "product.price"}, 10]}, _PRODUCT, True), array_only=True),
    _op(">=", _CMP, "Greater than or equal.", "two or more values", (2, None),
        ({">=": [{"var": "product.stock"}, 1]}, _PRODUCT, False), array_only=True),
    _op("<", _CMP, "Less than; with three arguments, strictly between.",
        "two or more values (each less than the next)", (2, None),
        ({"<": [10, {"var": "product.price"}, 20]}, _PRODUCT, True), array_only=True),
    _op("<=", _CMP, "Less than or equal; with three arguments, between inclusive.",
        "two or more values", (2, None),
        ({"<=": [{"var": "product.stock"}, 0]}, _PRODUCT, True), array_only=True),
    _op("in", _CMP, "Whether a value is in an array, or a substring of a string.",
        "needle, array or string", (2, 2),
        ({"in": ["sale", {"var": "product.tags"}]}, _PRODUCT, True), chains=True),
    # arithmetic
    _op("+", _MATH, "Sum of the arguments (a single argument is converted to a number).",
        "numbers", _ANY, ({"+": [{"var": "product.price"}, 2.5]}, _PRODUCT, 15), chains=True),
    _op("-", _MATH, "Difference of the arguments; negation with one argument.",
        "one or more numbers", (1, None), ({"-": [{"var": "product.price"}, 2.5]}, _PRODUCT, 10),
        chains=True),
    _op("*", _MATH, "Product of the arguments.", "numbers", _ANY,
        ({"*": [{"var": "product.price"}, 2]}, _PRODUCT, 25), chains=True),
    _op("/", _MATH, "Quotient of the arguments; the reciprocal with one argument.",
        "one or more numbers (division by zero is an error)", (1, None),
        ({"/": [{"var": "product.price"}, 5]}, _PRODUCT, 2.5), chains=True),
    _op("%", _MATH, "Remainder of dividing the first argument by the next (sign of the first).",
        "two or more numbers", (2, None), ({"%": [17, 5]}, None, 2), chains=True),
    _op("max", _MATH, "The largest argument.", "one or more numbers", (1, None),
        ({"max": [{"var": "product.price"}, 20]}, _PRODUCT, 20), chains=True),
    _op("min", _MATH, "The smallest argument.", "one or more numbers", (1, None),
        ({"min": [{"var": "product.price"}, 20]}, _PRODUCT, 12.5), chains=True),
    # arrays
    _op("map", _ARR, "Applies a rule to every element (the element is the rule's data).",
        "array, rule", (2, 2),
        ({"map": [[1, 2, 3], {"*": [{"var": ""}, 2]}]}, None, [2, 4, 6]), array_only=True),
    _op("filter", _ARR, "Keeps the elements for which a rule is truthy.", "array, rule", (2, 2),
        ({"filter": [[1, 2, 3, 4], {"%": [{"var": ""}, 2]}]}, None, [1, 3]), array_only=True),
    _op("reduce", _ARR,
        "Folds an array: the rule sees {current, accumulator} and returns the new accumulator.",
        "array, rule, initial value (null when omitted)", (2, 3),
        ({"reduce": [[1, 2, 3], {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
         None, 6), array_only=True),
    _op("all", _ARR, "Whether a rule is truthy for every element (false for an empty array).",
        "array, rule", (2, 2),
        ({"all": [[1, 2, 3], {">": [{"var": ""}, 0]}]}, None, True), array_only=True),
    _op("some", _ARR, "Whether a rule is truthy for at least one element.", "array, rule",
        (2, 2), ({"some": [{"var": "product.tags"}, {"==": [{"var": ""}, "sale"]}]}, _PRODUCT,
                 True), array_only=True),
    _op("none", _ARR, "Whether a rule is truthy for no element.", "array, rule", (2, 2),
        ({"none": [{"var": "product.tags"}, {"==": [{"var": ""}, "winter"]}]}, _PRODUCT, True),
        array_only=True),
    _op("merge", _ARR, "Concatenates the arguments into one array (flattening one level).",
        "arrays or values", _ANY, ({"merge": [[1, 2], 3, [4]]}, None, [1, 2, 3, 4]), chains=True),
    # strings
    _op("cat", _STR, "Concatenates the arguments as strings.", "values", _ANY,
        ({"cat": ["Only ", {"var": "product.stock"}, " left"]}, _PRODUCT, "Only 0 left"),
        chains=True),
    _op("substr", _STR, "A slice of a string: negative start counts from the end; a negative "
        "length drops characters from the end.", "string, start, optional length", (1, 3),
        ({"substr": ["jsonlogic", 4]}, None, "logic"), chains=True),
    # misc
    _op("log", _MISC, "Returns its argument unchanged (a no-op kept for compatibility).",
        "one value", (1, 1), ({"log": "apple"}, None, "apple")),
    _op("preserve", _MISC, "Returns its argument as data, without evaluating it.",
        "any value, including objects that look like rules", (1, 1),
        ({"preserve": {"var": "x"}}, None, {"var": "x"}), extension=True),
    _op("throw", _MISC, "Raises an error whose type is the argument (or its \"type\" field).",
        "error type or {\"type\": ...} object", (1, 1),
        ({"try": [{"throw": "no stock"}, {"var": "type"}]}, None, "no stock"), extension=True),
    _op("try", _MISC, "The first argument that evaluates without error; later ones see "
        "{\"type\": <error type>} as data.", "alternatives", (1, None),
        ({"try": [{"/": [1, 0]}, 0]}, None, 0), extension=True),
]  # fmt: skip

OPERATORS: Mapping[str, OperatorSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
"""Every supported operator by name, in catalog order."""

ALLOWED_OPERATORS: frozenset[str] = frozenset(OPERATORS)
"""The names :func:`engine.conditions.validate_rule` accepts; anything else is rejected."""
