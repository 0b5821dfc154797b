"""A counting proxy in front of PostgreSQL's unix socket: what the server really receives.

Clients connect to the proxy's socket directory instead of the server's; every byte is passed
on unchanged, and the frontend messages are parsed on the way to count round trips (a simple
`Query`, or an extended-protocol batch ended by `Sync`) and statements (each statement of a
simple query, each `Execute`). BEGIN, COMMIT and set_config count like any other statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

_NO_TYPE_BYTE = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered with one byte, then the startup


@dataclass
class Counts:
    round_trips: int = 0
    statements: int = 0
    queries: list[str] = field(default_factory=list)  # simple-query texts, for failure messages

    def since(self, before: Counts) -> Counts:
        return Counts(self.round_trips - before.round_trips, self.statements - before.statements,
                      self.queries[len(before.queries):])


class CountingProxy:
    def __init__(self, upstream_socket: Path, directory: Path) -> None:
        self.upstream = upstream_socket
        self.socket = directory / upstream_socket.name  # same port number in the name
        self.counts = Counts()
        self._server: asyncio.AbstractServer | None = None

    def snapshot(self) -> Counts:
        return Counts(self.counts.round_trips, self.counts.statements, list(self.counts.queries))

    async def start(self) -> CountingProxy:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket))
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_unix_connection(str(self.upstream))
        back = asyncio.create_task(self._pipe(server_r, client_w))
        try:
            await self._frontend(client_r, server_w)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            server_w.close()
            await asyncio.gather(back, return_exceptions=True)
            client_w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # startup phase: length-prefixed messages without a type byte
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            writer.write(head + await reader.readexactly(length - 8))
            await writer.drain()
            if code not in _NO_TYPE_BYTE:
                break
        while True:
            kind = await reader.readexactly(1)
            size = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack("!i", size)[0] - 4)
            if kind == b"Q":
                text = body.rstrip(b"\0").decode()
                self.counts.round_trips += 1
                self.counts.statements += sum(1 for part in text.split(";") if part.strip())
                self.counts.queries.append(text)
            elif kind == b"E":
                self.counts.statements += 1
            elif kind == b"S":
                self.counts.round_trips += 1
            writer.write(kind + size + body)
            await writer.drain()
            if kind == b"X":
                return
