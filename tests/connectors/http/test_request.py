"""http.request against a real HTTP server on loopback (allowed explicitly by the policy)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.http import OutboundPolicy, RequestOutput, RequestParams
from connectors.http.request import (
    TEXT_LIMIT,
    HttpRetryableError,
    HttpStatusError,
    ResponseTooLarge,
    http_request,
)
from engine.clock import ManualClock
from engine.errors import PermanentError, Retry, RetryableError
from tests.connectors.http.conftest import LocalServer, MakeContext, resolver


def req(**fields: object) -> RequestParams:
    return RequestParams.model_validate(fields)


async def test_get_json(server: LocalServer, make_ctx: MakeContext) -> None:
    out = await http_request(make_ctx(), req(url=f"{server.base}/json"))
    assert out.status == 200
    assert out.json_ == {"ok": True, "items": [1, 2]}
    assert out.text == '{"ok": true, "items": [1, 2]}'
    assert out.headers["content-type"] == "application/json"
    assert out.url == f"{server.base}/json"
    assert out.elapsed_ms >= 0
    assert out.redirects == 0
    dumped = out.model_dump(mode="json")  # what the runner stores and later steps read
    assert dumped["json"] == {"ok": True, "items": [1, 2]}
    assert "json_" not in dumped
    assert "json" in RequestOutput.model_json_schema()["properties"]


async def test_post_json_with_query_headers_and_idempotency_key(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    out = await http_request(
        make_ctx(),
        req(
            method="post",
            url=f"{server.base}/echo?a=1",
            query={"sku": "CAT-EYE-01", "n": 3},
            headers={"X-Shop": "abc", "X-Count": 5},
            json={"product": {"id": 77, "qty": 0}},
        ),
    )
    echo = out.json_
    assert echo["method"] == "POST"
    assert echo["query"] == {"a": "1", "sku": "CAT-EYE-01", "n": "3"}
    assert echo["headers"]["x-shop"] == "abc"
    assert echo["headers"]["x-count"] == "5"
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["headers"]["idempotency-key"] == "run_1:call"
    assert echo["body"] == '{"product":{"id":77,"qty":0}}'


async def test_form_and_raw_bodies(server: LocalServer, make_ctx: MakeContext) -> None:
    form = await http_request(
        make_ctx(), req(method="PUT", url=f"{server.base}/echo", form={"a": "1", "b": "x y"})
    )
    assert form.json_["body"] == "a=1&b=x+y"
    assert form.json_["headers"]["content-type"] == "application/x-www-form-urlencoded"
    raw = await http_request(
        make_ctx(),
        req(
            method="PATCH",
            url=f"{server.base}/echo",
            body="<stock sku='A'>0</stock>",
            headers={"Content-Type": "application/xml", "Idempotency-Key": "mine"},
        ),
    )
    assert raw.json_["body"] == "<stock sku='A'>0</stock>"
    assert raw.json_["headers"]["idempotency-key"] == "mine"
    get = await http_request(make_ctx(), req(url=f"{server.base}/echo"))
    assert "idempotency-key" not in get.json_["headers"]


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError, match="mutually exclusive"):
        req(method="POST", url="https://erp.example/x", json={"a": 1}, form={"a": "1"})
    with pytest.raises(ValidationError, match="only absolute http"):
        req(url="ftp://files.example/x")
    with pytest.raises(ValidationError, match="only absolute http"):
        req(url="/relative")
    with pytest.raises(ValidationError, match="line break"):
        req(url="https://erp.example/", headers={"X-A": "a\r\nX-Injected: 1"})
    with pytest.raises(ValidationError, match="set by Sous"):
        req(url="https://erp.example/", headers={"Transfer-Encoding": "chunked"})
    with pytest.raises(ValidationError, match="between 100 and 599"):
        req(url="https://erp.example/", expect=[42])


async def test_expected_and_unexpected_statuses(server: LocalServer, make_ctx: MakeContext) -> None:
    out = await http_request(make_ctx(), req(url=f"{server.base}/status/404", expect=[200, 404]))
    assert out.status == 404
    assert out.text == "status 404 from the test server"
    with pytest.raises(HttpStatusError) as failed:
        await http_request(make_ctx(), req(url=f"{server.base}/status/422"))
    assert isinstance(failed.value, PermanentError)
    assert failed.value.status == 422
    assert (
        str(failed.value)
        == f"GET {server.base}/status/422 answered 422: status 422 from the test server"
    )


async def test_server_errors_are_retryable_without_retry_after(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    with pytest.raises(HttpRetryableError) as failed:
        await http_request(make_ctx(), req(url=f"{server.base}/status/503"))
    assert not isinstance(failed.value, Retry)
    assert failed.value.status == 503


async def test_retry_after_in_seconds_and_as_a_date(
    server: LocalServer, make_ctx: MakeContext, clock: ManualClock
) -> None:
    with pytest.raises(Retry) as seconds:
        await http_request(make_ctx(), req(url=f"{server.base}/status/429?retry_after=120"))
    assert seconds.value.defer == 120
    # the clock is at 2026-11-27 09:00:00 UTC; the server asks for 09:05:00
    date = "Fri, 27 Nov 2026 09:05:00 GMT"
    with pytest.raises(Retry) as dated:
        await http_request(make_ctx(), req(url=f"{server.base}/status/503?retry_after={date}"))
    assert dated.value.defer == 300
    with pytest.raises(Retry) as capped:
        await http_request(make_ctx(), req(url=f"{server.base}/status/429?retry_after=99999999"))
    assert capped.value.defer == 86_400


async def test_timeout_is_retryable(server: LocalServer, make_ctx: MakeContext) -> None:
    with pytest.raises(RetryableError, match=r"timed out after 0\.3s"):
        await http_request(make_ctx(), req(url=f"{server.base}/slow", timeout=0.3))


async def test_connection_refused_is_retryable(server: LocalServer, make_ctx: MakeContext) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RetryableError, match="failed"):
        await http_request(make_ctx(), req(url=f"http://127.0.0.1:{port}/"))


@pytest.mark.parametrize("declared", ["1", "0"])
async def test_oversize_response_is_cut_with_a_clear_error(
    server: LocalServer, make_ctx: MakeContext, declared: str
) -> None:
    """With a Content-Length it fails before reading; without one, while streaming."""
    url = f"{server.base}/big?n=5000&length={declared}"
    with pytest.raises(ResponseTooLarge, match=r"larger than max_response_bytes \(1000\)"):
        await http_request(make_ctx(), req(url=url, max_response_bytes=1000))
    out = await http_request(make_ctx(), req(url=url, max_response_bytes=5000))
    assert len(out.text) == 5000


async def test_long_text_is_truncated(server: LocalServer, make_ctx: MakeContext) -> None:
    out = await http_request(make_ctx(), req(url=f"{server.base}/text?n={TEXT_LIMIT + 10}"))
    assert out.truncated
    assert out.text == "é" * TEXT_LIMIT


async def test_redirects_are_followed_and_counted(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    out = await http_request(make_ctx(), req(url=f"{server.base}/redirect?to=/json"))
    assert (out.status, out.redirects, out.url) == (200, 1, f"{server.base}/json")
    see_other = await http_request(
        make_ctx(),
        req(method="POST", url=f"{server.base}/redirect?to=/echo&code=303", json={"a": 1}),
    )
    assert see_other.json_["method"] == "GET"
    assert see_other.json_["body"] == ""
    kept = await http_request(
        make_ctx(),
        req(method="POST", url=f"{server.base}/redirect?to=/echo&code=307", json={"a": 1}),
    )
    assert kept.json_["method"] == "POST"
    assert kept.json_["body"] == '{"a":1}'
    unfollowed = await http_request(
        make_ctx(),
        req(url=f"{server.base}/redirect?to=/json", follow_redirects=False, expect=[302]),
    )
    assert unfollowed.headers["location"] == "/json"
    with pytest.raises(PermanentError, match="redirected more than 5 times"):
        await http_request(make_ctx(), req(url=f"{server.base}/loop"))
    assert len([s for s in server.seen if s.path == "/loop"]) == 6


async def test_credentials_do_not_follow_a_redirect_to_another_origin(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    table = {"partner.shop.test": ["127.0.0.1"]}
    policy = OutboundPolicy(
        allow_hosts=("127.0.0.1", "partner.shop.test"), resolver=resolver(table)
    )
    secret = "tok-9f8e7d6c"
    headers = {"Authorization": f"Bearer {secret}", "X-Api-Sig": f"s-{secret}", "X-Plain": "kept"}
    target = f"http://partner.shop.test:{server.port}/echo"
    out = await http_request(
        make_ctx(policy, secrets={"ERP_TOKEN": secret}),
        req(url=f"{server.base}/redirect?to={target}", headers=headers),
    )
    received = out.json_["headers"]
    assert received["host"] == f"partner.shop.test:{server.port}"
    assert "authorization" not in received
    assert "x-api-sig" not in received
    assert received["x-plain"] == "kept"
    assert server.seen[0].headers["authorization"] == f"Bearer {secret}"  # the first hop had it


async def test_secrets_are_masked_in_error_messages(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    secret = "tok-1a2b3c4d"
    ctx = make_ctx(secrets={"ERP_TOKEN": secret})
    with pytest.raises(HttpStatusError) as failed:
        await http_request(
            ctx, req(url=f"{server.base}/status/401?say=bad+token+{secret}&key={secret}")
        )
    assert secret not in str(failed.value)
    assert "bad token ***" in str(failed.value)


async def test_head_is_not_held_to_the_declared_length(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    out = await http_request(
        make_ctx(), req(method="HEAD", url=f"{server.base}/big?n=5000", max_response_bytes=1000)
    )
    assert out.status == 200
    assert out.headers["content-length"] == "5000"
    assert out.text == ""


async def test_usage_counts_each_request_sent_not_one_refused_or_never_connected(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    """Each hop of a redirect is a request sent; a connection refused sent nothing."""
    import socket

    from engine.store.usage import UsageMeter, metering, usage_key

    meter = UsageMeter()
    key = usage_key("acme", "2026-12-01", "s1", "rcp_1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with metering(meter, key):
        await http_request(make_ctx(), req(url=f"{server.base}/redirect?to=/json"))
        with pytest.raises(RetryableError):
            await http_request(make_ctx(), req(url=f"http://127.0.0.1:{port}/"))
    assert meter.take() == {key: {"http_calls": 2}}
