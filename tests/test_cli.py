from __future__ import annotations

import argparse
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def sous(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """Run the installed ``sous`` as a user does."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "sous"), *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_validate_checks_a_plain_recipe_file_once(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.yaml").write_text(GOOD.replace("core.log", "core.nope"))
    assert main(["validate", str(tmp_path / "bad.yaml")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if "core.nope" in line]) == 1
    assert out[-1] == "0 valid recipes, 1 error"
    assert capsys.readouterr().err == ""  # no progress notes off a terminal
    (tmp_path / "bad.yaml").write_text(GOOD)
    assert main(["validate", str(tmp_path / "bad.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 valid recipe, 0 errors"


def test_bad_id_says_what_an_id_may_hold_and_hides_nothing(tmp_path: Path, capsys) -> None:
    bad = GOOD.replace("id: good", "id: Good Recipe!").replace("core.log", "core.lgo")
    (tmp_path / "bad.yaml").write_text(bad.replace("id: note", "id: Note"))
    assert main(["validate", "--json", str(tmp_path)]) == 1
    errors = {e["path"]: e["message"] for e in json.loads(capsys.readouterr().out)["errors"]}
    assert "lowercase letters, digits, - and _" in errors["id"]
    assert "pattern" not in errors["id"] and "'Good Recipe!'" in errors["id"]
    assert "'Note' is not a valid id" in errors["actions[0].id"]
    assert errors["actions[0].use"].startswith("unknown action 'core.lgo'; did you mean 'core.log'")


def test_unknown_names_suggest_the_nearest(tmp_path: Path, capsys) -> None:
    recipe = GOOD.replace("custom.stock_check", "bigcommerce.product.out_of_stok")
    recipe = recipe.replace('"<="', '"<=="').replace("core.log", "zzz.qqq")
    (tmp_path / "r.yaml").write_text(recipe)
    assert main(["validate", "--json", str(tmp_path)]) == 1
    errors = {e["path"]: e["message"] for e in json.loads(capsys.readouterr().out)["errors"]}
    assert "did you mean 'bigcommerce.product.out_of_stock'" in errors["trigger.type"]
    assert "did you mean" in errors["conditions[0].<=="] and "'<='" in errors["conditions[0].<=="]
    assert errors["actions[0].use"] == (
        "unknown action 'zzz.qqq' (the catalog, GET /v1/catalog, lists every one)"
    )


def test_schema_into_a_closed_pipe_stops_quietly() -> None:
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        f"'{bin_dir / 'sous'}' schema | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout == "{\n"
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 141


def test_read_only_commands_leave_no_database(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOUS_DATABASE_URL", raising=False)
    for argv in (
        ["validate", "r.yaml"],
        ["schema"],
        ["templates", "show", "backorders/sold-out-backorder", "--json"],
        ["packs", "list", "--json"],
        ["templates", "list", "--json"],
    ):
        assert main(argv) == 0, argv
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]
    assert main(["templates", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(t["ref"] == "backorders/sold-out-backorder" for t in listed)


def test_version_and_python_m() -> None:
    from importlib.metadata import version

    assert sous("--version").stdout == f"sous {version('sous')}\n"
    result = subprocess.run(
        [sys.executable, "-m", "sous", "validate", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("usage: sous validate")


def _options(parser: argparse.ArgumentParser, path: str = "sous"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _options(child, f"{path} {name}")
        elif action.dest != "help":
            yield path, action


def test_every_option_has_help_and_settings_name_their_variable() -> None:
    from sous.cli import build_parser

    seen = 0
    for path, action in _options(build_parser()):
        seen += 1
        assert action.help, f"{path} {action.option_strings or action.dest} has no help"
        if "--database-url" in action.option_strings:
            assert "SOUS_DATABASE_URL" in action.help, path
    assert seen > 60
    help_text = sous("serve", "--help").stdout
    for variable in ("SOUS_HOST", "SOUS_PORT", "SOUS_WORKERS", "SOUS_RECIPES_DIR"):
        assert variable in help_text


def test_help_does_not_load_the_engine() -> None:
    code = (
        "import sys; from sous.cli import build_parser; build_parser();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('sqlalchemy', 'sqlmodel', 'fastapi', 'pydantic', 'httpx', 'yaml', 'asyncio')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout == "[]\n", result.stderr


def test_progress_is_shown_on_a_terminal_only(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(GOOD)
    leader, follower = pty.openpty()
    with os.fdopen(leader, "rb") as terminal:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "sous"), "validate", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=follower,
            check=False,
        )
        os.close(follower)
        shown = terminal.read1(4096).decode()
    assert done.returncode == 0
    assert "loading the connectors…" in shown


def test_packs_commands_answer_in_json(tmp_path: Path, capsys) -> None:
    library = Path(__file__).resolve().parents[1] / "recipes" / "packs"
    database = ["--database-url", f"sqlite:///{tmp_path / 'sous.db'}"]

    def run(*argv: str) -> Any:
        assert main([*argv, "--json"]) == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    built = run("packs", "build", str(library / "catalog"), "-o", str(tmp_path))
    assert Path(built["path"]).is_file() and len(built["sha256"]) == 64
    installed = run("packs", "install", built["path"], "--recipes", *database)
    assert installed["installed"] is True and installed["created"]
    name = installed["pack"]
    exported = run(
        "packs",
        "export",
        "--name",
        "mine",
        "--version",
        "1.0.0",
        "-o",
        str(tmp_path / "mine.tar.gz"),
        *database,
    )
    assert exported["path"].endswith("mine.tar.gz") and exported["sha256"]
    removed = run("packs", "uninstall", name, "--delete-recipes", *database)
    assert removed["uninstalled"] == name and isinstance(removed["deleted"], list)
