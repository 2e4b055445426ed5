import ipaddress

import pytest

from federation.peers.addresses import ForbiddenUrl, check_url, is_forbidden_address

FORBIDDEN = {
    # IPv4
    "0.0.0.0": "unspecified",
    "0.1.2.3": "this network 0/8",
    "10.0.0.1": "private 10/8",
    "10.255.255.255": "private 10/8 upper edge",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT upper edge",
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback /8",
    "169.254.169.254": "link-local (cloud metadata)",
    "172.16.0.1": "private 172.16/12",
    "172.31.255.255": "private 172.16/12 upper edge",
    "192.0.0.8": "IETF protocol assignments",
    "192.0.2.10": "documentation TEST-NET-1",
    "192.88.99.1": "6to4 relay anycast",
    "192.168.1.1": "private 192.168/16",
    "198.18.0.1": "benchmarking",
    "198.19.255.254": "benchmarking upper edge",
    "198.51.100.7": "documentation TEST-NET-2",
    "203.0.113.9": "documentation TEST-NET-3",
    "224.0.0.251": "multicast",
    "239.255.255.250": "multicast (SSDP)",
    "240.0.0.1": "reserved 240/4",
    "255.255.255.255": "broadcast",
    # IPv6
    "::": "unspecified",
    "::1": "loopback",
    "::127.0.0.1": "IPv4-compatible",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.1.2.3": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::ffff:192.168.0.1": "IPv4-mapped private 192.168",
    "64:ff9b::a00:1": "NAT64 well-known prefix",
    "64:ff9b::808:808": "NAT64 even with a public IPv4 inside",
    "64:ff9b:1::1": "NAT64 local-use",
    "100::1": "discard-only",
    "2001::1": "Teredo",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo (RFC 4380 example)",
    "2001:db8::1": "documentation",
    "2002:c000:0201::1": "6to4",
    "2002:7f00:1::1": "6to4 of loopback",
    "fc00::1": "unique local fc00::/7",
    "fd12:3456:789a::1": "unique local fd00::/8",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local with zone",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff05::2": "multicast site",
    # not an address at all
    "example.com": "not an IP literal",
    "": "empty",
    "1.2.3": "short form",
}

ALLOWED = {
    "8.8.8.8": "public IPv4",
    "1.1.1.1": "public IPv4",
    "93.184.215.14": "public IPv4",
    "100.63.255.255": "just below CGNAT",
    "100.128.0.0": "just above CGNAT",
    "172.15.255.255": "just below 172.16/12",
    "172.32.0.1": "just above 172.16/12",
    "198.17.255.255": "just below benchmarking",
    "::ffff:8.8.8.8": "IPv4-mapped public",
    "2606:4700:4700::1111": "public IPv6",
    "2a01:4f8:c0c:1234::1": "public IPv6",
    "[2001:4860:4860::8888]": "public IPv6 in brackets",
}


@pytest.mark.parametrize(("address", "why"), FORBIDDEN.items(), ids=list(FORBIDDEN))
def test_special_purpose_address_is_forbidden(address: str, why: str) -> None:
    assert is_forbidden_address(address), why


@pytest.mark.parametrize(("address", "why"), ALLOWED.items(), ids=list(ALLOWED))
def test_public_address_is_allowed(address: str, why: str) -> None:
    assert not is_forbidden_address(address), why


def test_address_objects_are_accepted_too() -> None:
    assert is_forbidden_address(ipaddress.ip_address("10.0.0.1"))
    assert not is_forbidden_address(ipaddress.ip_address("8.8.4.4"))


def test_https_url_with_public_host_passes() -> None:
    checked = check_url("https://mastodon.example/users/a")
    assert (checked.scheme, checked.host, checked.port) == ("https", "mastodon.example", 443)


def test_explicit_port_is_kept() -> None:
    assert check_url("https://mastodon.example:8443/x").port == 8443


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mastodon.example/users/a", "forbidden_scheme"),
        ("ftp://mastodon.example/", "forbidden_scheme"),
        ("file:///etc/passwd", "forbidden_scheme"),
        ("https://127.0.0.1/", "forbidden_address"),
        ("https://[::1]/", "forbidden_address"),
        ("https://[::ffff:10.0.0.1]/", "forbidden_address"),
        ("https://169.254.169.254/latest/meta-data", "forbidden_address"),
        ("https://localhost/", "forbidden_address"),
        ("https://printer.local/", "forbidden_address"),
        ("https://intranet/", "forbidden_address"),
        ("https://user:pass@mastodon.example/", "invalid_url"),
        ("https:///no-host", "invalid_url"),
        ("https://mastodon.example:99999/", "invalid_url"),
        ("https://mastodon.example:0/", "invalid_url"),
        ("https://mastodon.example/a b", "invalid_url"),
        ("https://[::1/", "invalid_url"),
    ],
)
def test_unacceptable_url_is_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ForbiddenUrl) as caught:
        check_url(url)
    assert caught.value.reason == reason


def test_test_mode_allows_http_and_loopback() -> None:
    checked = check_url("http://127.0.0.1:8080/inbox", allow_private=True, allow_http=True)
    assert checked.port == 8080


def test_allowing_http_does_not_allow_private_addresses() -> None:
    with pytest.raises(ForbiddenUrl):
        check_url("http://10.0.0.5/", allow_http=True)
