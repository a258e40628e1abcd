"""Fetch the pinned copy of BigCommerce's published specs the tests check against.

    python scripts/fetch_bigcommerce_specs.py [FOLDER]

FOLDER defaults to ``$SOUS_BIGCOMMERCE_SPECS``, else ``../shared/bigcommerce/specs`` beside the
clone (where the tests look). Every file listed in ``scripts/bigcommerce-specs.txt`` is
downloaded from github.com/bigcommerce/docs at the pinned commit and its SHA-256 checked; a file
already there with the right digest is kept. Needs access to raw.githubusercontent.com.
Standard library only, so it runs before the virtual environment exists.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "scripts" / "bigcommerce-specs.txt"
RAW = "https://raw.githubusercontent.com/bigcommerce/docs/{commit}/{path}"


def manifest() -> tuple[str, list[tuple[str, str, str]]]:
    commit, files = "", []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("commit "):
            commit = line.split()[1]
            continue
        digest, upstream, local = line.split()
        files.append((digest, upstream, local))
    return commit, files


def fetch(folder: Path) -> int:
    commit, files = manifest()
    bad = 0
    for digest, upstream, local in files:
        target = folder / local
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
            continue
        url = RAW.format(commit=commit, path=upstream)
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - a fixed https URL
            data = answer.read()
        if hashlib.sha256(data).hexdigest() != digest:
            print(f"{url}: SHA-256 differs from the pinned one; not saved", file=sys.stderr)
            bad += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    print(f"{len(files) - bad} of {len(files)} files in {folder} (bigcommerce/docs@{commit[:12]})")
    return 1 if bad else 0


def main() -> int:
    given = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SOUS_BIGCOMMERCE_SPECS")
    folder = Path(given) if given else ROOT.parent / "shared" / "bigcommerce" / "specs"
    return fetch(folder)


if __name__ == "__main__":
    sys.exit(main())
