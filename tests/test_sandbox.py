"""The sandbox as a newcomer meets it: its banner says where its database is and that it starts
fresh; CLI commands run with ``SOUS_SANDBOX=1`` reach that database (a key they make works on the
running sandbox, a recipe they make fires there); the banner's "sell out another product" command
fires the sold-out recipe; and each run's console line shows the e-mail that run sent, if any."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sous.container import Container
from sous.sandbox import NEXT_PRODUCT, Sandbox, free_port
from sous.serve import running
from sous.settings import load_settings

SOUS = str(Path(sys.executable).parent / "sous")
FINAL = ("succeeded", "succeeded_with_errors", "failed", "loop_stopped")


async def sous(*args: str, cwd: Path) -> str:
    """Run the console script with ``SOUS_SANDBOX=1`` (without blocking the sandbox's loop)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    proc = await asyncio.create_subprocess_exec(
        SOUS,
        *args,
        cwd=cwd,
        env=env | {"SOUS_SANDBOX": "1", "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture
async def sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[tuple[Container, str]]:
    """A running sandbox, started over a left-over database, and the banner it printed."""
    for name in [k for k in os.environ if k.startswith("SOUS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sous-data").mkdir()
    (tmp_path / "sous-data" / "sandbox.db").write_text("left over from a previous start")
    settings = load_settings(port=free_port())
    async with running(settings, sandbox=True, shopper=False) as (container, _):
        box = container.sandbox
        assert isinstance(box, Sandbox)
        await asyncio.wait_for(box.ready.wait(), 60)
        yield container, capsys.readouterr().out


def finished_runs(container: Container) -> asyncio.Queue[dict[str, Any]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    container.engine.subscribe(
        lambda kind, data: (
            queue.put_nowait(data) if kind == "run" and data.get("status") in FINAL else None
        )
    )
    return queue


async def test_the_sandbox_says_where_its_fresh_database_is_and_the_cli_reaches_it(
    sandbox: tuple[Container, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    container, banner = sandbox
    assert "sous-data/sandbox.db, emptied at every start" in banner, banner
    assert "SOUS_SANDBOX=1 sous keys create --workspace sandbox" in banner
    key = (await sous("keys", "create", "--workspace", "sandbox", cwd=tmp_path)).split()[-1]
    api = f"http://127.0.0.1:{container.settings.port}"
    async with httpx.AsyncClient(base_url=api) as client:
        listed = await client.get("/v1/recipes", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200, listed.text
    assert "sold-out-to-backorder" in {r["id"] for r in listed.json()["data"]}


async def test_the_banner_sells_out_a_product_and_each_run_shows_its_own_mail(
    sandbox: tuple[Container, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    container, banner = sandbox
    # a recipe made by the CLI in the sandbox's database fires in the running sandbox
    await sous(
        "templates",
        "instantiate",
        "backorders/sold-out-backorder",
        "--workspace",
        "sandbox",
        "--store",
        "sousdemo",
        "--id",
        "made-by-the-cli",
        "--set",
        "staff=staff@example.com",
        cwd=tmp_path,
    )
    for _ in range(100):  # the sandbox looks for changed recipes every second
        if any(c.recipe.id == "made-by-the-cli" for c in container.engine.index.by_uid.values()):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the running sandbox did not pick up the recipe the CLI made")
    runs = finished_runs(container)
    url = re.search(r"curl -X PUT (\S+)", banner)
    body = re.search(r"-d '(\{.*\})'", banner)
    assert url and body, banner
    async with httpx.AsyncClient() as client:
        answer = await client.put(
            url.group(1), content=body.group(1), headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    done: dict[str, dict[str, Any]] = {}
    while {"sold-out-to-backorder", "made-by-the-cli"} - set(done):
        run = await asyncio.wait_for(runs.get(), 30)
        stored = container.engine.recipes.by_uid(run["recipe_uid"])
        done[stored.recipe.id if stored else run["recipe_uid"]] = run
    assert done["sold-out-to-backorder"]["status"] == "succeeded"
    await asyncio.sleep(0)
    printed = capsys.readouterr().out.splitlines()
    mails: dict[str, str | None] = {}
    for index, line in enumerate(printed):
        found = re.match(r"\s+run (\S+)\s+(\S+): (\S+)", line)
        if found:
            following = printed[index + 1] if index + 1 < len(printed) else ""
            mails[found.group(2)] = following.strip() if "e-mail to" in following else None
    assert mails["sold-out-to-backorder"] == (
        f"e-mail to warehouse@example.com: {NEXT_PRODUCT} sold out; backorder open (limit 50)"
    ), printed
    assert (mails["made-by-the-cli"] or "").startswith("e-mail to staff@example.com"), printed
    assert json.loads(body.group(1))["level"] == 0


async def test_the_banners_install_link_installs_sous_as_an_app(
    sandbox: tuple[Container, str],
) -> None:
    """A newcomer opens the install link: the simulated control panel starts the OAuth code
    grant, Sous exchanges the code and lands the browser in the console, signed in."""
    from api.console.auth import find_session

    container, banner = sandbox
    link = re.search(r"(http://\S+/apps/\S+/install)", banner)
    assert link, banner
    async with httpx.AsyncClient(follow_redirects=True, timeout=30) as browser:
        page = await browser.get(link.group(1))
        assert page.status_code == 200, page.text
        assert page.url.path == "/console/"
        token = browser.cookies.get("sous_session")
    assert token
    visitor = find_session(container.db, token, container.clock.now())
    assert visitor is not None and visitor.workspace == "sandbox"
    assert visitor.scopes == {"read", "write", "admin"}
    with container.db.session() as session:
        from connectors.bigcommerce.single_click.models import BcAppInstallRow

        install = session.get(BcAppInstallRow, "sousdemo")
        assert install is not None and install.workspace_id == "sandbox"
