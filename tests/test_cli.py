from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sous.cli import main

GOOD = """\
id: good
name: Good recipe
trigger:
  type: custom.stock_check
conditions:
  - {"<=": [{"var": "product.inventory_level"}, 0]}
actions:
  - id: note
    use: core.log
    with:
      message: "{{ product.name }} is out"
"""


def test_validate_exit_codes_and_messages(tmp_path: Path, capsys) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    assert main(["validate", str(tmp_path)]) == 0
    (tmp_path / "bad.yaml").write_text(
        GOOD.replace("id: good", "id: bad").replace("core.log", "core.nope")
    )
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'bad.yaml'}:9 actions[0].use: unknown action 'core.nope'" in out
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2


def test_validate_json(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.yaml").write_text(GOOD.replace("core.log", "core.nope"))
    assert main(["validate", "--json", str(tmp_path)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["errors"][0]["path"] == "actions[0].use" and data["errors"][0]["line"] == 9


def test_dry_run_reports_condition_and_rendered_params(tmp_path: Path, capsys) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    (tmp_path / "out.json").write_text(
        json.dumps({"product": {"name": "Cat Eye Sunglasses", "inventory_level": 0}})
    )
    (tmp_path / "in.json").write_text(
        json.dumps(
            {
                "type": "custom.stock_check",
                "payload": {"product": {"name": "X", "inventory_level": 4}},
            }
        )
    )
    assert (
        main(["test", str(tmp_path / "r.yaml"), "--event", str(tmp_path / "out.json"), "--json"])
        == 0
    )
    fired = json.loads(capsys.readouterr().out)
    assert fired["matched"] is True
    assert fired["steps"][0]["params"] == {"message": "Cat Eye Sunglasses is out"}
    assert main(["test", str(tmp_path / "r.yaml"), "--event", str(tmp_path / "in.json")]) == 1
    text = capsys.readouterr().out
    assert "would not fire" in text and "4" in text


def test_schema_includes_action_parameters(capsys) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    steps = schema["$defs"]["Step"]["oneOf"]
    log_step = next(s for s in steps if s["title"] == "core.log")
    assert "message" in log_step["properties"]["with"]["properties"]
    assert log_step["properties"]["use"] == {"const": "core.log"}


def test_console_script_is_installed() -> None:
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "sous"), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "validate" in result.stdout


def test_dry_run_checks_event_type(tmp_path: Path, capsys) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    other = {"type": "custom.other", "payload": {"product": {"name": "X", "inventory_level": 0}}}
    (tmp_path / "e.json").write_text(json.dumps(other))
    assert (
        main(["test", str(tmp_path / "r.yaml"), "--event", str(tmp_path / "e.json"), "--json"]) == 1
    )
    result = json.loads(capsys.readouterr().out)
    assert result["stage"] == "trigger" and "custom.other" in result["reason"]["message"]
