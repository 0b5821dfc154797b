"""A small CalDAV client over httpx (RFC 4791 + RFC 6578 sync-collection), and the guard that
keeps user-supplied calendar URLs away from internal networks.

The `caldav` package is deliberately not used: it pulls `niquests`/`urllib3-future`, which
replace urllib3 process-wide. CalDAV is plain HTTP with XML bodies (PROPFIND, REPORT, PUT,
DELETE), parsed here with defusedxml.

SSRF: a URL is checked when saved (every address its host resolves to must be public), and
again at every connection by a network backend that resolves the host itself, refuses
non-public addresses and connects to the vetted address, so DNS rebinding between the check
and the request does not help. Redirects are not followed. Loopback may be allowed for local
development and tests (`CRM_CALDAV_ALLOW_LOOPBACK=1`, never in production).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpcore
import httpx
from defusedxml import ElementTree

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_RESPONSE_BYTES = 20 * 1024 * 1024


class UnsafeAddress(httpcore.ConnectError):
    """The host resolves to an address the service must not reach."""


class CalDavError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidSyncToken(CalDavError):
    """The server no longer knows the stored sync token: a full sync is needed."""


def _public(address: str, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    # is_global excludes private, link-local (169.254.169.254 metadata included), CGNAT,
    # unique-local, reserved, multicast and unspecified ranges.
    return ip.is_global and not ip.is_multicast


async def resolve_public(host: str, port: int, allow_loopback: bool) -> list[str]:
    """Every address `host` resolves to, or UnsafeAddress if any of them is not public."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise httpcore.ConnectError(f"cannot resolve {host}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    refused = [a for a in addresses if not _public(a, allow_loopback)]
    if not addresses or refused:
        raise UnsafeAddress(f"{host} resolves to a non-public address ({', '.join(refused) or 'none'})")
    return addresses


async def check_url(url: str, allow_loopback: bool) -> str:
    """Why `url` may not be used as a calendar URL, or "" when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL"
    if parts.username or parts.password:
        return "must not carry credentials; use username and password"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "has an invalid port"
    try:
        await resolve_public(parts.hostname, port, allow_loopback)
    except UnsafeAddress:
        return "points to a private, loopback, link-local or otherwise internal address"
    except httpcore.ConnectError:
        return "its host name does not resolve"
    return ""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets and connects to the vetted address (the TLS name stays the host's)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, allow_loopback: bool) -> None:
        self.inner = inner
        self.allow_loopback = allow_loopback

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        address = (await resolve_public(host, port, self.allow_loopback))[0]
        return await self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                            socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise UnsafeAddress("unix sockets are not calendar servers")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_client(allow_loopback: bool, auth: tuple[str, str] | None = None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no public hook for the connection backend; its pool (httpcore) has one.
    pool = transport._pool
    pool._network_backend = _GuardedBackend(pool._network_backend, allow_loopback)
    return httpx.AsyncClient(transport=transport, auth=auth, timeout=TIMEOUT, follow_redirects=False,
                             trust_env=False)


@dataclass
class Change:
    href: str
    etag: str
    data: str  # the calendar object (iCalendar text); "" when the server did not send it


@dataclass
class SyncResult:
    changed: list[Change]
    deleted: list[str]
    token: str


def _tag(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


_SYNC_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:sync-collection xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>"
    "<d:prop><d:getetag/><c:calendar-data/></d:prop></d:sync-collection>"
)
_MULTIGET_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    "<d:prop><d:getetag/><c:calendar-data/></d:prop>"
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class CalDavClient:
    """One calendar collection on one server."""

    def __init__(self, url: str, username: str, password: str, *, allow_loopback: bool) -> None:
        self.url = url if url.endswith("/") else url + "/"
        origin = urlsplit(self.url)
        self._origin = (origin.scheme, origin.netloc)
        auth = (username, password) if username else None
        self.http = guarded_client(allow_loopback, auth)

    async def close(self) -> None:
        await self.http.aclose()

    def href_url(self, href: str) -> str:
        """The absolute URL of an href the server sent, which must stay on the calendar's origin."""
        url = urljoin(self.url, quote(href, safe="/:"))
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise CalDavError(f"the server pointed outside the calendar's origin: {href}")
        return url

    def href_for(self, uid: str) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in uid)
        return unquote(urlsplit(self.url).path) + f"{safe}.ics"

    async def _send(self, method: str, url: str, *, body: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self.http.request(method, url, content=body.encode() if body is not None else None,
                                               headers=headers or {})
        except UnsafeAddress as exc:
            raise CalDavError(f"refused: {exc}") from None
        except httpx.HTTPError as exc:
            raise CalDavError(f"{method} failed: {exc.__class__.__name__}: {exc}") from None
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise CalDavError("the calendar server's answer is too large")
        if response.status_code in (401, 403) and method != "REPORT":
            raise CalDavError("the calendar server refused the credentials", response.status_code)
        return response

    async def check(self) -> None:
        """The URL answers PROPFIND as a calendar collection with these credentials."""
        body = ('<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/>'
                "</d:prop></d:propfind>")
        r = await self._send("PROPFIND", self.url, body=body, headers={"Depth": "0", "Content-Type": "application/xml"})
        if r.status_code != 207:
            raise CalDavError(f"PROPFIND answered {r.status_code}", r.status_code)
        if _tag(CALDAV, "calendar") not in r.text and "calendar" not in r.text:
            raise CalDavError("the URL is not a calendar collection")

    async def sync(self, token: str) -> SyncResult:
        """Changes since `token` (everything when empty), with their calendar data."""
        r = await self._send("REPORT", self.url, body=_SYNC_BODY.format(token=_escape(token)),
                             headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        if r.status_code in (403, 409, 412) and token:
            raise InvalidSyncToken("the server no longer knows the sync token", r.status_code)
        if r.status_code != 207:
            raise CalDavError(f"sync-collection REPORT answered {r.status_code}", r.status_code)
        root = ElementTree.fromstring(r.content)
        changed: list[Change] = []
        deleted: list[str] = []
        for response in root.findall(_tag(DAV, "response")):
            # Hrefs are kept decoded (servers differ in what they percent-encode) and encoded on use.
            href = unquote((response.findtext(_tag(DAV, "href")) or "").strip())
            if not href or href.rstrip("/") == unquote(urlsplit(self.url).path).rstrip("/"):
                continue
            status = response.findtext(_tag(DAV, "status")) or ""
            if " 404 " in status:
                deleted.append(href)
                continue
            etag, data = "", ""
            for propstat in response.findall(_tag(DAV, "propstat")):
                if " 200 " not in (propstat.findtext(_tag(DAV, "status")) or ""):
                    continue
                prop = propstat.find(_tag(DAV, "prop"))
                if prop is None:
                    continue
                etag = (prop.findtext(_tag(DAV, "getetag")) or etag).strip()
                data = prop.findtext(_tag(CALDAV, "calendar-data")) or data
            if href.endswith(".ics") or data:
                changed.append(Change(href, etag, data))
        missing = [c for c in changed if not c.data]
        if missing:
            fetched = await self.multiget([c.href for c in missing])
            for c in missing:
                c.etag, c.data = fetched.get(c.href, (c.etag, ""))
        new_token = (root.findtext(_tag(DAV, "sync-token")) or "").strip()
        return SyncResult(changed, deleted, new_token)

    async def multiget(self, hrefs: list[str]) -> dict[str, tuple[str, str]]:
        body = _MULTIGET_HEAD + "".join(f"<d:href>{_escape(quote(h, safe='/:'))}</d:href>" for h in hrefs) + "</c:calendar-multiget>"
        r = await self._send("REPORT", self.url, body=body,
                             headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
        if r.status_code != 207:
            raise CalDavError(f"calendar-multiget REPORT answered {r.status_code}", r.status_code)
        out: dict[str, tuple[str, str]] = {}
        for response in ElementTree.fromstring(r.content).findall(_tag(DAV, "response")):
            href = unquote((response.findtext(_tag(DAV, "href")) or "").strip())
            prop = response.find(f"{_tag(DAV, 'propstat')}/{_tag(DAV, 'prop')}")
            if prop is not None:
                out[href] = ((prop.findtext(_tag(DAV, "getetag")) or "").strip(),
                             prop.findtext(_tag(CALDAV, "calendar-data")) or "")
        return out

    async def get(self, href: str) -> tuple[str, str] | None:
        r = await self._send("GET", self.href_url(href))
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise CalDavError(f"GET answered {r.status_code}", r.status_code)
        return r.headers.get("etag", ""), r.text

    async def put(self, href: str, ics: str, etag: str) -> str | None:
        """Create (no etag: If-None-Match: *) or replace (If-Match: etag). The new etag, or None
        when the server's copy changed meanwhile (412)."""
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        headers.update({"If-Match": etag} if etag else {"If-None-Match": "*"})
        r = await self._send("PUT", self.href_url(href), body=ics, headers=headers)
        if r.status_code == 412:
            return None
        if r.status_code not in (200, 201, 204):
            raise CalDavError(f"PUT answered {r.status_code}", r.status_code)
        new = r.headers.get("etag", "")
        if not new:
            got = await self.get(href)
            new = got[0] if got else ""
        return new

    async def delete(self, href: str, etag: str) -> bool:
        """False when the server's copy changed meanwhile (412); a missing one counts as deleted."""
        r = await self._send("DELETE", self.href_url(href), headers={"If-Match": etag} if etag else {})
        if r.status_code == 412:
            return False
        if r.status_code not in (200, 204, 404):
            raise CalDavError(f"DELETE answered {r.status_code}", r.status_code)
        return True
