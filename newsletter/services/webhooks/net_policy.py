"""Which addresses the platform may send outgoing requests to (webhooks): the SSRF policy.

A receiver must be a public address. Refused: loopback, private, link-local (cloud metadata),
CGNAT, multicast, reserved, unspecified and documentation ranges, IPv6 forms that wrap such an
IPv4 address (mapped, compatible, NAT64, 6to4, Teredo), `localhost` and metadata host names,
unless the operator lists the address in WEBHOOK_ALLOWED_NETWORKS. `check_url` is what saving
a webhook runs; `resolve` is what sending runs, on every address DNS gives, right before
connecting to one of exactly those addresses.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SETTING = "WEBHOOK_ALLOWED_NETWORKS"

# Names that reach a cloud provider's instance metadata (credentials!) or this very machine.
METADATA_NAMES = ("metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                  "instance-data.ec2.internal", "metadata.azure.internal", "metadata.tencentyun.com")
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

_net = ipaddress.ip_network
# Ranges some Python versions call "global" but that no receiver lives in.
_EXTRA = {
    _net("100.64.0.0/10"): "a carrier-grade NAT (shared) address",
    _net("192.0.0.0/24"): "an IETF protocol address",
    _net("192.88.99.0/24"): "a 6to4 relay address",
    _net("198.18.0.0/15"): "a benchmarking address",
    _net("::/96"): "an IPv4-compatible IPv6 address",
    _net("64:ff9b:1::/48"): "a local NAT64 address",
    _net("2001::/32"): "a Teredo tunnel address",
    _net("2001:db8::/32"): "a documentation address",
    _net("3fff::/20"): "a documentation address",
    _net("5f00::/16"): "a segment-routing address",
}
_NAT64 = _net("64:ff9b::/96")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMBER = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class Refused(ValueError):
    """The address is not one the platform may send to; the message says why, for a person."""


class Internal(Refused):
    """Refused because it points inside (this machine, a private network, metadata), not malformed."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str            # ASCII, lower case; an IP literal in its canonical spelling
    port: int
    path: str            # path and query, as sent on the request line
    ip: IPAddress | None  # set when the URL names an address rather than a host name


def networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The allow-list from the setting's entries (already checked by the config)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries traffic for (mapped, NAT64, 6to4), if any."""
    if ip.version != 6:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _kind(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is, or None for a public one."""
    first = (("is_unspecified", "the unspecified address"), ("is_loopback", "a loopback address"),
             ("is_link_local", "a link-local address (where cloud metadata services live)"),
             ("is_multicast", "a multicast address"))
    then = (("is_private", "a private-network address"), ("is_site_local", "a site-local address"),
            ("is_reserved", "a reserved address"))
    for flag, kind in first:
        if getattr(ip, flag, False):
            return kind
    for network, kind in _EXTRA.items():
        if ip.version == network.version and ip in network:
            return kind
    for flag, kind in then:
        if getattr(ip, flag, False):
            return kind
    return None if ip.is_global else "not a public address"


def forbidden(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why the platform may not connect to `ip` (None: it may). The allow-list wins."""
    inner = _embedded_ipv4(ip)
    if any(candidate.version == network.version and candidate in network
           for candidate in (ip, inner) if candidate is not None for network in allowed):
        return None
    if inner is not None:
        kind = _kind(inner)
        return f"{ip} stands for {inner}, {kind}" if kind else None
    kind = _kind(ip)
    return f"{ip} is {kind}" if kind else None


def _ipv4_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` as an IPv4 address in any spelling a URL parser or inet_aton takes (2852039166,
    0xa9fea9fe, 0251.0376.0251.0376, 127.1), None for a host name. A name ending in a number
    that is no address (1.2.3.999999999999) is refused: resolvers disagree about those."""
    parts = host.split(".")
    if not _NUMBER.match(parts[-1]):
        return None
    try:
        if len(parts) > 4 or not all(_NUMBER.match(p) for p in parts):
            raise ValueError
        numbers = [_ipv4_number(p) for p in parts]
        if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
            raise ValueError
    except ValueError:
        raise Refused(f"{host} is neither a host name nor an IP address.") from None
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ascii_host(host: str) -> str:
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:  # what the resolver does with it: NFKC and friends ("ⓛocalhost", fullwidth digits)
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise Refused(f"{host} is not a valid host name.") from None
    return host


def _literal(host: str) -> IPAddress | None:
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise Refused(f"{host} is not a valid IPv6 address.") from None
    return parse_ipv4(host)


def _check_name(host: str) -> None:
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise Refused(f"{host} is not a valid host name.")
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        raise Internal(f"{host} is this machine.")
    if any(host == name or host.endswith("." + name) for name in METADATA_NAMES):
        raise Internal(f"{host} is a cloud metadata service.")


def check_url(url: str, allowed: Sequence[IPNetwork] = ()) -> Target:
    """The parts of a webhook URL, once it passes every check that needs no DNS; else Refused."""
    if any(ch <= " " or ch in "\\\x7f" for ch in url):
        raise Refused("An address cannot contain spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("The address has a malformed host or port.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise Refused("Enter a full http:// or https:// address, such as https://example.com/hooks.")
    if "@" in parts.netloc:
        raise Refused("Leave user names and passwords out of the address; verify the signature instead.")
    host = _ascii_host(parts.hostname)
    ip = _literal(host)
    if ip is None:
        _check_name(host)
    elif (reason := forbidden(ip, allowed)) is not None:
        raise Internal(f"{reason}.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, str(ip) if ip else host, port or (443 if scheme == "https" else 80), path, ip)


def vetted(host: str, found: Sequence[IPAddress], allowed: Sequence[IPNetwork] = ()) -> list[IPAddress]:
    """`found` (what `host` resolved to) if every address may be used; else Internal. A name
    that also points inside is not trusted with its public addresses either."""
    for ip in found:
        if (reason := forbidden(ip, allowed)) is not None:
            raise Internal(f"{host} resolves to a forbidden address: {reason}.")
    return list(found)


def resolve(target: Target, allowed: Sequence[IPNetwork] = ()) -> list[IPAddress]:
    """Every address `target` resolves to, vetted; socket.gaierror when DNS fails."""
    if target.ip is not None:
        return vetted(target.host, [target.ip], allowed)
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    found = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
    if not found:
        raise socket.gaierror(f"{target.host} has no address")
    return vetted(target.host, found, allowed)
