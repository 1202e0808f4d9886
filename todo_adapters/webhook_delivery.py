"""Sending webhooks over HTTP (httpx), only to public addresses.

No SSRF: a URL is `http(s)` only, and every address its host resolves to must be public: not
loopback, private, link-local (169.254.169.254 among them), multicast, reserved or unspecified,
nor the AWS metadata service's IPv6 address (fd00:ec2::254, private anyway). The check is made
when an endpoint is registered and again at every attempt, and the attempt connects to the very
address it checked (the host name still goes in `Host` and in TLS's SNI and certificate check):
a name that resolves to a public address when checked and to a private one a moment later (DNS
rebinding) reaches nothing private. Redirects are not followed; the response's body is not read.
`allow_private` (TODO_WEBHOOKS_ALLOW_PRIVATE_NETWORKS) lifts the address rule, for intranets and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from todo_core.webhooks import AttemptOutcome, ClaimedDelivery, signature

#: Seconds an attempt may take, connecting included.
ATTEMPT_TIMEOUT = 10.0
#: What of an error the deliveries list shows.
ERROR_MAX = 300
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def refused_address(address: IPAddress) -> bool:
    """Whether events may not be sent to this address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address in _METADATA
        or not address.is_global
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class Destination:
    """A URL checked: its scheme, host and port, and the address to connect to."""

    def __init__(self, scheme: str, host: str, port: int, address: IPAddress) -> None:
        self.scheme, self.host, self.port, self.address = scheme, host, port, address


class WebhookDestinationsChecker:
    """Where events may go (`WebhookDestinations`), and the address to reach each at."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def refusal(self, url: str) -> str | None:
        checked = await self.resolve(url)
        return checked if isinstance(checked, str) else None

    async def resolve(self, url: str) -> Destination | str:
        """The address to send to, or why not."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "must be an absolute http(s) URL"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "must be an absolute http(s) URL"
        if parts.username is not None or parts.password is not None:
            return "must hold no user name or password"
        port = port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                return f"its host {host!r} cannot be resolved"
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
        if not addresses:
            return f"its host {host!r} cannot be resolved"
        if not self._allow_private:
            for address in addresses:
                if refused_address(address):
                    return f"its host resolves to {address}, which is not a public address"
        return Destination(parts.scheme, host, port, addresses[0])


class HttpWebhookSender:
    """`WebhookSender` with httpx: one client, no redirects, no proxies from the environment."""

    def __init__(self, destinations: WebhookDestinationsChecker, *, timeout: float = ATTEMPT_TIMEOUT) -> None:
        self._destinations = destinations
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=timeout)
        self._timeout = timeout

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, claimed: ClaimedDelivery, timestamp: int) -> AttemptOutcome:
        destination = await self._destinations.resolve(claimed.url)
        if isinstance(destination, str):
            return AttemptOutcome(None, f"refused: {destination}"[:ERROR_MAX])
        delivery = claimed.delivery
        body = delivery.body.encode()
        parts = urlsplit(claimed.url)
        address = destination.address
        netloc = f"[{address}]" if address.version == 6 else str(address)
        target = parts._replace(netloc=f"{netloc}:{destination.port}").geturl()
        default_port = destination.port == (443 if destination.scheme == "https" else 80)
        headers = {
            "Host": destination.host if default_port else f"{destination.host}:{destination.port}",
            "Content-Type": "application/json",
            "User-Agent": "todo-webhooks/1",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(claimed.secret, delivery.message_id, timestamp, delivery.body),
        }
        try:
            async with asyncio.timeout(self._timeout):
                request = self._client.build_request(
                    "POST", target, content=body, headers=headers, extensions={"sni_hostname": destination.host}
                )
                response = await self._client.send(request, stream=True)
                await response.aclose()  # the body is not read: a receiver's answer is its status
        except (httpx.HTTPError, TimeoutError, OSError) as error:
            return AttemptOutcome(None, f"{type(error).__name__}: {error}"[:ERROR_MAX])
        return AttemptOutcome(response.status_code, None)
