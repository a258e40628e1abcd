"""When the browser tests cannot run: skipped with the remedy, or failed under
``SOUS_REQUIRE_BROWSER=1`` (``.ci/run`` sets it: there they must run)."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

NO_BROWSER = "no Chromium: apt-get install chromium (or set SOUS_BROWSER)"
NO_PLAYWRIGHT = "playwright is not installed: pip install -c constraints.txt -e '.[dev]'"


def required() -> bool:
    return os.environ.get("SOUS_REQUIRE_BROWSER") == "1"


def need(reason: str) -> NoReturn:
    """Skip (the whole module when called while importing one), or fail when required."""
    if required():
        pytest.fail(f"{reason} (required: SOUS_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def browser_path() -> str | None:
    """``SOUS_BROWSER`` when it names a file, else a Chromium on the PATH."""
    given = os.environ.get("SOUS_BROWSER")
    if given:
        return given if os.path.isfile(given) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")
