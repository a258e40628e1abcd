"""``make fuzz``: schemathesis, from outside, against a live ``sous serve --sandbox``.

Starts the sandbox on a free port (in a scratch folder, so its database is its own), reads
the sandbox's API key from its banner, and runs ``schemathesis run`` with every check and
every phase (examples, coverage, fuzzing, stateful) against it. Exits non-zero on any failure
or error, on fewer than 80 % of the OpenAPI links covered, or when a request goes unanswered.

    python -m tests.fuzz                      # SQLite
    python -m tests.fuzz --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

A PostgreSQL URL names a server: the run creates (and afterwards drops) a database of its own
beside the one named, so the sandbox starts empty as it does on SQLite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from sous.sandbox import free_port

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = ["2xx", "401", "403", "404", "409"]
KEY = re.compile(r"API key \(sandbox\):\s+(sous_\S+)")
LINKS_FLOOR = 0.8


@contextlib.contextmanager
def scratch_postgres(url: str) -> Iterator[str]:
    """A fresh database on the server ``url`` names; dropped afterwards."""
    import psycopg

    server, _, _ = url.rpartition("/")
    name = f"sous_fuzz_{os.getpid()}"
    admin = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def sandbox(database_url: str | None, folder: Path) -> Iterator[tuple[str, str, Path]]:
    """``sous serve --sandbox`` on a free port; yields its base URL, API key and log file."""
    port = free_port()
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("SOUS_DATABASE_URL", None)
    if database_url:
        env["SOUS_DATABASE_URL"] = database_url
    log = folder / "sandbox.log"
    sous = Path(sys.executable).with_name("sous")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(sous), "serve", "--sandbox", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}", _wait_for_key(process, log), log
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_key(process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = KEY.search(log.read_text())
        if found:
            return found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"fuzz: the sandbox did not start; its log:\n{log.read_text()}")


def write_config(base: str, folder: Path) -> Path:
    """schemathesis settings: schema-valid data must be accepted, except where the document
    says an operation refuses more with 422 (its 422 answer's ``x-refused-when``)."""
    doc = httpx.get(f"{base}/openapi.json", timeout=30).raise_for_status().json()
    lines = ["# written by tests/fuzz.py from the API's own document"]
    for item in doc["paths"].values():
        for op in item.values():
            refused = op.get("responses", {}).get("422", {}).get("x-refused-when")
            if not refused:
                continue
            statuses = [*ACCEPTED, "422", *(["428"] if "428" in op["responses"] else [])]
            lines += [
                "[[operations]]",
                f'include-operation-id = "{op["operationId"]}"',
                f"checks.positive_data_acceptance.expected-statuses = {json.dumps(statuses)}",
            ]
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def run_schemathesis(base: str, key: str, folder: Path, args: argparse.Namespace) -> int:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(write_config(base, folder)),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(args.max_examples),
        "--header",
        f"Authorization: Bearer {key}",
        "--request-timeout",
        "10",
        "--workers",
        str(args.workers),
        "--seed",
        str(args.seed),
        "--report",
        "ndjson",
        "--report-dir",
        str(folder),
        "--exclude-path",
        "/v1/stream",
    ]
    print("fuzz:", " ".join(command).replace(key, "sous_…"), flush=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    return subprocess.call(command, cwd=folder, env=env)


def links_covered(folder: Path) -> tuple[int, int]:
    """(covered, total) OpenAPI links, from the stateful phase's events in the report."""
    covered = total = 0
    for report in folder.glob("*.ndjson"):
        for line in report.read_text().splitlines():
            text = json.dumps(json.loads(line))
            for match in re.finditer(r'"links_selected": (\d+), "links_total": (\d+)', text):
                covered, total = int(match.group(1)), int(match.group(2))
    return covered, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL server to use")
    parser.add_argument("--max-examples", type=int, default=12, help="cases per operation")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="sous-fuzz-"))
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            url = args.database_url
            if url and url.startswith("postgresql"):
                url = stack.enter_context(scratch_postgres(url))
            base, key, log = stack.enter_context(sandbox(url, folder))
            try:
                code = run_schemathesis(base, key, folder, args)
                httpx.get(f"{base}/healthz", timeout=10).raise_for_status()
            finally:
                errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
                print("fuzz: errors in the sandbox's log:", *errors[-20:] or ["none"], sep="\n")
        stalls = log.read_text().count("database is locked")
        print(f"fuzz: {time.monotonic() - started:.0f} s; 'database is locked' in log: {stalls}")
        return code
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
