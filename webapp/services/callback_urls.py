"""Which callback URLs a job may carry: http(s) to a public address, so a webhook cannot be aimed at the inside.

A URL naming a host is resolved, and every address it resolves to must be public: otherwise anyone who can submit
a job could make the workers POST to the database, a cloud metadata endpoint or an admin page on the LAN (SSRF).
The check runs when the job is submitted and again before each delivery, and the delivery connects to the address
checked then, so a name that resolves elsewhere later (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class CallbackRefused(ValueError):
    """The URL may not be called; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to for it."""

    url: SplitResult
    address: IPAddress

    @property
    def port(self) -> int:
        return self.url.port or (443 if self.url.scheme == "https" else 80)


def check_callback_url(url: str, *, allow_private: bool) -> Target:
    """The URL's parts and a permitted address of its host; CallbackRefused if it is not one apot may call."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise CallbackRefused("callback_url may not contain control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(f"callback_url is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused("callback_url must start with http:// or https://")
    if not parts.hostname:
        raise CallbackRefused("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        # It would be shown on the job page and in logs; a receiver can take a token in the path or verify the
        # signature instead.
        raise CallbackRefused("callback_url may not carry a user name or password")
    if allow_private:
        addresses = _resolve(parts.hostname, port or 80)
        if not addresses:
            raise CallbackRefused(f"callback_url's host {parts.hostname} cannot be resolved")
        return Target(parts, addresses[0])
    # One answer whether the name does not resolve or resolves inside, and never the address: otherwise a member
    # could use the server to learn the internal network's names and addresses.
    addresses = _resolve(parts.hostname, port or 80)
    if not addresses or not all(is_public(address) for address in addresses):
        raise CallbackRefused(
            f"callback_url's host {parts.hostname} is not a public address that resolves; webhooks go only to "
            "public addresses (the server's APOT_WEBHOOK_ALLOW_PRIVATE allows others)"
        )
    return Target(parts, addresses[0])


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, multicast, reserved or unspecified."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 and 2002:0a00:0001:: (6to4) carry an IPv4 address that is where the packet ends up.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _resolve(host: str, port: int) -> list[IPAddress]:
    """The host's addresses; none when it does not resolve."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        # A scope id (fe80::1%eth0) is not part of the address itself.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
