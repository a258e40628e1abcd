"""Outbound safety for ``http.request`` and pack downloads: which addresses Sous may connect to.

A recipe author (or whoever installs a pack from a URL) chooses the URL, so without a guard
a request could reach the machine Sous runs on, the private network around it, or the cloud
provider's metadata service. The guard:

- allows only ``http`` and ``https``;
- resolves the host (every A and AAAA record) and refuses the connection if **any** address is
  loopback, private (RFC 1918, IPv6 ULA), link-local, multicast, unspecified, carrier-grade NAT
  (100.64.0.0/10), reserved or otherwise not publicly routable — IPv4 addresses embedded in
  IPv6 (mapped, NAT64, 6to4) are judged as IPv4;
- refuses cloud metadata endpoints (169.254.169.254, fd00:ec2::254, metadata.google.internal,
  and a few others below) even when private addresses are allowed;
- lets through what the settings allow: ``outbound_allow_private`` opens every non-public
  address except metadata (for development); ``outbound_allow_hosts`` entries open a host
  name (``erp.lan``), a domain and its subdomains (``*.corp.example``), an address
  (``127.0.0.1``) or a network (``10.20.0.0/16``) — naming a metadata host or address there is
  the only way to reach it.

**No DNS rebinding.** The check happens where the connection is made: :class:`GuardedTransport`
gives httpx a network backend whose ``connect_tcp`` resolves the host once, checks every
address, and opens the socket to one of those checked addresses — never to the name, so a
second lookup cannot return a different answer. TLS is still negotiated for the host name (SNI
and certificate verification use the URL's host, because httpcore passes the origin's name to
``start_tls``), and the Host header is the URL's. Proxies from the environment are ignored.
Redirects are followed by the caller one hop at a time, and every hop connects through the
same guard. :class:`GuardedSyncTransport` is the same for a blocking ``httpx.Client``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpcore
import httpx

from engine import PermanentError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; the default asks the system resolver (getaddrinfo)."""

SCHEMES = ("http", "https")
METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address)
    )
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundRefused(PermanentError):
    """The URL or an address its host resolves to is not one Sous may connect to."""

    def __init__(self, host: str, reason: str, address: str | None = None) -> None:
        self.host = host
        self.reason = reason
        self.address = address
        at = f" ({address})" if address and address != host else ""
        super().__init__(
            f"refused to connect to {host}{at}: {reason}; "
            "allow it with SOUS_OUTBOUND_ALLOW_HOSTS if it is meant to be reachable"
        )


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in found:
            found.append(address)
    return found


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``None`` when it is one)."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    inner = _embedded_v4(ip)
    if inner is not None:
        return address_problem(inner)
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "a carrier-grade NAT address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a publicly routable address"),
    )
    return next((reason for failed, reason in checks if failed), None)


class OutboundSettings(Protocol):
    """The settings the guard reads: ``SOUS_OUTBOUND_ALLOW_PRIVATE`` and
    ``SOUS_OUTBOUND_ALLOW_HOSTS``."""

    @property
    def outbound_allow_private(self) -> bool: ...
    @property
    def outbound_allow_hosts(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class OutboundPolicy:
    """What ``http.request`` may connect to. Registered in ``ctx.services`` at start-up."""

    allow_private: bool = False
    allow_hosts: tuple[str, ...] = ()
    max_redirects: int = 5
    resolver: Resolver | None = None

    @classmethod
    def from_settings(cls, settings: OutboundSettings) -> OutboundPolicy:
        return cls(
            allow_private=settings.outbound_allow_private,
            allow_hosts=tuple(h.strip() for h in settings.outbound_allow_hosts if h.strip()),
        )

    @functools.cached_property
    def _names(self) -> tuple[frozenset[str], tuple[str, ...], tuple[Network, ...]]:
        exact: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        for entry in (e.strip().lower().rstrip(".") for e in self.allow_hosts):
            if entry.startswith("*."):
                suffixes.append(entry[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                exact.add(entry)
        return frozenset(exact), tuple(suffixes), tuple(networks)

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (a name) is listed in ``allow_hosts``, itself or by a wildcard."""
        exact, suffixes, _ = self._names
        name = _normal(host)
        return name in exact or any(name.endswith(s) or name == s[1:] for s in suffixes)

    def address_allowed(self, ip: IPAddress) -> bool:
        """Whether ``ip`` is inside an address or network listed in ``allow_hosts``."""
        return any(ip.version == net.version and ip in net for net in self._names[2])

    def check_url(self, url: httpx.URL) -> None:
        """What can be said before resolving: scheme, host present, metadata names."""
        if url.scheme not in SCHEMES:
            shown = f"{url.scheme}://{url.host}"
            raise OutboundRefused(
                shown, f"only http and https URLs are allowed, not {url.scheme!r}"
            )
        host = _normal(url.host)
        if not host:
            raise OutboundRefused(f"{url.scheme}://", "the URL has no host")
        if host in METADATA_HOSTS and not self.host_allowed(host):
            raise OutboundRefused(host, "a cloud metadata host")

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why connecting to ``ip`` (an address of ``host``) is refused, or ``None``."""
        if self.host_allowed(host) or self.address_allowed(ip):
            return None
        if _normal(host) in METADATA_HOSTS:
            return "a cloud metadata host"
        problem = address_problem(ip)
        if problem is None or (self.allow_private and ip not in METADATA_ADDRESSES):
            return None
        return problem

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host``, each checked; raises :class:`OutboundRefused` if any is
        refused, and ``httpcore.ConnectError`` if the name does not resolve."""
        name = _normal(host)
        try:
            addresses = [ipaddress.ip_address(name)]
        except ValueError:
            try:
                found = await (self.resolver or system_resolver)(name, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {name}: {exc}") from exc
            addresses = [ipaddress.ip_address(a) for a in found]
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {name}: no addresses")
        for ip in addresses:
            reason = self.refusal(name, ip)
            if reason is not None:
                raise OutboundRefused(name, reason, str(ip))
        return addresses

    def resolve_blocking(self, host: str, port: int) -> list[IPAddress]:
        """:meth:`resolve` for a blocking client, called from a worker thread (never from a
        thread running an event loop)."""
        return asyncio.run(self.resolve(host, port))


def _normal(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy has checked."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port)
        failure: Exception | None = None
        for ip in addresses:  # the checked addresses, in the resolver's order
            try:
                return await self._inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused(path, "unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedSyncBackend(httpcore.NetworkBackend):
    """:class:`GuardedBackend` for blocking clients (pack downloads run in a worker thread)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for ip in self._policy.resolve_blocking(host, port):
            try:
                return self._inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise OutboundRefused(path, "unix sockets are not allowed")


@functools.cache
def _default_tls() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes through :class:`GuardedBackend`.

    httpx's own transport has no parameter for the network backend, so this one builds the same
    kind of connection pool httpx would, with the guarded backend (the tests fail if a future
    httpx stops routing connections through it).
    """

    def __init__(self, policy: OutboundPolicy, verify: ssl.SSLContext | None = None) -> None:
        context = verify or _default_tls()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=4,
            max_keepalive_connections=4,
            network_backend=GuardedBackend(policy),
        )


class GuardedSyncTransport(httpx.HTTPTransport):
    """:class:`GuardedTransport` for a blocking ``httpx.Client``."""

    def __init__(self, policy: OutboundPolicy, verify: ssl.SSLContext | None = None) -> None:
        context = verify or _default_tls()
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=4,
            max_keepalive_connections=4,
            network_backend=GuardedSyncBackend(policy),
        )
