"""The recipe library Sous ships: template packs (``packs/``) and example recipes
(``examples/``), installed as package data and located with :mod:`importlib.resources`, so a
wheel installed anywhere finds them as a source checkout does."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def library_folder(name: str) -> Path | None:
    """The shipped folder ``name`` (``"packs"`` or ``"examples"``), or ``None`` when this
    installation has no such folder."""
    folder = files(__name__) / name
    # A package installed from a wheel or a checkout is a plain directory; a zipped one
    # (which setuptools never makes of Sous) would give no Path, hence no library.
    return folder if isinstance(folder, Path) and folder.is_dir() else None
