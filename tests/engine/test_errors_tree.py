"""The error tree drawn in engine/errors.py is the one the code defines."""

from __future__ import annotations

import inspect
import re

import engine.errors as errors


def drawn() -> dict[str, str]:
    """Each class in the drawing and the class it hangs from."""
    doc = errors.__doc__ or ""
    parents: dict[int, str] = {}
    tree: dict[str, str] = {}
    for line in doc.splitlines():
        found = re.match(r"^(\s*)(?:[│ ]*[├└]── )?(\w+Error|Retry|SousError)\b", line)
        if not found or ("Error" not in line and "Retry" not in line):
            continue
        name = found.group(2)
        depth = line.index(name)
        parents[depth] = name
        above = [d for d in parents if d < depth]
        if above:
            tree[name] = parents[max(above)]
    return tree


def test_the_drawing_matches_the_classes() -> None:
    defined = {
        name: cls.__mro__[1].__name__
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.SousError) and cls is not errors.SousError
    }
    assert drawn() == defined
