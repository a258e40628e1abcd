"""``sous templates`` and ``sous packs`` through their argument parser, on a test database."""

from __future__ import annotations

import argparse
import json
import re
from contextlib import nullcontext
from pathlib import Path

import pytest

from engine.packs.archive import read_archive, read_folder
from engine.packs.install import PackService
from sous.cli_packs import Seams, register
from tests.packs.conftest import write_pack
from tests.templates.conftest import STOCK_TEMPLATE


@pytest.fixture
def sous(service: PackService, capsys: pytest.CaptureFixture[str]):
    def run(*argv: str) -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="sous")
        register(
            parser.add_subparsers(dest="command", required=True),
            Seams(lambda _: nullcontext(service), lambda: service.registry),
        )
        args = parser.parse_args([str(a) for a in argv])
        code = args.handler(args)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_build_inspect_install_list(sous, tmp_path: Path) -> None:
    folder = write_pack(tmp_path / "src")
    code, out, _ = sous("packs", "build", folder, "-o", tmp_path / "dist")
    archive = tmp_path / "dist" / "demo-1.0.0.tar.gz"
    assert code == 0
    assert out.splitlines()[0] == str(archive)
    digest = out.splitlines()[1].removeprefix("sha256 ")
    assert read_archive(archive.read_bytes()) == read_folder(folder)
    code, out, _ = sous("packs", "inspect", archive, "--json")
    inspected = json.loads(out)
    assert code == 0
    assert inspected["sha256"] == digest
    assert inspected["templates"][0]["inputs"] == ["threshold", "eta", "staff", "prefix"]
    code, _, err = sous("packs", "install", archive, "--sha256", "0" * 64)
    assert code == 1
    assert "SHA-256 mismatch" in err
    code, out, _ = sous(
        "packs",
        "install",
        archive,
        "--sha256",
        digest,
        "--recipes",
        "--store",
        "s1",
        "--store",
        "s2",
        "--set",
        "threshold=9",
    )
    assert code == 0
    assert out.splitlines() == [
        "demo@1.0.0 installed",
        "  created recipe log-every-stock-change",
        "  created recipe stock-alert-s1",
        "  created recipe stock-alert-s2",
    ]
    code, out, _ = sous("packs", "list", "--json")
    [listed] = json.loads(out)
    assert (
        listed["name"],
        listed["version"],
        listed["installed"],
        listed["recipes"],
        listed["sha256"],
    ) == ("demo", "1.0.0", True, 3, digest)  # the ready-made recipe too


def test_templates_list_show_instantiate(sous, service: PackService, tmp_path: Path) -> None:
    service.install("default", write_pack(tmp_path / "src"))
    code, out, _ = sous("templates", "list")
    assert code == 0
    assert out.splitlines()[1].split()[:4] == [
        "demo/stock-alert",
        "1.0.0",
        "test.stock",
        "yes",
    ]
    code, out, _ = sous("templates", "show", "demo/stock-alert", "--schema")
    assert json.loads(out)["properties"]["threshold"]["maximum"] == 1000
    code, out, _ = sous("templates", "show", "demo/stock-alert")
    assert re.search(r"threshold\s+integer\s+5\s+Warn at or below", out)
    code, out, _ = sous(
        "templates", "instantiate", "demo/stock-alert", "--set", "threshold=3", "--dry-run"
    )
    assert code == 0
    assert "- <=:\n  - var: product.inventory_level\n  - 3\n" in out
    assert service.recipes.list("default") == []
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text("staff: [ops@example.com]\nthreshold: 4\n")
    code, out, _ = sous(
        "templates",
        "instantiate",
        "demo/stock-alert",
        "--inputs",
        inputs,
        "--set",
        "threshold=6",
        "--id",
        "alert",
    )
    assert code == 0
    assert out == "created recipe alert from demo@1.0.0/stock-alert\n"
    assert service.recipes.get("default", "alert").recipe.conditions[0]["<="][1] == 6
    code, _, err = sous(
        "templates", "instantiate", "demo/stock-alert", "--set", "threshold=-1", "--set", "oops"
    )
    assert code == 2
    assert "--set takes NAME=VALUE, not 'oops'" in err
    code, _, err = sous("templates", "instantiate", "demo/stock-alert", "--set", "threshold=-1")
    assert code == 1
    assert err == "  inputs.threshold: must be ≥ 0\n"
    code, _, err = sous("templates", "show", "demo/nope")
    assert code == 1
    assert "template 'demo/nope' not found" in err


def test_upgrade_is_a_dry_run_until_applied(sous, service: PackService, tmp_path: Path) -> None:
    service.install("default", write_pack(tmp_path / "v1"))
    sous("templates", "instantiate", "demo/stock-alert")
    renamed = STOCK_TEMPLATE.replace("  prefix:\n", "  intro:\n").replace(
        "inputs.prefix", "inputs.intro"
    )
    sous(
        "packs",
        "install",
        write_pack(tmp_path / "v2", version="2.0.0", templates={"t.yaml": renamed}),
    )
    code, out, _ = sous("packs", "upgrade", "demo")
    assert code == 1
    assert "problem: inputs.prefix: removed in 2.0.0" in out
    assert "nothing was changed" in out
    code, out, _ = sous("packs", "upgrade", "demo", "--map", "prefix=intro")
    assert code == 0
    assert "input 'prefix' → 'intro'" in out
    assert "dry run: nothing was changed" in out
    assert service.instances("default")[0].pack_version == "1.0.0"
    code, out, _ = sous("packs", "upgrade", "demo", "--map", "prefix=intro", "--apply", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["applied"] is True
    assert result["recipes"][0]["to"] == "2.0.0"
    assert service.instances("default")[0].pack_version == "2.0.0"
    code, _, err = sous("packs", "uninstall", "demo@2.0.0")
    assert code == 1
    assert "recipes were made from demo@2.0.0: stock-alert" in err
    code, out, _ = sous("packs", "uninstall", "demo@2.0.0", "--delete-recipes")
    assert code == 0
    assert out == "uninstalled demo@2.0.0\n  deleted recipe stock-alert\n"
    code, _, err = sous("packs", "uninstall", "demo")
    assert code == 2
    assert "NAME@VERSION" in err


def test_export_to_archive_and_folder(sous, service: PackService, tmp_path: Path) -> None:
    service.install("default", write_pack(tmp_path / "src"), recipes=True)
    code, out, _ = sous(
        "packs", "export", "--name", "mine", "--version", "0.2.0", "-o", tmp_path / "mine.tar.gz"
    )
    assert code == 0
    assert out.startswith(f"{tmp_path / 'mine.tar.gz'}\nsha256 ")
    assert (
        "recipes/log-every-stock-change.yaml"
        in read_archive((tmp_path / "mine.tar.gz").read_bytes()).files
    )
    code, out, _ = sous(
        "packs", "export", "--name", "mine", "--version", "0.2.0", "-o", tmp_path / "folder"
    )
    assert code == 0
    assert (tmp_path / "folder" / "pack.yaml").is_file()
    code, _, err = sous("packs", "export", "--name", "mine", "--version", "two")
    assert code == 1
    assert "'two' is not a semantic version" in err
