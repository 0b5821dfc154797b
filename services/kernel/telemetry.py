"""Structured JSON logs and OpenTelemetry tracing, set up once per process."""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from services.kernel import context
from services.kernel.settings import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id and tenant of the rpc being served."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = context.current()
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if ctx.request_id:
            entry["requestId"] = ctx.request_id
        if ctx.tenant_id:
            entry["tenantId"] = ctx.tenant_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # Without an exporter no span is ever seen: record none (ids are still made and passed on,
    # so a caller's trace continues through this process), which saves building each span.
    sampler = ALWAYS_OFF if settings.otel_exporter not in ("console", "otlp") else None
    provider = TracerProvider(resource=Resource.create({"service.name": "crm-services"}), sampler=sampler)
    if settings.otel_exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
