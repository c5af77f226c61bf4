"""Where a destination may point. Outbound calls are an attack surface (server-side request
forgery): a destination URL set through the admin API must not make the service call its own
loopback, the private network, link-local addresses or a cloud metadata endpoint.

In production a destination must be `https` and every address its host resolves to must be
public, unless it falls in DESTINATION_ALLOWED_NETWORKS. The check runs when the URL is set
(a 422 naming the reason) and again before every delivery, whose connection then goes to the
very address that was checked (a name that resolves elsewhere the second time — DNS
rebinding — is refused, not followed). Development allows http and every address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from app.settings import AppEnv, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port → the addresses it resolves to (as strings)
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

MAX_URL_LENGTH = 2048
# A name that takes longer than this to resolve is refused (a request never hangs on DNS).
RESOLVE_TIMEOUT_S = 5.0

# Cloud metadata endpoints, named as such in refusals (most are link-local anyway).
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class DestinationRefused(ValueError):
    """A destination URL that may not be called; the message names the reason."""


@dataclass(frozen=True, slots=True)
class AddressRules:
    require_https: bool
    allow_private: bool
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> AddressRules:
        production = settings.app_env is AppEnv.PRODUCTION
        return cls(
            require_https=production,
            allow_private=not production,
            allowed_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in settings.destination_allowed_networks
            ),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed destination URL."""

    scheme: str
    host: str
    port: int
    # Path and query, as given ("/" when empty).
    path: str

    def url_for(self, address: IPAddress) -> str:
        """The URL with the host replaced by one checked address (the Host header and TLS
        server name keep the host)."""
        netloc = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{netloc}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse(url: str, rules: AddressRules) -> Target:
    """The URL's parts, or DestinationRefused naming what is wrong with it."""
    if len(url) > MAX_URL_LENGTH:
        raise DestinationRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused("the URL must start with https:// (or http:// in development)")
    if scheme == "http" and rules.require_https:
        raise DestinationRefused("a destination must use https in production")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("credentials in the URL are not accepted (sign with the secret)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DestinationRefused("the URL has no host")
    if parts.fragment:
        raise DestinationRefused("the URL has a fragment (#...), which is never sent")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def refusal(address: IPAddress, rules: AddressRules) -> str | None:
    """Why this address may not be called, or None if it may."""
    if rules.allow_private or any(address in net for net in rules.allowed_networks):
        return None
    inner = _embedded_ipv4(address)
    if inner is not None and inner != address:
        why = refusal(inner, rules)
        return None if why is None else f"{why} (inside {address})"
    if address in _METADATA:
        return f"{address} is a cloud metadata address"
    if address.is_multicast or address.is_unspecified:
        return f"{address} is not a unicast address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_private:
        return f"{address} is a private address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def _embedded_ipv4(address: IPAddress) -> IPAddress | None:
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
    return None


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def checked_addresses(
    target: Target, rules: AddressRules, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """Every address the host resolves to, all of them allowed (one that is not refuses the
    whole destination: a name may not mix public and private addresses)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                resolved = await resolver(target.host, target.port)
        except TimeoutError as exc:
            raise DestinationRefused(f"the host {target.host} did not resolve in time") from exc
        except (OSError, UnicodeError) as exc:
            raise DestinationRefused(f"the host {target.host} does not resolve ({exc})") from exc
        found = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in resolved))
        if not found:
            raise DestinationRefused(f"the host {target.host} does not resolve")
    for address in found:
        why = refusal(address, rules)
        if why is not None:
            named = "" if literal is not None else f"the host {target.host} resolves to "
            raise DestinationRefused(
                f"{named}{why}: refused in production unless DESTINATION_ALLOWED_NETWORKS allows it"
            )
    return found


async def check(url: str, rules: AddressRules, resolver: Resolver = system_resolver) -> Target:
    """Parse and resolve: the Target, or DestinationRefused naming the reason."""
    target = parse(url, rules)
    await checked_addresses(target, rules, resolver)
    return target
