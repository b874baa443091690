"""Who the client is: its IP address (the connection's peer, or ``X-Forwarded-For`` when the
peer is a trusted proxy) and its user agent, recorded with a session when it is created or
refreshed.

The rules, the same on every framework:

- the peer (the address the TCP connection comes from) is the client, unless it is one of
  :attr:`Config.trusted_proxies <sessionward.Config>` (IP addresses or CIDR networks);
- behind a trusted peer, ``X-Forwarded-For`` is read **from the right**: each proxy appends
  the address it received the request from, so the rightmost entries were written by our
  own proxies and the leftmost ones by whoever sent the request. Entries that are trusted
  proxies are skipped; the first one that is not is the client. When every entry is
  trusted, the leftmost is the client;
- a malformed entry (not an IP address, empty, too many hops) stops the walk: the client
  is the last address that was read safely (the peer, or the last good entry), never a
  value an attacker could have chosen;
- a header sent more than once is one list: RFC 7230 (section 3.2.2) lets a proxy append a
  new ``X-Forwarded-For`` line instead of extending the existing one, so the copies are
  joined with ``","`` in the order received (WSGI servers and Django already join them so);
- entries may be bare addresses, ``[IPv6]``, ``[IPv6]:port`` or ``IPv4:port``; an
  IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, as dual-stack sockets report IPv4
  peers) is read as the IPv4 address, for the trust check and in the result;
- a peer that is not an IP address (a Unix socket, a test client's ``"testclient"``) is
  never trusted and is recorded as no address (``None``).

The user agent is the ``User-Agent`` header, capped at :data:`MAX_USER_AGENT_LENGTH`
characters (``None`` when absent or empty).

Only sessions' create, refresh and promotion paths call this: verification of an access
token never parses these headers (adapters pass a callable that does it on demand).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "FORWARDED_FOR_HEADER",
    "MAX_FORWARDED_HOPS",
    "MAX_USER_AGENT_LENGTH",
    "USER_AGENT_HEADER",
    "TrustedProxies",
    "client_ip",
    "user_agent",
]

FORWARDED_FOR_HEADER = "x-forwarded-for"
USER_AGENT_HEADER = "user-agent"
#: The longest user agent recorded (longer ones are cut).
MAX_USER_AGENT_LENGTH = 512
#: At most this many ``X-Forwarded-For`` entries are read (from the right); a longer chain
#: of trusted hops stops at the last one read.
MAX_FORWARDED_HOPS = 32

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The networks of :attr:`Config.trusted_proxies <sessionward.Config>`, parsed once.

    ``address in proxies`` tells whether an address (an ``ipaddress`` object) is trusted.
    """

    __slots__ = ("_v4", "_v6")

    def __init__(self, networks: Iterable[str]) -> None:
        v4: list[ipaddress.IPv4Network] = []
        v6: list[ipaddress.IPv6Network] = []
        for text in networks:
            network = ipaddress.ip_network(text.strip(), strict=False)
            if isinstance(network, ipaddress.IPv4Network):
                v4.append(network)
            else:
                mapped = _mapped_network(network)
                if mapped is not None:
                    v4.append(mapped)
                else:
                    v6.append(network)
        self._v4 = tuple(v4)
        self._v6 = tuple(v6)

    @classmethod
    def from_config(cls, config: Config) -> TrustedProxies:
        """The trusted proxies of ``config``."""
        return cls(config.trusted_proxies)

    def __bool__(self) -> bool:
        return bool(self._v4 or self._v6)

    def __contains__(self, address: object) -> bool:
        if isinstance(address, ipaddress.IPv4Address):
            return any(address in network for network in self._v4)
        if isinstance(address, ipaddress.IPv6Address):
            return any(address in network for network in self._v6)
        return False


def _mapped_network(network: ipaddress.IPv6Network) -> ipaddress.IPv4Network | None:
    """``::ffff:a.b.c.d/n`` (n >= 96) as the IPv4 network it maps, else ``None``."""
    mapped = network.network_address.ipv4_mapped
    if mapped is None or network.prefixlen < 96:
        return None
    return ipaddress.IPv4Network((mapped, network.prefixlen - 96))


def _address(text: str) -> _Address | None:
    """An ``X-Forwarded-For`` entry or a peer as an address, or ``None`` when malformed."""
    text = text.strip(" \t")
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        rest = text[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit() and rest[1:].isascii()):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4:port
        host, _, port = text.partition(":")
        if not (port.isdigit() and port.isascii()):
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address


def client_ip(peer: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str | None:
    """The client's IP address (normalised: ``str`` of an ``ipaddress`` object), or
    ``None`` when the peer is not an IP address.

    ``peer`` is the connection's remote address (WSGI ``REMOTE_ADDR``, ASGI
    ``scope["client"][0]``); ``forwarded_for`` every ``X-Forwarded-For`` header of the
    request joined with ``","`` (``None`` when absent). See the module documentation for
    the rules.
    """
    if peer is None:
        return None
    current = _address(peer)
    if current is None:
        return None
    if forwarded_for is None or current not in trusted:
        return str(current)
    entries = forwarded_for.split(",")
    for hop, entry in enumerate(reversed(entries)):
        if hop >= MAX_FORWARDED_HOPS:
            break
        address = _address(entry)
        if address is None:
            break
        current = address
        if address not in trusted:
            break
    return str(current)


def user_agent(value: str | None) -> str | None:
    """The ``User-Agent`` header as recorded: at most :data:`MAX_USER_AGENT_LENGTH`
    characters, ``None`` when absent or empty."""
    if not value:
        return None
    return value[:MAX_USER_AGENT_LENGTH]
