"""The one server interceptor: tracing, request context, authentication, authorization, errors.

Order inside it is fixed: span first (outermost), then the caller's context, then the policy
check, then the request's soundness (`wire`: bytes that do not parse, NUL characters), then the
handler; any DomainError becomes a gRPC status with google.rpc details, any
other exception a generic INTERNAL (logged, never shown). For the REST edge it adds trailers:
`x-crm-http-status` (201/202 on creation and jobs, 422 on validation errors), `x-crm-errors`
(the envelope's errors), `x-crm-pagination` (a list answer's page info), and what the rpc
asked for through `context.set_response_header` / `set_envelope_members`:
`x-crm-header-<name>` (copied onto the REST answer for a fixed set of names) and `x-crm-members`
(extra top-level JSON members).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from crm.common.v1 import annotations_pb2, common_pb2
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import propagate, trace

from services.kernel import context, preconditions, wire
from services.kernel.authn import TokenVerifier
from services.kernel.errors import DomainError, from_database
from services.kernel.idempotency import IdempotencyKeys
from services.kernel.policy import lookup
from services.kernel.usage import ApiCallMeter

log = logging.getLogger("crm.rpc")
tracer = trace.get_tracer("crm.kernel")

MAX_EDGE_ERRORS = 50  # keeps the x-crm-errors trailer well under metadata limits


def _status_details(err: DomainError) -> tuple[tuple[str, str | bytes], ...]:
    """google.rpc.Status (ErrorInfo + BadRequest) for gRPC clients, hints for the REST edge."""
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain="crm", metadata=err.metadata)
    details = [any_pb2.Any()]
    details[0].Pack(info)
    if err.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.message, reason=v.code)
                for v in err.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    status = status_pb2.Status(code=err.code.value[0], message=err.message, details=details)
    edge_errors = [{"code": v.code, "message": v.message, "field": v.field} for v in err.violations]
    if not edge_errors:
        edge_errors = [{"code": err.reason, "message": err.message, "field": ""}]
    trailers: list[tuple[str, str | bytes]] = [
        ("grpc-status-details-bin", status.SerializeToString()),
        ("x-crm-errors", json.dumps(edge_errors[:MAX_EDGE_ERRORS], ensure_ascii=True)),
    ]
    if err.http_status:
        trailers.append(("x-crm-http-status", str(err.http_status)))
    return tuple(trailers)


def _extras_trailers(extras: context.ResponseExtras) -> list[tuple[str, str]]:
    out = [(f"x-crm-header-{name}", value) for name, value in sorted(extras.headers.items())]
    if extras.members:
        out.append(("x-crm-members", json.dumps(extras.members, ensure_ascii=True, separators=(",", ":"))))
    return out


def _pagination_trailer(response: Message) -> tuple[str, str] | None:
    page = getattr(response, "pagination", None)
    if isinstance(page, common_pb2.PageInfo):
        return ("x-crm-pagination", json.dumps(json_format.MessageToDict(page, always_print_fields_with_no_presence=True)))
    return None


def _metadata(ctx: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in ctx.invocation_metadata() or ():
        if isinstance(value, str):
            out[key] = value
    return out


# Called after each successful rpc with its method, policy and (for unary rpcs) answer, inside
# the caller's context: access logging and usage counting hang here, not in the services.
Observer = Callable[[str, annotations_pb2.MethodPolicy, Message | None], None]


class KernelInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, policies: dict[str, annotations_pb2.MethodPolicy], verifier: TokenVerifier,
                 observers: list[Observer] | None = None, meter: ApiCallMeter | None = None,
                 idempotency: IdempotencyKeys | None = None,
                 post_responses: dict[str, type[Message]] | None = None,
                 versioned: frozenset[str] = frozenset()) -> None:
        self.policies = policies
        self.verifier = verifier
        self.observers = observers or []
        self.idempotency = idempotency
        self.post_responses = post_responses or {}
        self.versioned = versioned  # records answered with an ETag (policy.versioned_records)
        self.meter = meter or ApiCallMeter()  # API calls per tenant, for the tenants' usage

    def _observe(self, method: str, policy: annotations_pb2.MethodPolicy, response: Message | None) -> None:
        for observer in self.observers:
            try:
                observer(method, policy, response)
            except Exception:  # an observer must never fail the rpc it watches
                log.warning("observer failed for %s", method, exc_info=True)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        policy = lookup(self.policies, method)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, policy, handler.unary_unary),
                request_deserializer=wire.tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, policy, handler.unary_stream),
                request_deserializer=wire.tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _caller(self, policy: annotations_pb2.MethodPolicy, ctx: grpc.aio.ServicerContext[Any, Any],
                md: dict[str, str]) -> context.RequestContext:
        base = context.RequestContext(
            request_id=md.get("x-request-id", ""),
            # The edge appends the address it saw last; earlier entries are whatever the
            # client claimed (spoofable, so never used for throttling or audit).
            client_ip=md.get("x-forwarded-for", "").split(",")[-1].strip() or (ctx.peer() or ""),
            user_agent=md.get("user-agent", ""),
            if_match=md.get("if-match", "") if policy.conditional else "",
        )
        if policy.public:
            # A public rpc still learns who calls when a valid token comes along (logout, refresh).
            if "authorization" in md:
                try:
                    return self.verifier.context(md, base)
                except DomainError:
                    return base
            return base
        caller = self.verifier.context(md, base)
        if policy.permission:
            caller.require(policy.permission)
            caller = caller.scoped_to(policy.permission.split(":", 1)[0])
        return caller

    @asynccontextmanager
    async def _serving(
        self, method: str, policy: annotations_pb2.MethodPolicy, ctx: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[None]:
        """One rpc's frame, for unary and streaming alike: span, caller, policy, error mapping."""
        md = _metadata(ctx)
        # Without trace headers there is no caller's trace to continue: skip the propagators.
        parent = propagate.extract(md) if "traceparent" in md else None
        with tracer.start_as_current_span(method, context=parent, kind=trace.SpanKind.SERVER) as span:
            token = None
            extras_token = context.bind_extras()
            try:
                caller = self._caller(policy, ctx, md)
                token = context.bind(caller)
                self.meter.record(caller.tenant_id)
                span.set_attribute("crm.tenant_id", caller.tenant_id)
                span.set_attribute("crm.request_id", caller.request_id)
                yield
            except DomainError as err:
                span.set_attribute("crm.error_reason", err.reason)
                trailers = _status_details(err) + tuple(_extras_trailers(context.extras()))
                await ctx.abort(err.code, err.message, trailing_metadata=trailers)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                mapped = from_database(exc)
                if mapped is not None:
                    await ctx.abort(mapped.code, mapped.message, trailing_metadata=_status_details(mapped))
                log.exception("unhandled error in %s", method)
                await ctx.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                if token is not None:
                    context.reset(token)
                context.reset_extras(extras_token)

    def _unary(self, method: str, policy: annotations_pb2.MethodPolicy, inner: Any) -> Any:
        async def answer(request: Message, ctx: grpc.aio.ServicerContext[Any, Any]) -> tuple[Message, list[tuple[str, str]]]:
            response: Message = await inner(request, ctx)
            tag = preconditions.response_tag(response, self.versioned)
            if tag is not None:
                context.extras().headers.setdefault("etag", tag)
            trailers: list[tuple[str, str]] = []
            if policy.success_status:
                trailers.append(("x-crm-http-status", str(policy.success_status)))
            trailers += _extras_trailers(context.extras())
            page = _pagination_trailer(response)
            if page:
                trailers.append(page)
            return response, trailers

        response_class = self.post_responses.get(method)

        async def behavior(request: Message, ctx: grpc.aio.ServicerContext[Any, Any]) -> Message:
            async with self._serving(method, policy, ctx):
                wire.check(request, method)  # once the caller is known: strangers learn nothing
                key = _metadata(ctx).get("idempotency-key", "") if response_class is not None else ""
                if key and self.idempotency is not None and response_class is not None:
                    response, trailers = await self.idempotency.once(method, key, request, response_class,
                                                                     lambda: answer(request, ctx))
                else:
                    response, trailers = await answer(request, ctx)
                if trailers:
                    ctx.set_trailing_metadata(tuple(trailers))
                self._observe(method, policy, response)
                return response
            raise AssertionError("unreachable: errors abort the rpc")

        return behavior

    def _stream(self, method: str, policy: annotations_pb2.MethodPolicy, inner: Any) -> Any:
        async def behavior(request: Message, ctx: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Message]:
            async with self._serving(method, policy, ctx):
                wire.check(request, method)
                async for item in inner(request, ctx):
                    yield item
                self._observe(method, policy, None)

        return behavior
