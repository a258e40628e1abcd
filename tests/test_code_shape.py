"""Small, findable pieces: no function of the engine or the connectors (the store simulator
aside) is longer than 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LONGEST = 80


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for folder in ("engine", "connectors"):
        for path in (ROOT / folder).rglob("*.py"):
            if "simulator" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > LONGEST:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert long == []
