"""The outbound address guard: which peers the relay may never connect to.

A remote document or inbox URL is chosen by whoever runs the remote server, so without
this guard the relay could be steered into its own network (server-side request
forgery). Every special-purpose range of the IANA registries is refused, and so is every
IPv6 form that embeds or tunnels to an IPv4 address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FORBIDDEN_IPV4: Final = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network", includes the unspecified address
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata endpoints
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation TEST-NET-1
        "192.31.196.0/24",  # AS112
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # AS112 direct delegation
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation TEST-NET-2
        "203.0.113.0/24",  # documentation TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast 255.255.255.255
    )
)

_FORBIDDEN_IPV6: Final = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local-use prefix
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)

_ALLOWED_SCHEMES: Final = frozenset({"https"})
_TEST_SCHEMES: Final = frozenset({"https", "http"})


class ForbiddenUrl(ValueError):
    """The URL may not be fetched; `reason` is a short machine-readable cause."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    url: str
    scheme: str
    host: str
    port: int


def parse_address(value: str | IPAddress) -> IPAddress | None:
    """The address, or None when the text is not an IP address literal."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_forbidden_address(value: str | IPAddress) -> bool:
    """True for any address the relay must not connect to; an unparsable value is
    forbidden too, since it cannot be shown to be safe."""
    address = parse_address(value)
    if address is None:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return True
        embedded = address.ipv4_mapped
        if embedded is not None:
            # A mapped address is a route to the IPv4 address inside it: judge that one.
            return _is_forbidden_ipv4(embedded) or not embedded.is_global
        if any(address in network for network in _FORBIDDEN_IPV6):
            return True
    elif _is_forbidden_ipv4(address):
        return True
    # Whatever the standard library knows to be non-global is refused as well, so ranges
    # registered after this table was written are covered when Python learns of them.
    return not address.is_global


def _is_forbidden_ipv4(address: ipaddress.IPv4Address) -> bool:
    return any(address in network for network in _FORBIDDEN_IPV4)


def check_url(url: str, *, allow_private: bool = False, allow_http: bool = False) -> CheckedUrl:
    """Validate a URL the relay is about to request.

    Only https outside test mode, no credentials in the URL, a real host, and an IP
    literal host must be an allowed address. Host names are checked again after DNS
    resolution (see `service.network.guarded_connections`), since a name can point anywhere.
    """
    if not isinstance(url, str) or len(url) > 4096:
        raise ForbiddenUrl("invalid_url", "URL is missing or too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ForbiddenUrl("invalid_url", f"URL cannot be parsed: {error}") from error
    scheme = parts.scheme.lower()
    if scheme not in (_TEST_SCHEMES if allow_http else _ALLOWED_SCHEMES):
        raise ForbiddenUrl("forbidden_scheme", f"scheme {scheme!r} is not allowed")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenUrl("invalid_url", "URL must not carry credentials")
    host = parts.hostname
    if not host:
        raise ForbiddenUrl("invalid_url", "URL has no host")
    if any(char.isspace() or ord(char) < 0x21 for char in url):
        raise ForbiddenUrl("invalid_url", "URL contains whitespace or control characters")
    if port == 0:
        raise ForbiddenUrl("invalid_url", "URL port 0 is not connectable")
    effective_port = port if port is not None else (443 if scheme == "https" else 80)
    if not allow_private:
        address = parse_address(host)
        if address is not None and is_forbidden_address(address):
            raise ForbiddenUrl("forbidden_address", f"{host} is not a public address")
        if address is None and is_local_name(host):
            raise ForbiddenUrl("forbidden_address", f"{host} is a local name")
    return CheckedUrl(url=url, scheme=scheme, host=host, port=effective_port)


def is_local_name(host: str) -> bool:
    """Names that only mean something inside a local network (`localhost`, `*.local`...)."""
    name = host.rstrip(".").lower()
    if "." not in name:
        return True
    return name.endswith((".localhost", ".local", ".internal", ".home.arpa", ".localdomain"))
