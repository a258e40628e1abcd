"""Property-based tests of the whole OpenAPI document: with a valid admin key, no request
produces a 5xx and every response conforms to what the document promises.

Schema-valid bodies may still be refused with 422 for what a schema cannot say (an unknown
action name, a store that refuses its token), so the "schema-valid data is accepted" check is
off. The live stream is left out: it is an endless text/event-stream (tested in test_platform).
The engine here is not started (its workers would run on another event loop than the one
schemathesis serves the app on); runs stay queued, which is all these checks need.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlmodel import SQLModel

import api.tables  # noqa: F401
from api.app import create_app
from api.deps import Sandbox
from api.keys import create_key
from engine import Engine
from engine.clock import ManualClock
from engine.registry import Registry
from engine.store.db import Database
from sous.container import Container
from sous.settings import Settings
from tests.api.conftest import RECIPE, SANDBOX_URL, fake_bigcommerce

EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}


@pytest.fixture
def admin_key(db: Database) -> str:
    SQLModel.metadata.create_all(db.engine)
    return create_key(db, "default", ["admin"], "schemathesis")


@pytest.fixture
def api_schema(db: Database, registry: Registry, clock: ManualClock, admin_key: str) -> Any:
    engine = Engine(db, registry, clock=clock)
    stored = engine.recipes.create("default", {**RECIPE, "conditions": []})
    engine.refresh(stored)
    container = Container(Settings(), db, registry, engine, engine.services, clock)
    sandbox = Sandbox(SANDBOX_URL, transport=httpx.MockTransport(fake_bigcommerce))
    app = create_app(container, sandbox=sandbox)
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/v1/stream")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(
    api_schema: Any, admin_key: str, mode: GenerationMode
) -> None:
    headers = {"Authorization": f"Bearer {admin_key}"}
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.query) or operation.body):
            continue  # only free-form path strings: there is no invalid input to send

        @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # gather every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
