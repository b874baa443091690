"""The client's address and user agent: trusted proxies, X-Forwarded-For read from the right,
hostile headers, and the trusted_proxies option."""

from __future__ import annotations

import ipaddress

import hypothesis.strategies as st
import pytest
from hypothesis import example, given

from sessionward import Config, ConfigError
from sessionward.transport.client_address import (
    MAX_FORWARDED_HOPS,
    MAX_USER_AGENT_LENGTH,
    TrustedProxies,
    client_ip,
    user_agent,
)

PROXIES = TrustedProxies(("10.0.0.0/8", "192.0.2.7", "2001:db8::/32"))

ipv4 = st.ip_addresses(v=4)
ipv6 = st.ip_addresses(v=6)
addresses = st.one_of(ipv4, ipv6)
untrusted = addresses.filter(lambda a: _normal(a) not in PROXIES)
trusted_v4 = st.integers(0, 2**24 - 1).map(lambda n: ipaddress.IPv4Address(0x0A000000 + n))
trusted = st.one_of(trusted_v4, st.just(ipaddress.IPv4Address("192.0.2.7")))


def _normal(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# -- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # An untrusted peer: X-Forwarded-For is ignored, whatever it says.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("203.0.113.9", None, "203.0.113.9"),
        # A trusted peer without the header: the peer.
        ("10.1.2.3", None, "10.1.2.3"),
        # One trusted proxy: the rightmost entry.
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        # The client prepended a lie: the rightmost untrusted entry wins.
        ("10.1.2.3", "1.1.1.1, 198.51.100.1", "198.51.100.1"),
        # Two trusted hops: skip them.
        ("10.1.2.3", "1.1.1.1, 198.51.100.1, 10.9.9.9, 192.0.2.7", "198.51.100.1"),
        # Every entry trusted: the leftmost.
        ("10.1.2.3", "10.0.0.5, 10.0.0.6", "10.0.0.5"),
        # Malformed entries stop the walk at the last good hop.
        ("10.1.2.3", "198.51.100.1, evil", "10.1.2.3"),
        ("10.1.2.3", "198.51.100.1, , 10.0.0.8", "10.0.0.8"),
        ("10.1.2.3", "", "10.1.2.3"),
        ("10.1.2.3", "unknown", "10.1.2.3"),
        ("10.1.2.3", "198.51.100.1;drop table", "10.1.2.3"),
        ("10.1.2.3", "198.51.100.1/24", "10.1.2.3"),
        ("10.1.2.3", "\uff10.\uff10.\uff10.\uff11", "10.1.2.3"),  # fullwidth digits are no address
        ("10.1.2.3", "1.2.3.4:\uff18\uff10", "10.1.2.3"),
        ("10.1.2.3", "[2001:db9::1", "10.1.2.3"),
        ("10.1.2.3", "[2001:db9::1]x", "10.1.2.3"),
        ("10.1.2.3", "1.2.3.4:", "10.1.2.3"),
        ("10.1.2.3", "01.2.3.4", "10.1.2.3"),  # leading zeros: ambiguous (octal?), refused
        # Ports and brackets.
        ("10.1.2.3", "198.51.100.1:4711", "198.51.100.1"),
        ("10.1.2.3", "[2001:db9::1]:443", "2001:db9::1"),
        ("10.1.2.3", "[2001:db9::1]", "2001:db9::1"),
        ("10.1.2.3", " 2001:DB9:0::1 ", "2001:db9::1"),
        # IPv4-mapped IPv6 is the IPv4 address, for trust and in the result.
        ("::ffff:10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("::ffff:203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("10.1.2.3", "::ffff:198.51.100.1", "198.51.100.1"),
        # IPv6 proxies.
        ("2001:db8::1", "198.51.100.1", "198.51.100.1"),
        # A peer that is no address: nothing recorded, nothing trusted.
        ("testclient", "198.51.100.1", None),
        ("", "198.51.100.1", None),
        (None, "198.51.100.1", None),
        ("/run/gunicorn.sock", None, None),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, expected: str | None) -> None:
    assert client_ip(peer, xff, PROXIES) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    none = TrustedProxies(())
    assert not none
    assert PROXIES
    assert client_ip("10.1.2.3", "198.51.100.1", none) == "10.1.2.3"


def test_mapped_network_is_trusted_for_ipv4_peers() -> None:
    proxies = TrustedProxies(("::ffff:10.0.0.0/104",))
    assert client_ip("10.4.4.4", "198.51.100.1", proxies) == "198.51.100.1"
    assert client_ip("::ffff:10.4.4.4", "198.51.100.1", proxies) == "198.51.100.1"


def test_hop_limit() -> None:
    hops = ", ".join(f"10.0.0.{n}" for n in range(200))
    # Only the rightmost MAX_FORWARDED_HOPS entries are read.
    assert client_ip("10.1.2.3", "198.51.100.1, " + hops, PROXIES) == f"10.0.0.{200 - MAX_FORWARDED_HOPS}"


def test_huge_header_is_cheap_and_safe() -> None:
    header = "1.1.1.1," * 100_000 + "198.51.100.1"
    assert client_ip("10.1.2.3", header, PROXIES) == "198.51.100.1"


# -- properties -----------------------------------------------------------------------------


@given(peer=untrusted, xff=st.one_of(st.none(), st.text()))
def test_untrusted_peer_is_the_client(
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address, xff: str | None
) -> None:
    assert client_ip(str(peer), xff, PROXIES) == str(_normal(peer))


@given(
    peer=trusted,
    lies=st.lists(st.one_of(st.text(max_size=40), addresses.map(str)), max_size=5),
    client=untrusted,
    hops=st.lists(trusted, max_size=5),
)
def test_rightmost_untrusted_entry_wins_over_any_prefix(
    peer: ipaddress.IPv4Address,
    lies: list[str],
    client: ipaddress.IPv4Address | ipaddress.IPv6Address,
    hops: list[ipaddress.IPv4Address],
) -> None:
    xff = ",".join([*lies, str(client), *map(str, hops)])
    assert client_ip(str(peer), xff, PROXIES) == str(_normal(client))


@given(
    peer=st.one_of(st.none(), st.text(max_size=50), addresses.map(str)), xff=st.one_of(st.none(), st.text())
)
@example(peer="10.0.0.1", xff="\x00,\udcff,[::1]:99999999999999999999")
@example(peer="10.0.0.1", xff="[" * 1000)
def test_never_raises_and_only_reports_what_it_read(peer: str | None, xff: str | None) -> None:
    result = client_ip(peer, xff, PROXIES)
    if result is None:
        return
    seen = {peer, *(xff.split(",") if xff else ())}
    candidates: set[str] = set()
    for text in seen:
        if text is None:
            continue
        candidates.add(text.strip(" \t"))
    assert str(ipaddress.ip_address(result)) == result
    assert any(_same(result, candidate) for candidate in candidates)


def _same(result: str, candidate: str) -> bool:
    text = candidate
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return _normal(ipaddress.ip_address(text)) == ipaddress.ip_address(result)
    except ValueError:
        return False


@given(st.one_of(st.none(), st.text(max_size=2000)))
def test_user_agent_cap(value: str | None) -> None:
    recorded = user_agent(value)
    if not value:
        assert recorded is None
    else:
        assert recorded == value[:MAX_USER_AGENT_LENGTH]
        assert recorded is not None and len(recorded) <= MAX_USER_AGENT_LENGTH


# -- the option ------------------------------------------------------------------------------


def test_option_default_and_valid_values() -> None:
    assert Config().trusted_proxies == ()
    config = Config(trusted_proxies=("10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"))
    assert config.trusted_proxies == ("10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1")
    # A list (Django settings, JSON) is kept as a tuple.
    listed = Config(trusted_proxies=["10.0.0.0/8"])  # type: ignore[arg-type]
    assert listed.trusted_proxies == ("10.0.0.0/8",)
    hash(listed)


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.0/8",  # a bare string, not a tuple
        ("10.0.0.0/33",),
        ("example.com",),
        ("",),
        (None,),
        (10,),
        ("10.0.0.0/8; 1.2.3.4",),
    ],
)
def test_option_invalid_values(value: object) -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        Config(trusted_proxies=value)  # type: ignore[arg-type]


def test_option_from_env() -> None:
    env = {"SESSIONWARD_TRUSTED_PROXIES": " 10.0.0.0/8 , 192.0.2.7,,"}
    assert Config.from_env(env).trusted_proxies == ("10.0.0.0/8", "192.0.2.7")
    assert Config.from_env({"SESSIONWARD_TRUSTED_PROXIES": ""}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="trusted_proxies"):
        Config.from_env({"SESSIONWARD_TRUSTED_PROXIES": "10.0.0.0/8,nope"})


def test_host_bits_mean_the_network() -> None:
    config = Config(trusted_proxies=("10.0.0.1/8",))
    assert client_ip("10.200.0.1", "198.51.100.1", TrustedProxies.from_config(config)) == "198.51.100.1"


def test_from_config() -> None:
    proxies = TrustedProxies.from_config(Config(trusted_proxies=("192.0.2.0/24",)))
    assert ipaddress.ip_address("192.0.2.200") in proxies
    assert ipaddress.ip_address("192.0.3.1") not in proxies
    assert "192.0.2.200" not in proxies  # only address objects are looked up
