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
from typing import Any

import httpx

from sous.sandbox import free_port

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = ["2xx", "401", "403", "404", "409"]
KEY = re.compile(r"API key \(sandbox\):\s+(sous_\S+)")
LINKS_FLOOR = 0.8
GENERATED = re.compile(r"(\d+) generated")
UNIT_PHASES = "examples,coverage,fuzzing"
SEEDS = 3
SEED_PACKS = ("catalog", "orders", "customers")
SEED_RECIPE: dict[str, Any] = {
    "id": "fuzz-seed",
    "name": "Log each seed event",
    "trigger": {"type": "custom.fuzz_seed"},
    "actions": [{"id": "log", "use": "core.log", "with": {"message": "seed {{ product.id }}"}}],
}
SEED_APPROVAL: dict[str, Any] = {
    "id": "fuzz-approval",
    "name": "Ask before each seed event goes on",
    "trigger": {"type": "custom.fuzz_approval"},
    "actions": [
        {"id": "ask", "use": "core.approval", "with": {"title": "Go on?", "timeout": "1d"}}
    ],
}


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


def write_config(base: str, folder: Path, args: argparse.Namespace) -> Path:
    """schemathesis settings: schema-valid data must be accepted, except where the document
    says an operation refuses more with 422 (its 422 answer's ``x-refused-when``)."""
    doc = httpx.get(f"{base}/openapi.json", timeout=30).raise_for_status().json()
    lines = [
        "# written by tests/fuzz.py from the API's own document",
        "[phases.stateful]",
        f"max-steps = {args.stateful_steps}",
        "[phases.stateful.generation]",
        f"max-examples = {args.stateful_scenarios}",
        # The walk follows ids with valid requests (tests/fuzz_hooks.py); refused data is
        # what the examples, coverage and fuzzing phases send to every operation.
        'mode = "positive"',
        # Only the document's own links: they are how a client learns where ids flow, and
        # the walk is measured against them (inference adds a link from every answer with a
        # recipe in it to every operation on that recipe).
        "[phases.stateful.inference]",
        "algorithms = []",
    ]
    for item in doc["paths"].values():
        for op in item.values():
            lines += operation_checks(op)
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def operation_checks(op: dict[str, Any]) -> list[str]:
    """What the document lets this operation answer beyond the defaults: a 422 it names in
    ``x-refused-when`` to valid-looking data, and a 503 it documents (an upstream store that is
    busy or out of quota) without that being a server error."""
    responses = op.get("responses", {})
    settings = []
    if responses.get("422", {}).get("x-refused-when"):
        statuses = [*ACCEPTED, "422", *(["428"] if "428" in responses else [])]
        settings.append(
            f"checks.positive_data_acceptance.expected-statuses = {json.dumps(statuses)}"
        )
    if "503" in responses:
        settings.append(
            'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]'
        )
    if not settings:
        return []
    return ["[[operations]]", f'include-operation-id = "{op["operationId"]}"', *settings]


def run_schemathesis(
    base: str, key: str, folder: Path, phases: str, examples: int, args: argparse.Namespace
) -> tuple[int, int]:
    """One ``schemathesis run`` over ``phases``; its exit code and the cases it generated."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(write_config(base, folder, args)),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(examples),
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
    if phases == "stateful":
        # A suite ends when the sandbox's answers make Hypothesis's draws differ from an
        # earlier scenario's (FlakyStrategyDefinition): with a time budget schemathesis
        # starts another suite on a new seed until the budget is spent.
        command += ["--max-time", str(args.stateful_seconds)]
    print("fuzz:", " ".join(command).replace(key, "sous_…"), flush=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    env["SOUS_FUZZ_PHASES"] = phases
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    cases = 0
    for line in process.stdout:
        print(line, end="", flush=True)
        found = GENERATED.search(line)
        if found:
            cases = int(found.group(1))
    return process.wait(), cases


def seed(base: str, key: str) -> None:
    """Put back what the earlier phases may have taken and add what the sandbox starts without,
    so every list the links read from has a first item even after the walk's random deletes:
    the demo store (reconnected if a fuzzed request disconnected it), and :data:`SEEDS` each
    of recipes, events that ran them, runs waiting for an approval, secrets, inbound hooks and
    library packs; and, last, a
    spare key, so the newest key a link may revoke is not
    the one the fuzzer calls with."""
    from sous.sandbox import DEMO_STORE, DEMO_TOKEN

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:

        def call(method: str, path: str, body: Any, ok: tuple[int, ...]) -> None:
            answer = api.request(method, path, json=body)
            if answer.status_code not in ok:
                raise SystemExit(
                    f"fuzz: seeding {method} {path}: {answer.status_code} {answer.text}"
                )

        stores = api.get("/v1/stores").raise_for_status().json()["data"]
        if not any(s["store_hash"] == DEMO_STORE for s in stores):
            body = {"store_hash": DEMO_STORE, "access_token": DEMO_TOKEN, "name": "Sandbox store"}
            call("POST", "/v1/stores", body, (201,))
        if api.get(f"/v1/recipes/{SEED_APPROVAL['id']}").status_code == 404:
            call("POST", "/v1/recipes", SEED_APPROVAL, (201,))
        for n in range(SEEDS):
            recipe = {**SEED_RECIPE, "id": f"{SEED_RECIPE['id']}-{n}"}
            if api.get(f"/v1/recipes/{recipe['id']}").status_code == 404:
                call("POST", "/v1/recipes", recipe, (201,))
            event = {"type": "custom.fuzz_seed", "payload": {"product": {"id": n + 1}}}
            call("POST", "/v1/events", event, (202,))
            call("POST", "/v1/events", {**event, "type": "custom.fuzz_approval"}, (202,))
            call("PUT", f"/v1/secrets/FUZZ_SEED_{n}", {"value": "seed"}, (200, 201, 204))
            call("POST", "/v1/hooks", {"name": f"fuzz_seed_{n}"}, (201, 409))
            call("POST", "/v1/packs", {"library": SEED_PACKS[n % len(SEED_PACKS)]}, (200, 201))
        call("POST", "/v1/keys", {"name": "fuzz spare", "scopes": ["read"]}, (201,))


def links_covered(folder: Path) -> tuple[set[str], int]:
    """(links covered, links in the document), as schemathesis counts them: a link is covered
    when a stateful scenario's step applied it (``is_transition_applied``); the total is the
    stateful phase's ``transitions_total``."""
    covered: set[str] = set()
    total = 0
    for report in folder.glob("*.ndjson"):
        for line in report.read_text().splitlines():
            event = json.loads(line)
            started = event.get("PhaseStarted", {})
            if started.get("phase", {}).get("name") == "stateful":
                total = max(total, (started.get("payload") or {}).get("transitions_total", 0))
            finished = event.get("ScenarioFinished")
            if not finished or finished.get("phase") != "stateful" or finished.get("is_final"):
                continue
            if finished.get("status") in ("interrupted", "skip"):
                continue
            for case in finished.get("recorder", {}).get("cases", {}).values():
                transition = case.get("transition")
                if transition and case.get("is_transition_applied"):
                    covered.add(transition["id"])
    return covered, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL server to use")
    parser.add_argument("--max-examples", type=int, default=12, help="cases per operation")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--stateful-scenarios", type=int, default=150)
    parser.add_argument("--stateful-steps", type=int, default=10, help="steps per scenario")
    parser.add_argument(
        "--stateful-seconds", type=int, default=360, help="time for the stateful suites"
    )
    parser.add_argument("--keep", action="store_true", help="keep the report folder")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="sous-fuzz-"))
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            url = args.database_url
            if url and url.startswith("postgresql"):
                url = stack.enter_context(scratch_postgres(url))
            base, key, log = stack.enter_context(sandbox(url, folder))
            units, walk = folder / "units", folder / "stateful"
            units.mkdir()
            walk.mkdir()
            try:
                code, cases = run_schemathesis(
                    base, key, units, UNIT_PHASES, args.max_examples, args
                )
                seed(base, key)
                stateful_code, steps = run_schemathesis(
                    base, key, walk, "stateful", args.stateful_scenarios, args
                )
                httpx.get(f"{base}/healthz", timeout=10).raise_for_status()
            finally:
                errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
                print("fuzz: errors in the sandbox's log:", *errors[-20:] or ["none"], sep="\n")
        stalls = log.read_text().count("database is locked")
        covered, total = links_covered(walk)
        share = len(covered) / total if total else 0.0
        print(
            f"fuzz: {cases} cases in the examples, coverage and fuzzing phases, {steps} in the "
            f"stateful phase; links covered {len(covered)} of {total} ({share:.0%}, floor "
            f"{LINKS_FLOOR:.0%}); {time.monotonic() - started:.0f} s; "
            f"'database is locked' in the log: {stalls}"
        )
        if share < LINKS_FLOOR:
            print("fuzz: too few links covered", flush=True)
        return code or stateful_code or int(share < LINKS_FLOOR)
    finally:
        if args.keep:
            print(f"fuzz: reports kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
