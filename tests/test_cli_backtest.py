"""``sous backtest`` on a SQLite file: a saved recipe by id and a draft from a YAML file, the
report as text and JSON, progress on a terminal's standard error, and usage errors."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Database, EventRow, ManualClock, Registry
from engine.ops import backtest as backtest_module
from engine.store.recipes import SqlRecipeStore
from sous.cli import main
from sous.registry import build_registry
from sous.tables import import_all_tables

START = datetime(2026, 11, 1, tzinfo=UTC)
RECIPE = """\
id: sold-out
name: Sold out
trigger: {type: custom.stock}
conditions:
  - {"<=": [{"var": "product.inventory_level"}, 0]}
actions:
  - use: core.log
    with: {message: "{{ product.name }} sold out"}
"""


def event(n: int, level: int) -> dict[str, Any]:
    at = START + timedelta(hours=n)
    return {
        "id": f"evt_{n:026d}",
        "workspace_id": "default",
        "store": "s1",
        "type": "custom.stock",
        "payload": {"product": {"id": n % 3, "name": f"P{n % 3}", "inventory_level": level}},
        "source": "api",
        "dedup_key": f"k{n}",
        "occurred_at": at,
        "received_at": at,
        "caused_by": None,
        "target_recipe": None,
        "dispatched": True,
    }


@pytest.fixture
def database(tmp_path: Path) -> str:
    import_all_tables()
    url = f"sqlite:///{tmp_path / 'sous.db'}"
    db = Database(url)
    db.create_all()
    rows = [event(n, 0 if n % 2 else 5) for n in range(10)]  # 5 sold out, 5 in stock
    db.run_sync(lambda tx: tx.insert(EventRow.__table__, rows))  # type: ignore[attr-defined]
    registry: Registry = build_registry()
    SqlRecipeStore(db, registry, ManualClock()).create("default", yaml.safe_load(RECIPE))
    db.dispose()
    return url


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_saved_recipe_by_id_reports_as_json_with_progress_on_a_terminal(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backtest_module, "PAGE", 4)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code = main(
        ["backtest", "sold-out", "--since", "2026-11-01T00:00:00Z", "--until",
         "2026-11-01T06:00:00Z", "--database-url", database, "--json"]
    )  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["events"], report["fired"]) == (6, 3)  # hours 0-5
    assert report["conditions"][0]["rejected"] == 3
    assert "read 4 events" in terminal.getvalue()


def test_a_draft_file_reports_as_text(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "draft.yaml"
    path.write_text(RECIPE.replace("<=", ">="))
    code = main(["backtest", str(path), "--since", "2026-10-31", "--database-url", database])
    assert code == 0
    out = capsys.readouterr().out
    assert "10 custom.stock events read; would have fired 10 times" in out
    assert "3 products; most: P0 (4)" in out


def test_unknown_recipes_bad_times_and_missing_databases_are_refused(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "nope", "--since", "7d", "--database-url", database]) == 1
    assert "no recipe 'nope'" in capsys.readouterr().err
    assert main(["backtest", "sold-out", "--since", "soon", "--database-url", database]) == 2
    assert "neither a time" in capsys.readouterr().err
    later = ["--since", "2026-11-02", "--until", "2026-11-01"]
    assert main(["backtest", "sold-out", *later, "--database-url", database]) == 2
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    assert main(["backtest", "sold-out", "--since", "7d", "--database-url", missing]) == 2
    assert not (tmp_path / "absent.db").exists()
