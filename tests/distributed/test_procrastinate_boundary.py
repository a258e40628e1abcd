"""The procrastinate boundary: the queue adapter calls procrastinate's SQL functions directly,
so it runs only with the versions it supports, refuses a database a newer procrastinate
migrated, and ``sous migrate`` brings a database made with an older procrastinate 3 (jobs
waiting in it) to today's schema, after which its jobs run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.queue.procrastinate import SUPPORTED, check_version, install_schema
from engine.store.db import Database
from tests.conftest import require_services
from tests.distributed.pg import need_postgres

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_supported_versions_are_accepted() -> None:
    assert check_version(".".join(map(str, SUPPORTED[0]))) == "3.10.0"
    assert check_version("3.10.7") == "3.10.7"
    for other in ("3.9.2", "3.11.0", "4.0.0"):
        with pytest.raises(RuntimeError, match=r"supports 3\.10\.0 up to"):
            check_version(other)
    check_version()  # the installed one


@pytest.mark.postgres
def test_a_database_a_newer_procrastinate_migrated_is_refused(pg_db: Database) -> None:
    with pg_db.engine.begin() as conn:
        conn.execute(text("INSERT INTO sous_procrastinate_schema (version) VALUES ('3.11.0')"))
    try:
        with pytest.raises(RuntimeError, match="newer than the installed procrastinate"):
            install_schema(pg_db.engine)
    finally:
        with pg_db.engine.begin() as conn:
            conn.execute(text("DELETE FROM sous_procrastinate_schema WHERE version = '3.11.0'"))


def _can_fetch(version: str, folder: Path) -> bool:
    found = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(folder),
         f"procrastinate=={version}"],
        capture_output=True, check=False,
    )  # fmt: skip
    return found.returncode == 0


@pytest.mark.postgres
@pytest.mark.slow
def test_sous_migrate_upgrades_a_database_of_procrastinate_3_0_with_its_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = need_postgres()
    if not _can_fetch("3.0.2", tmp_path):
        reason = "procrastinate 3.0.2 could not be fetched with pip (no package index)"
        if require_services():
            pytest.fail(reason)
        pytest.skip(reason)
    spec = importlib.util.spec_from_file_location(
        "upgrade", ROOT / "scripts" / "procrastinate_upgrade.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--from", "3.0.2", "--server", server]) == 0
    said = capsys.readouterr().out
    assert "procrastinate schema migrated: 3.0.2 to 3.10" in said
    assert "jobs run after the upgrade: before-upgrade, after-upgrade" in said
