"""The two things a newcomer runs first, through the console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sous.sandbox import free_port

SOUS = str(Path(sys.executable).parent / "sous")


def test_demo_runs_the_headline_scenario(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
    result = subprocess.run(
        [SOUS, "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert (
        report["run"]["recipe"] == "sold-out-to-backorder"
        and report["run"]["status"] == "succeeded"
    )
    assert report["product"]["availability"] == "preorder"
    assert report["product"]["preorder_release_date"]
    assert report["emails"][0]["to"] == ["warehouse@example.com"]
    assert "Cat Eye Sunglasses sold out" in report["emails"][0]["subject"]


def test_serve_sandbox_shows_a_recipe_firing(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")} | {"NO_COLOR": "1"}
    proc = subprocess.Popen(
        [SOUS, "serve", "--sandbox", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "sold-out-to-backorder: succeeded" in line:
                break
        output = "".join(lines)
        assert "sold-out-to-backorder: succeeded" in output, output
        key = next(line.split(":", 1)[1].strip() for line in lines if "API key (sandbox)" in line)
        headers = {"Authorization": f"Bearer {key}"}
        messages = httpx.get(
            f"http://127.0.0.1:{port}/v1/sandbox/messages", headers=headers, timeout=10
        ).json()
        assert "count" in messages, messages
        assert messages["count"] >= 1
        runs = httpx.get(f"http://127.0.0.1:{port}/v1/runs", headers=headers, timeout=10).json()
        assert any(r["status"] == "succeeded" for r in runs["data"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode is not None
