"""Build the wheel, install it into a fresh virtual environment and watch it work from an empty
folder: ``sous templates list`` lists the shipped library, and ``sous serve --sandbox`` loads
the example recipes and fires the sold-out recipe. Exit 0 when it did.

    python scripts/wheel_check.py        (make wheel-check; CI runs it)

The wheel is built from a copy of the files git knows (committed or not, ignored ones left
out), so the check sees what a clean clone would ship. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRED = "sold-out-to-backorder: succeeded"
TIMEOUT = 180.0


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    print("+", " ".join(map(str, args)), flush=True)
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def copy_sources(target: Path) -> None:
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def watch_sandbox(sous: Path, folder: Path, env: dict[str, str]) -> list[str]:
    """Run ``sous serve --sandbox`` until the sold-out recipe fires (or time runs out)."""
    command = [str(sous), "serve", "--sandbox", "--port", str(free_port())]
    print("+", " ".join(command), flush=True)
    proc = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if FIRED in line:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return lines


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sous-wheel-check-") as tmp:
        work = Path(tmp)
        src, dist, venv, empty = (work / n for n in ("src", "dist", "venv", "empty"))
        for folder in (src, dist, empty):
            folder.mkdir()
        copy_sources(src)
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, src)
        [wheel] = dist.glob("sous-*.whl")
        run(sys.executable, "-m", "venv", venv)
        pip: list[str | Path] = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
        run(*pip, "-c", ROOT / "constraints.txt", wheel)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOUS_")}
        env |= {"NO_COLOR": "1"}
        sous = venv / "bin" / "sous"
        listed = run(
            sous,
            "templates",
            "list",
            "--database-url",
            f"sqlite:///{work}/t.db",
            cwd=empty,
            env=env,
        )
        if "backorders/" not in listed:
            raise SystemExit(f"`sous templates list` shows no shipped template:\n{listed}")
        output = "".join(watch_sandbox(sous, empty, env))
        if FIRED not in output:
            raise SystemExit(f"the sold-out recipe did not fire within {TIMEOUT:g}s:\n{output}")
    took = time.monotonic() - started
    print(f"wheel check passed: {wheel.name} installed, the recipe fired ({took:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
