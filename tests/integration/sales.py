"""Helpers for the pipelines and deals tests: records made through the REST edge, a webhook
receiver on loopback, direct SQL for moving clocks back, polling."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar

import asyncpg
import httpx

from services.devstack import DevStack
from tests.integration.test_contacts_rest import h
from tests.polling import until

T = TypeVar("T")

__all__ = ["HookServer", "default_pipeline", "h", "make_deal", "make_pipeline", "sql", "stage_ids", "wait_for"]


def default_pipeline(api: httpx.Client, t: dict[str, str]) -> dict[str, Any]:
    r = api.get("/v1/pipelines", headers=h(t))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = next(p for p in r.json()["data"] if p["isDefault"])
    return found


def make_pipeline(api: httpx.Client, t: dict[str, str], name: str, stages: list[tuple[str, int, str]] | None = None,
                  **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **extra}
    if stages is not None:
        body["stages"] = [{"name": n, "probability": p, "kind": k} for n, p, k in stages]
    r = api.post("/v1/pipelines", headers=h(t), json=body)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()["data"]
    return made


def stage_ids(pipeline: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["id"] for s in pipeline["stages"]}


def make_deal(api: httpx.Client, t: dict[str, str], name: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/deals", headers=h(t), json={"name": name, **fields})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()["data"]
    return made


def sql(stack: DevStack, statement: str, *args: Any) -> list[asyncpg.Record]:
    """Run SQL as the database owner (to move a deal's clock back, say)."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(stack.migration_database_url)
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0, every: float = 0.1) -> T:
    """Poll until `probe` answers something truthy."""
    found = until(probe, timeout=timeout, interval=every)
    if not found:
        raise AssertionError(f"nothing after {timeout}s")
    return found


class HookServer:
    """An HTTP server on 127.0.0.1 recording the JSON POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                owner.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
