"""The README's examples stay true: its template example names a template of the shipped library
and gives every input that template requires."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from sous.cli import main
from tests.conftest import ROOT


def test_the_readme_template_example_instantiates(tmp_path: Path, capsys) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^sous (templates instantiate .*)$", readme, re.M)
    assert found, "the README has no `sous templates instantiate` example"
    args = shlex.split(found.group(1))
    database = f"sqlite:///{tmp_path / 'sous.db'}"
    code = main([*args, "--dry-run", "--database-url", database])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "trigger:" in out.out and "staff@example.com" in out.out
