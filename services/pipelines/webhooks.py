"""Outgoing automation webhooks, guarded against server-side request forgery.

A rule's URL is user input that this service will call from inside the network. Every call
resolves the host, refuses the request if any address is private, loopback, link-local,
multicast, reserved or a cloud metadata endpoint, and then connects to the vetted address
itself (Host header and TLS server name keep the original name), so a DNS answer that changes
between check and connect cannot redirect it. Redirects are not followed; time and response
size are bounded. Loopback is allowed only when the deployment says so (tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services answer on these (AWS/GCP/Azure/OpenStack, AWS over IPv6, Alibaba).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
RESOLVE_TIMEOUT = 3.0
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "crm-automation/1"


class WebhookRefused(Exception):
    """The target may not be called; `reason` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    address: IPAddress


@dataclass(frozen=True)
class Delivery:
    status_code: int
    body_excerpt: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def forbidden_reason(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why a webhook may not reach `ip`, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return forbidden_reason(embedded, allow_loopback=allow_loopback)
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_private:
        return f"{ip} is a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return f"{ip} is not a unicast public address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        raise WebhookRefused(f"cannot resolve {host}: {exc}") from None
    found: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise WebhookRefused(f"{host} has no address")
    return found


async def vet(url: str, *, allow_loopback: bool) -> Target:
    """Resolve `url`'s host and refuse it unless every address is allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("not an http or https URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(parts.hostname, port)
    for ip in addresses:
        why = forbidden_reason(ip, allow_loopback=allow_loopback)
        if why:
            raise WebhookRefused(f"{parts.hostname} resolves to a forbidden address: {why}")
    return Target(url=url, host=parts.hostname, port=port, address=addresses[0])


async def post_json(url: str, payload: dict[str, Any], *, allow_loopback: bool, timeout: float = 5.0,
                    headers: dict[str, str] | None = None, max_response_bytes: int = MAX_RESPONSE_BYTES) -> Delivery:
    """POST `payload` to `url` after vetting it; raises WebhookRefused or httpx.HTTPError."""
    target = await vet(url, allow_loopback=allow_loopback)
    parts = urlsplit(url)
    literal = f"[{target.address}]" if target.address.version == 6 else str(target.address)
    netloc = f"{literal}:{target.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    default_port = 443 if parts.scheme == "https" else 80
    host_header = parts.hostname if target.port == default_port else f"{parts.hostname}:{target.port}"
    send_headers = {"content-type": "application/json", "user-agent": USER_AGENT, "host": host_header or "",
                    **(headers or {})}
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    body = json.dumps(payload, default=str).encode()
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        request = client.build_request("POST", pinned, content=body, headers=send_headers, extensions=extensions)
        response = await client.send(request, stream=True)
        try:
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received.extend(chunk[: max_response_bytes - len(received)])
                if len(received) >= max_response_bytes:
                    break
        finally:
            await response.aclose()
    return Delivery(status_code=response.status_code, body_excerpt=received[:200].decode("utf-8", "replace"))
