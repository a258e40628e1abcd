"""The outbound guard: what http.request may connect to, checked at connect time."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from pydantic import ValidationError

from connectors.http import OutboundPolicy, OutboundRefused, RequestParams, services_from_settings
from connectors.http.guard import GuardedSyncTransport, address_problem
from connectors.http.request import http_request
from engine.context import Services
from engine.store.db import Database
from sous.settings import Settings, load_settings
from tests.connectors.http.conftest import LocalServer, MakeContext, resolver


def req(url: str) -> RequestParams:
    return RequestParams.model_validate({"url": url})


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("100.64.1.1", "a carrier-grade NAT address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("168.63.129.16", "a cloud metadata address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("64:ff9b::a01:203", "a private address"),  # NAT64 of 10.1.2.3
        ("2002:c0a8:101::1", "a private address"),  # 6to4 of 192.168.1.1
        ("192.0.2.10", "a private address"),  # documentation range
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


async def test_loopback_is_refused_by_default(server: LocalServer, make_ctx: MakeContext) -> None:
    with pytest.raises(
        OutboundRefused, match=r"refused to connect to 127.0.0.1: a loopback address"
    ):
        await http_request(make_ctx(OutboundPolicy()), req(f"{server.base}/json"))
    with pytest.raises(
        OutboundRefused, match="loopback"
    ):  # no policy registered: the strict default
        await http_request(make_ctx(None), req(f"{server.base}/json"))
    with pytest.raises(OutboundRefused, match="loopback"):
        await http_request(make_ctx(OutboundPolicy()), req(f"http://[::1]:{server.port}/json"))
    assert server.seen == []


async def test_names_resolving_to_private_addresses_are_refused(make_ctx: MakeContext) -> None:
    table = {
        "intranet.shop.test": ["10.1.2.3"],
        "mixed.shop.test": ["93.184.215.14", "192.168.0.7"],
    }
    policy = OutboundPolicy(resolver=resolver(table))
    with pytest.raises(OutboundRefused) as refused:
        await http_request(make_ctx(policy), req("https://intranet.shop.test/api"))
    assert (refused.value.host, refused.value.address) == ("intranet.shop.test", "10.1.2.3")
    assert "a private address" in str(refused.value)
    with pytest.raises(
        OutboundRefused, match=r"\(192.168.0.7\): a private address"
    ):  # one bad record is enough
        await http_request(make_ctx(policy), req("https://mixed.shop.test/api"))


async def test_metadata_is_refused_even_when_private_addresses_are_allowed(
    make_ctx: MakeContext,
) -> None:
    calls: list[str] = []
    policy = OutboundPolicy(allow_private=True, resolver=resolver({}, calls))
    with pytest.raises(OutboundRefused, match="a cloud metadata address"):
        await http_request(make_ctx(policy), req("http://169.254.169.254/latest/meta-data/"))
    with pytest.raises(OutboundRefused, match="a cloud metadata address"):
        await http_request(make_ctx(policy), req("http://[fd00:ec2::254]/latest/meta-data/"))
    with pytest.raises(OutboundRefused, match="a cloud metadata host"):
        await http_request(
            make_ctx(policy), req("http://metadata.google.internal./computeMetadata/v1/")
        )
    assert calls == []  # refused without asking DNS


def test_allow_lists() -> None:
    policy = OutboundPolicy(
        allow_hosts=("erp.lan", "*.corp.example", "10.20.0.0/16", "169.254.169.254")
    )
    assert policy.host_allowed("ERP.lan.")
    assert policy.host_allowed("stock.corp.example")
    assert policy.host_allowed("corp.example")
    assert not policy.host_allowed("evilcorp.example")
    assert policy.refusal("x.shop.test", ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal("x.shop.test", ipaddress.ip_address("10.21.0.1")) == "a private address"
    assert policy.refusal("x.shop.test", ipaddress.ip_address("169.254.169.254")) is None
    assert policy.refusal("erp.lan", ipaddress.ip_address("192.168.1.5")) is None
    private = OutboundPolicy(allow_private=True)
    assert private.refusal("db.lan", ipaddress.ip_address("192.168.1.5")) is None
    assert (
        private.refusal("db.lan", ipaddress.ip_address("169.254.169.254"))
        == "a cloud metadata address"
    )
    with pytest.raises(OutboundRefused, match="only http and https"):
        OutboundPolicy().check_url(httpx.URL("file:///etc/passwd"))


async def test_redirect_to_a_refused_address_is_refused(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    policy = OutboundPolicy(allow_hosts=("127.0.0.1",))
    with pytest.raises(OutboundRefused, match=r"10.0.0.1: a private address"):
        await http_request(
            make_ctx(policy), req(f"{server.base}/redirect?to=http://10.0.0.1/admin")
        )
    with pytest.raises(OutboundRefused, match="a cloud metadata address"):
        await http_request(
            make_ctx(policy), req(f"{server.base}/redirect?to=http://169.254.169.254/latest/")
        )
    with pytest.raises(OutboundRefused, match="only http and https"):
        await http_request(make_ctx(policy), req(f"{server.base}/redirect?to=gopher://127.0.0.1/"))
    assert [s.path.split("?")[0] for s in server.seen] == ["/redirect"] * 3


async def test_connects_to_the_checked_address_with_the_original_host(
    server: LocalServer, make_ctx: MakeContext
) -> None:
    """One lookup per connection, and the socket goes to the address that lookup returned and
    the guard checked: a second, different answer (DNS rebinding) is never asked for. The Host
    header still names the URL's host."""
    calls: list[str] = []
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    policy = OutboundPolicy(allow_hosts=("127.0.0.1/32",), resolver=rebinding)
    out = await http_request(make_ctx(policy), req(f"http://erp.shop.test:{server.port}/echo"))
    assert out.json_["headers"]["host"] == f"erp.shop.test:{server.port}"
    assert calls == ["erp.shop.test"]
    with pytest.raises(
        OutboundRefused, match=r"\(10.9.9.9\)"
    ):  # the next connection asks again, and is checked again
        await http_request(make_ctx(policy), req(f"http://erp.shop.test:{server.port}/echo"))


async def test_unresolvable_host_is_retryable(make_ctx: MakeContext) -> None:
    from engine.errors import RetryableError

    policy = OutboundPolicy(resolver=resolver({}))
    with pytest.raises(RetryableError, match=r"cannot resolve nowhere\.shop\.test"):
        await http_request(make_ctx(policy), req("https://nowhere.shop.test/"))


def test_services_from_settings(tmp_path) -> None:
    services = Services()
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        settings = Settings(outbound_allow_private=True, outbound_allow_hosts=["erp.lan", " "])
        services_from_settings(settings, services, db)
    finally:
        db.dispose()
    policy = services.get(OutboundPolicy)
    assert policy.allow_private
    assert policy.allow_hosts == ("erp.lan",)
    assert OutboundPolicy.from_settings(Settings()).allow_private is False


@pytest.mark.parametrize(
    ("value", "hosts"),
    [
        ("erp.lan", ("erp.lan",)),
        ("erp.lan, api.example.com,,10.20.0.0/16", ("erp.lan", "api.example.com", "10.20.0.0/16")),
        ('["erp.lan", "*.corp.example"]', ("erp.lan", "*.corp.example")),
        ("", ()),
    ],
)
def test_allow_hosts_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, hosts: tuple[str, ...]
) -> None:
    monkeypatch.setenv("SOUS_OUTBOUND_ALLOW_HOSTS", value)
    policy = OutboundPolicy.from_settings(load_settings())
    assert policy.allow_hosts == hosts
    assert policy.host_allowed("erp.lan") is ("erp.lan" in hosts)


def test_allow_hosts_with_broken_json_says_how_to_write_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOUS_OUTBOUND_ALLOW_HOSTS", '["erp.lan"')
    with pytest.raises(ValidationError, match="comma-separated"):
        load_settings()


def test_a_blocking_client_is_guarded_too(server: LocalServer) -> None:
    calls: list[str] = []
    policy = OutboundPolicy(resolver=resolver({"erp.shop.test": ["10.1.2.3"]}, calls))
    with httpx.Client(transport=GuardedSyncTransport(policy)) as client:
        with pytest.raises(OutboundRefused, match=r"erp\.shop\.test \(10\.1\.2\.3\): a private"):
            client.get("https://erp.shop.test/")
        with pytest.raises(OutboundRefused, match="a loopback address"):
            client.get(f"{server.base}/json")
    assert calls == ["erp.shop.test"]
    assert server.seen == []
    allowed = OutboundPolicy(allow_hosts=("127.0.0.1",))
    with httpx.Client(transport=GuardedSyncTransport(allowed)) as client:
        assert client.get(f"{server.base}/json").json() == {"ok": True, "items": [1, 2]}
