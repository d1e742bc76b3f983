"""Outbound URLs we were given by people (partner sites, webhook accounts): the SSRF guard.

One validator for every such URL (:func:`check_target`): http(s) only, the host resolved ONCE,
and every address it resolves to must be public. "Public" looks through the IPv6 forms that
carry an IPv4 address (IPv4-mapped and -compatible, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``
and ``64:ff9b:1::/48``, Teredo ``2001::/32``): ``2002:7f00:1::`` is 127.0.0.1 and is refused
like it. The request is then sent to the address that was checked (:func:`pinned_request`), with
the original ``Host`` header and TLS server name, so a DNS answer that changes between the check
and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

Resolver = Callable[[str, int], list[str]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
TEREDO = ipaddress.ip_network("2001::/32")


class UnsafeTarget(ValueError):
    """The URL is not http(s), or its host is (or resolves to) a non-public address.

    ``kind``: ``"url"`` (not an http(s) URL naming a host), ``"userinfo"`` (carries a user name
    or password), ``"private"`` (a non-public address).
    """

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Unresolvable(OSError):
    """The host did not resolve (perhaps for now: DNS may come back)."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _plain_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address (de-obfuscated)
    if ip in NAT64 or ip in NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    packed = ip.packed
    if packed[:12] == bytes(12) and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_public_address(address: str) -> bool:
    """False for loopback, link-local (cloud metadata), private, shared, multicast, reserved and
    unspecified addresses, including such an IPv4 address wrapped in an IPv6 one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return _plain_public(inner)
        if ip in NAT64_LOCAL:
            return False
    return _plain_public(ip)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to call the host on the wire."""

    url: str
    scheme: str
    host: str
    port: int
    address: str | None  # None when private targets are allowed: connect by name as usual

    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        if self.address is None:
            return self.url
        parts = urlsplit(self.url)
        ip = self.address.split("%", 1)[0]
        host = f"[{ip}]" if ":" in ip else ip
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def check_target(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> Target:
    """Validate ``url`` and resolve its host once; raise :class:`UnsafeTarget` or
    :class:`Unresolvable`. Unless ``allow_private``, the result is pinned to a checked address."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}", kind="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget(
            "the URL must start with http:// or https:// and name a host", kind="url"
        )
    if parts.username or parts.password:
        raise UnsafeTarget("the URL must not carry a user name or password", kind="userinfo")
    host = parts.hostname
    if allow_private:
        return Target(url.strip(), parts.scheme, host, port, None)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError, ValueError) as exc:
        raise Unresolvable(f"{host} does not resolve") from exc
    try:
        blocked = [a for a in addresses if not is_public_address(a)]
    except ValueError:
        blocked = list(addresses)
    if blocked or not addresses:
        raise UnsafeTarget(
            f"{host} points at a loopback, private or reserved address", kind="private"
        )
    return Target(url.strip(), parts.scheme, host, port, addresses[0])


def pinned_request(
    client: httpx.Client,
    method: str,
    target: Target,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send to the checked address: the URL names the IP, ``Host`` and TLS SNI (and certificate
    check) name the original host. Never follows redirects (a redirect is a new, unchecked URL)."""
    sent = dict(headers or {})
    extensions: dict[str, Any] = {}
    if target.address is not None:
        sent["Host"] = target.host_header()
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
    request = client.build_request(
        method, target.connect_url(), headers=sent, extensions=extensions or None, **kwargs
    )
    return client.send(request, follow_redirects=False)
