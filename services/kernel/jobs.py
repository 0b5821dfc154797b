"""Background jobs (imports, exports, merges ...): created in the request, run off it, polled.

A job row holds its input, so a process that dies mid-job resumes it on restart from the
`job_queue` table; a handler must therefore commit its effect and the job's completion in one
transaction (all or nothing), which `JobRunner` gives it through `finish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from crm.common.v1 import common_pb2
from google.protobuf import timestamp_pb2
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kernel import context
from services.kernel.db import Database
from services.kernel.errors import NotFound

log = logging.getLogger(__name__)

MAX_KEPT_ERRORS = 1000


@dataclass
class JobResult:
    """What a handler reports; `errors` are per-item problems (row, field, code, message)."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


# A handler gets the job row and an open tenant transaction in which it writes its effect.
Handler = Callable[[RowMapping, AsyncConnection], Awaitable[JobResult]]


def _ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def to_proto(row: RowMapping) -> common_pb2.Job:
    job = common_pb2.Job(
        job_id=str(row["id"]),
        kind=row["kind"],
        status=row["status"],
        progress=row["progress"],
        counts=common_pb2.JobCounts(total=row["total"], succeeded=row["succeeded"], failed=row["failed"]),
        errors=[common_pb2.JobItemError(**e) for e in row["errors"]],
        failure_reason=row["failure_reason"],
    )
    for name in ("created_at", "updated_at", "finished_at"):
        ts = _ts(row[name])
        if ts is not None:
            getattr(job, name).CopyFrom(ts)
    return job


class JobRunner:
    """Runs the jobs of one schema in this process, at most `concurrency` at a time."""

    def __init__(self, db: Database, schema: str, *, concurrency: int = 2) -> None:
        self.db = db
        self.schema = schema
        self.handlers: dict[str, Handler] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    def handler(self, kind: str, fn: Handler) -> None:
        self.handlers[kind] = fn

    async def create(
        self, conn: AsyncConnection, kind: str, *, params: dict[str, Any], input_data: bytes | None = None
    ) -> RowMapping:
        """Record a queued job in the caller's transaction; it starts once that commits."""
        ctx = context.current()
        row = (
            await conn.execute(
                text(
                    f'INSERT INTO "{self.schema}".jobs (id, tenant_id, kind, params, input, created_by) '
                    "VALUES (:id, :tenant, :kind, CAST(:params AS jsonb), :input, :by) RETURNING *"
                ),
                {
                    "id": uuid.uuid4(),
                    "tenant": ctx.tenant_id,
                    "kind": kind,
                    "params": json.dumps(params),
                    "input": input_data,
                    "by": ctx.user_id or None,
                },
            )
        ).mappings().one()
        await conn.execute(
            text(f'INSERT INTO "{self.schema}".job_queue (job_id, tenant_id) VALUES (:id, :tenant)'),
            {"id": row["id"], "tenant": ctx.tenant_id},
        )
        return row

    async def get(self, conn: AsyncConnection, job_id: str, kind: str) -> RowMapping:
        try:
            key = uuid.UUID(job_id)
        except ValueError:
            raise NotFound("job not found") from None
        row = (
            await conn.execute(
                text(f'SELECT * FROM "{self.schema}".jobs WHERE id = :id AND kind = :kind'), {"id": key, "kind": kind}
            )
        ).mappings().first()
        if row is None:
            raise NotFound("job not found")
        return row

    def start(self, job_id: uuid.UUID, tenant_id: str) -> None:
        """Run a committed job in the background (once the process is stopping, the job stays
        queued for the next process)."""
        if self._stopped:
            return
        task = asyncio.create_task(self._run(job_id, tenant_id), name=f"job-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> None:
        """Start the jobs a previous process left unfinished."""
        async with self.db.transaction(tenant_id="") as conn:
            rows = (await conn.execute(text(f'SELECT job_id, tenant_id FROM "{self.schema}".job_queue'))).all()
        for job_id, tenant_id in rows:
            self.start(job_id, str(tenant_id))

    async def stop(self) -> None:
        """Cut running jobs short; their queue rows stay and the next process resumes them."""
        self._stopped = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _set(self, job_id: uuid.UUID, tenant_id: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            await conn.execute(
                text(f'UPDATE "{self.schema}".jobs SET {sets}, updated_at = now() WHERE id = :id'), {"id": job_id, **values}
            )

    async def _run(self, job_id: uuid.UUID, tenant_id: str) -> None:
        async with self._slots:
            token = context.bind(context.RequestContext(tenant_id=tenant_id))
            try:
                async with self.db.transaction(tenant_id=tenant_id) as conn:
                    job = (
                        await conn.execute(text(f'SELECT * FROM "{self.schema}".jobs WHERE id = :id'), {"id": job_id})
                    ).mappings().first()
                if job is None or job["status"] in ("completed", "failed"):
                    await self._dequeue(job_id, tenant_id)
                    return
                handler = self.handlers.get(job["kind"])
                if handler is None:
                    await self._fail(job_id, tenant_id, f"no handler for job kind {job['kind']!r}")
                    return
                token2 = context.bind(
                    context.RequestContext(tenant_id=tenant_id, user_id=str(job["created_by"] or ""))
                )
                try:
                    await self._set(job_id, tenant_id, status="running", progress=0)
                    async with self.db.transaction(tenant_id=tenant_id) as conn:
                        result = await handler(job, conn)
                        await conn.execute(
                            text(
                                f'UPDATE "{self.schema}".jobs SET status = \'completed\', progress = 100, '
                                "total = :total, succeeded = :ok, failed = :failed, errors = CAST(:errors AS jsonb), "
                                "input = NULL, updated_at = clock_timestamp(), finished_at = clock_timestamp() WHERE id = :id"
                            ),
                            {
                                "id": job_id,
                                "total": result.total,
                                "ok": result.succeeded,
                                "failed": result.failed,
                                "errors": json.dumps(result.errors[:MAX_KEPT_ERRORS]),
                            },
                        )
                        await conn.execute(
                            text(f'DELETE FROM "{self.schema}".job_queue WHERE job_id = :id'), {"id": job_id}
                        )
                finally:
                    context.reset(token2)
            except asyncio.CancelledError:
                raise  # shutting down: the queue row stays, the next process resumes the job
            except Exception as exc:  # the job fails as a whole; nothing it wrote was committed
                log.exception("job %s failed", job_id)
                reason = getattr(exc, "message", None) or "the job failed unexpectedly"
                await self._fail(job_id, tenant_id, str(reason))
            finally:
                context.reset(token)

    async def _fail(self, job_id: uuid.UUID, tenant_id: str, reason: str) -> None:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            await conn.execute(
                text(
                    f'UPDATE "{self.schema}".jobs SET status = \'failed\', failure_reason = :reason, input = NULL, '
                    "updated_at = now(), finished_at = now() WHERE id = :id"
                ),
                {"id": job_id, "reason": reason},
            )
            await conn.execute(text(f'DELETE FROM "{self.schema}".job_queue WHERE job_id = :id'), {"id": job_id})

    async def _dequeue(self, job_id: uuid.UUID, tenant_id: str) -> None:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            await conn.execute(text(f'DELETE FROM "{self.schema}".job_queue WHERE job_id = :id'), {"id": job_id})
