"""Where a destination may point: production refuses http and loopback, private, link-local
and metadata addresses, whether written out or behind a name."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from app.delivery import addresses
from app.delivery.addresses import AddressRules, DestinationRefused

PRODUCTION = AddressRules(require_https=True, allow_private=False)
DEVELOPMENT = AddressRules(require_https=False, allow_private=True)


def resolving_to(*found: str) -> addresses.Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return list(found)

    return resolve


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata"),
        ("https://[::1]/hook", "::1 is a loopback address"),
        ("https://[::ffff:10.0.0.5]/hook", "10.0.0.5 is a private address (inside"),
        ("https://192.168.1.10/hook", "private address"),
        ("https://0.0.0.0/hook", "not a unicast address"),
        ("https://100.64.0.1/hook", "not a public address"),
        # Names, resolved by the system resolver: the numeric forms inet_aton accepts.
        ("https://localhost/hook", "the host localhost resolves to"),
        ("https://0x7f000001/hook", "127.0.0.1 is a loopback address"),
        ("https://167772165/hook", "10.0.0.5 is a private address"),
        ("https://2852039166/hook", "169.254.169.254 is a cloud metadata address"),
    ],
)
async def test_production_refuses_addresses_that_are_not_public(url: str, reason: str) -> None:
    with pytest.raises(DestinationRefused, match="DESTINATION_ALLOWED_NETWORKS") as refused:
        await addresses.check(url, PRODUCTION)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (["127.0.0.1"], "resolves to 127.0.0.1 is a loopback address"),
        (["10.0.0.5"], "resolves to 10.0.0.5 is a private address"),
        (["169.254.169.254"], "resolves to 169.254.169.254 is a cloud metadata address"),
        # One bad address among good ones refuses the name.
        (["93.184.216.34", "10.0.0.5"], "10.0.0.5 is a private address"),
    ],
)
async def test_a_name_resolving_to_such_an_address_is_refused(
    found: list[str], reason: str
) -> None:
    with pytest.raises(DestinationRefused) as refused:
        await addresses.check("https://hooks.example.net/in", PRODUCTION, resolving_to(*found))
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.net/in", "must use https in production"),
        ("ftp://hooks.example.net/in", "must start with https://"),
        ("https://user:pw@hooks.example.net/in", "credentials in the URL"),
        ("https:///in", "no host"),
        ("https://hooks.example.net/in#frag", "fragment"),
        ("https://hooks.example.net:99999/in", "not a valid URL"),
        ("https://hooks.example.net/" + "a" * 2100, "longer than"),
    ],
)
async def test_malformed_or_plain_http_urls_are_refused_in_production(
    url: str, reason: str
) -> None:
    with pytest.raises(DestinationRefused, match=reason):
        await addresses.check(url, PRODUCTION, resolving_to("93.184.216.34"))


async def test_a_public_address_is_accepted_and_the_allow_list_opens_a_private_network() -> None:
    target = await addresses.check(
        "https://hooks.example.net:8443/in?x=1", PRODUCTION, resolving_to("93.184.216.34")
    )
    assert (target.host, target.port, target.path) == ("hooks.example.net", 8443, "/in?x=1")
    assert target.url_for(ipaddress.ip_address("93.184.216.34")) == (
        "https://93.184.216.34:8443/in?x=1"
    )
    allowed = AddressRules(
        require_https=True,
        allow_private=False,
        allowed_networks=(ipaddress.ip_network("10.0.0.0/24"),),
    )
    await addresses.check("https://10.0.0.5/in", allowed)
    with pytest.raises(DestinationRefused):
        await addresses.check("https://10.0.1.5/in", allowed)


async def test_development_allows_http_and_loopback() -> None:
    target = await addresses.check("http://127.0.0.1:9/in", DEVELOPMENT)
    assert target.scheme == "http"


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def nothing(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    with pytest.raises(DestinationRefused, match="does not resolve"):
        await addresses.check("https://nowhere.invalid/in", PRODUCTION, nothing)
