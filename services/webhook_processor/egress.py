"""Egress safety: outbound calls only to allow-listed (scheme, host, port) endpoints, and
never to private, loopback or link-local addresses unless explicitly allowed.

A destination URL comes from configuration, so the static check (`check_allowed`) runs at
start-up. The address check runs where the name is resolved for a connection, because DNS
can change (a public name later resolving to 169.254.169.254 is the classic SSRF path):
`EgressResolver` is the HTTP client's resolver, so the addresses checked are the addresses
connected to (a name resolved once to check and again to connect could answer differently
the second time: DNS rebinding). An IP literal is checked before every call
(`check_without_resolving`); `check` resolves and checks for the calls whose connection is
not made by that resolver (SMTP, and HTTP through a proxy, which resolves the name itself).
Redirects are never followed by the HTTP client, so the checked URL is the URL that is
called.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.webhook_processor.config import (
    AllowRule,
    Destination,
    EgressConfig,
    EmailSmtpDestination,
    GenericWebhookDestination,
    OutboxFileDestination,
    SalesforceDestination,
    SlackApiDestination,
    SlackWebhookDestination,
    TicketDestination,
)

DEFAULT_PORTS = {"http": 80, "https": 443, "smtp": 25}

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressDenied(Exception):
    """A call that must not be made. `code` is the dead-letter code."""

    def __init__(self, message: str, code: str = "egress_denied") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def destination_urls(dest: Destination) -> list[str]:
    """Every endpoint a destination can call (an outbox destination calls nothing)."""
    match dest:
        case OutboxFileDestination():
            return []
        case TicketDestination():
            return [dest.url, dest.ticket_url("0")]
        case SlackWebhookDestination() | SlackApiDestination():
            return [dest.url]
        case GenericWebhookDestination():
            return [dest.url]
        case SalesforceDestination():
            return [dest.instance_url]
        case EmailSmtpDestination():
            return [f"smtp://{dest.host}:{dest.port}"]
    raise AssertionError(f"unhandled destination {dest!r}")


def _is_private(ip: IpAddress) -> bool:
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


class EgressPolicy:
    def __init__(self, config: EgressConfig) -> None:
        self._rules = list(config.allow)
        self._private_ok: list[IpNetwork] = [
            ipaddress.ip_network(item, strict=False) for item in config.allow_private
        ]

    @staticmethod
    def _split(url: str) -> tuple[str, str, int]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise EgressDenied(f"{url!r} is not an http(s)/smtp URL with a host")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise EgressDenied(f"{url!r} has an invalid port") from exc
        return scheme, parts.hostname.lower(), port

    @staticmethod
    def _matches(rule: AllowRule, scheme: str, host: str, port: int) -> bool:
        rule_port = rule.port or DEFAULT_PORTS[rule.scheme]
        pattern = rule.host.lower()
        if pattern.startswith("*."):
            host_ok = host.endswith(pattern[1:]) and host != pattern[2:]
        else:
            host_ok = host == pattern
        return rule.scheme == scheme and host_ok and rule_port == port

    def check_allowed(self, url: str) -> tuple[str, str, int]:
        """Static check: the URL's (scheme, host, port) is on the allow-list."""
        scheme, host, port = self._split(url)
        if not any(self._matches(rule, scheme, host, port) for rule in self._rules):
            raise EgressDenied(f"{scheme}://{host}:{port} is not in egress.allow")
        return scheme, host, port

    def _address_ok(self, ip: IpAddress) -> bool:
        return not _is_private(ip) or any(ip in net for net in self._private_ok)

    def check_addresses(self, host: str, addresses: Iterable[IpAddress]) -> None:
        """Every address `host` resolved to must be public or explicitly allowed."""
        for ip in addresses:
            if not self._address_ok(ip):
                raise EgressDenied(
                    f"{host} resolves to {ip}, a private/loopback/link-local address "
                    "not in egress.allow_private",
                    "egress_private_address",
                )

    def check_without_resolving(self, url: str) -> None:
        """The allow-list, and the address when the host is an IP literal. A name's addresses
        are left to whoever resolves it for the connection (`EgressResolver`)."""
        _scheme, host, _port = self.check_allowed(url)
        literal = _ip_literal(host)
        if literal is not None:
            self.check_addresses(host, [literal])

    async def check(self, url: str) -> None:
        """Allow-list plus resolution: every address the host resolves to must be public
        or explicitly allowed. For connections `EgressResolver` does not make."""
        _scheme, host, port = self.check_allowed(url)
        literal = _ip_literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise dns_failed(host, exc) from exc
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        self.check_addresses(host, addresses)


def _ip_literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def dns_failed(host: str, cause: OSError) -> EgressDenied:
    return EgressDenied(f"{host} does not resolve: {cause}", "egress_dns_failed")


class EgressResolver(AbstractResolver):
    """aiohttp's resolver with the policy applied to its answers: a connection opens only to
    addresses the policy allows, the very ones it checked. aiohttp caches the answers
    (`ttl_dns_cache`, 10 s) and a kept-alive connection needs none, so a delivery over a kept
    connection resolves nothing (a check that resolved by itself paid a worker thread's
    look-up per delivery). aiohttp does not ask it for an IP literal: the caller checks
    those (`EgressPolicy.check_without_resolving`)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._resolver.resolve(host, port, family)
        # A scoped IPv6 address ("fe80::1%eth0") is read with its scope.
        self._policy.check_addresses(host, (ipaddress.ip_address(a["host"]) for a in answers))
        return answers

    async def close(self) -> None:
        await self._resolver.close()
