"""Render the Envoy bootstrap of the REST edge from the compiled descriptor set.

Every `crm.*` service with `google.api.http` rules is transcoded; which rpcs are public, which
answer a raw `google.api.HttpBody`, which stream and which accept uploads is read from the
descriptors, so the contract stays the single source of truth. Output is deterministic YAML
(pinned by tests/edge/golden/envoy.yaml); beside it goes the descriptor set the transcoder loads
(see transcoder_descriptor()). edge/README.md explains the filter chain and the envelope.

    python -m edge.envoy_config --descriptor gen/descriptor.binpb --out envoy/envoy.yaml \
        [--listen 127.0.0.1:8080] [--upstream crm.contacts.v1.ContactsService=127.0.0.1:50051 ...] \
        [--default-upstream 127.0.0.1:50051] [--jwks-file PATH] [--admin-port 9901] \
        [--rate-limit-service 127.0.0.1:8081 | none]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from google.api import annotations_pb2 as http_annotations
from google.api import http_pb2
from google.protobuf import descriptor_pb2

from edge.ratelimit import descriptors as rate_limits

try:
    from crm.common.v1 import annotations_pb2 as crm_annotations
except ImportError:  # gen/python not on the path: use the repo's copy.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gen" / "python"))
    from crm.common.v1 import annotations_pb2 as crm_annotations

KiB = 1024
MiB = 1024 * KiB

# Request body limits: uploads (rpcs whose body binds a google.api.HttpBody) get the large one.
BODY_LIMIT = 1 * MiB
UPLOAD_BODY_LIMIT = 64 * MiB
# Per-stream buffer cap for responses (the transcoder and the envelope buffer unary answers);
# matches gRPC's default 4 MiB message limit.
CONNECTION_BUFFER_LIMIT = 4 * MiB

PROVIDER = "crm"
JWT_ISSUER = "crm-auth"
JWT_AUDIENCES = ["crm-api"]
JWT_CACHE_SIZE = 10_000  # verified access tokens an Envoy keeps (each a few hundred bytes)
TENANT_CLAIM_HEADER = "x-jwt-tenant-id"
HTTP_BODY = ".google.api.HttpBody"
PAGE_INFO = ".crm.common.v1.PageInfo"
LUA_FILTER = "envoy.filters.http.lua"
ENVELOPE_LUA = Path(__file__).with_name("envelope.lua")
DEFAULT_TRANSCODER_PATH = Path(__file__).resolve().parents[1] / "envoy" / "transcoder.binpb"
# Envelope of a 500 that Envoy answers itself (the request id was vetted by the envelope filter).
INTERNAL_ERROR_ENVELOPE = (
    '{"success":false,"data":null,"meta":{"timestamp":"%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%",'
    '"version":"v1","requestId":"%REQ(X-REQUEST-ID)%"},'
    '"errors":[{"code":"INTERNAL","message":"Internal server error","field":""}]}'
)
# Used when no JWKS file is given. Envoy refuses an empty key set, so this holds one Ed25519
# public key whose private half was discarded when it was made: every protected call fails
# closed (401) until a real key set is configured.
UNUSABLE_JWKS = (
    '{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"unconfigured",'
    '"x":"7dJF5XPna89U2o_P2T_j2TVnXYFC5kv3Gjg-ryLpO5c"}]}'
)


@dataclass(frozen=True)
class Binding:
    """One `google.api.http` rule (primary or additional binding)."""

    verb: str
    path: str
    body: str


@dataclass(frozen=True)
class Rpc:
    service: str  # fully qualified, e.g. crm.contacts.v1.ContactsService
    name: str
    bindings: tuple[Binding, ...]
    public: bool
    success_status: int
    server_streaming: bool
    raw_output: bool  # answers google.api.HttpBody: passed through unwrapped
    upload: bool  # request body is (or binds) a google.api.HttpBody
    response_body: str  # JSON name of the `response_body` field the envelope unwraps into `data`
    pagination: str  # JSON name of a crm.common.v1.PageInfo field of the answer (meta.pagination)
    rate_class: str = "standard"  # budget the edge counts calls against (edge/ratelimit)

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.name}"


def _bindings(rule: http_pb2.HttpRule) -> list[Binding]:
    out: list[Binding] = []
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        out.append(Binding(rule.custom.kind.upper(), rule.custom.path, rule.body))
    elif pattern is not None:
        out.append(Binding(pattern.upper(), getattr(rule, pattern), rule.body))
    for extra in rule.additional_bindings:
        out.extend(_bindings(extra))
    return out


def load_rpcs(descriptor_path: str | Path) -> dict[str, list[Rpc]]:
    """Services of the `crm.` packages that have HTTP rules, in descriptor order."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(Path(descriptor_path).read_bytes())
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    for f in fds.file:
        for msg in f.message_type:
            messages[f".{f.package}.{msg.name}" if f.package else f".{msg.name}"] = msg

    def json_name(type_name: str, field: str) -> str:
        msg = messages.get(type_name)
        return next((fd.json_name or fd.name for fd in msg.field if fd.name == field), "") if msg else ""

    def page_info_field(type_name: str) -> str:
        msg = messages.get(type_name)
        return next((fd.json_name or fd.name for fd in msg.field if fd.type_name == PAGE_INFO), "") if msg else ""

    def is_upload(input_type: str, body: str) -> bool:
        if input_type == HTTP_BODY:
            return True
        msg = messages.get(input_type)
        if msg is None or body in ("", "*"):
            return False
        return any(fd.name == body and fd.type_name == HTTP_BODY for fd in msg.field)

    services: dict[str, list[Rpc]] = {}
    for f in fds.file:
        if not f.package.startswith("crm."):
            continue
        for svc in f.service:
            full = f"{f.package}.{svc.name}"
            rpcs: list[Rpc] = []
            for m in svc.method:
                rule = m.options.Extensions[http_annotations.http]
                bindings = _bindings(rule)
                if not bindings:
                    continue
                raw_output = m.output_type == HTTP_BODY
                policy = m.options.Extensions[crm_annotations.policy]
                rpcs.append(
                    Rpc(
                        service=full,
                        name=m.name,
                        bindings=tuple(bindings),
                        public=policy.public,
                        success_status=policy.success_status,
                        server_streaming=m.server_streaming,
                        raw_output=raw_output,
                        # Public rpcs with a raw body (the OAuth token endpoint's form) keep
                        # the small limit: no large buffers for unauthenticated callers.
                        upload=not policy.public and any(is_upload(m.input_type, b.body) for b in bindings),
                        response_body="" if raw_output else json_name(m.output_type, rule.response_body),
                        pagination="" if raw_output else page_info_field(m.output_type),
                        rate_class=rate_limits.rate_class_of(policy.rate_class, f"{full}/{m.name}"),
                    )
                )
            if rpcs:
                services[full] = rpcs
    return services


def transcoder_descriptor(descriptor_path: str | Path) -> bytes:
    """The descriptor set as Envoy's transcoder is given it.

    Envoy 1.40 refuses `response_body` on a non-HttpBody field ("Setting response_body is not
    supported yet"), so it is cleared here and emulated by the envelope filter, which unwraps that
    field into `data` (route metadata `response_body`). Source info is dropped: Envoy needs no
    comments, and the file shrinks about six-fold.
    """
    fds = descriptor_pb2.FileDescriptorSet.FromString(Path(descriptor_path).read_bytes())
    for f in fds.file:
        f.ClearField("source_code_info")
        for svc in f.service:
            for m in svc.method:
                if m.output_type == HTTP_BODY or not m.options.HasExtension(http_annotations.http):
                    continue
                rule = m.options.Extensions[http_annotations.http]
                rule.response_body = ""
                for extra in rule.additional_bindings:
                    extra.response_body = ""
    return fds.SerializeToString(deterministic=True)


def write_transcoder_descriptor(descriptor_path: str | Path, target: str | Path) -> None:
    """Write transcoder_descriptor() to `target`, leaving an identical file untouched."""
    data = transcoder_descriptor(descriptor_path)
    out = Path(target)
    if not out.exists() or out.read_bytes() != data:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # concurrent renders never share one
        tmp.write_bytes(data)
        tmp.replace(out)


def template_regex(template: str) -> str:
    """A google.api.http path template as an RE2 regex (used for per-route REST limits)."""
    path, verb = template, ""
    last = template.rsplit("/", 1)[-1]
    if ":" in last and not last.endswith("}"):  # custom verb, e.g. /v1/things/{id}:cancel
        path, verb = template[: template.rfind(":")], template[template.rfind(":") + 1 :]
    parts: list[str] = []
    for seg in path.strip("/").split("/"):
        m = re.fullmatch(r"\{[^=}]+(?:=([^}]*))?\}", seg)
        inner = (m.group(1) or "*") if m else None
        if seg == "**" or (inner is not None and "**" in inner):
            parts.append(".+")
        elif seg == "*" or inner is not None:
            parts.append("[^/]+")
        else:
            parts.append(re.escape(seg))
    return "^/" + "/".join(parts) + (re.escape(":" + verb) if verb else "") + "$"


@dataclass(frozen=True)
class Endpoint:
    host: str  # IP, DNS name or unix socket path
    port: int  # 0 for unix sockets

    @property
    def is_pipe(self) -> bool:
        return self.port == 0

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def parse_endpoints(spec: str) -> list[Endpoint]:
    """`host:port`, `[v6]:port` or `unix:/path`, comma-separated for several processes."""
    out: list[Endpoint] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item.startswith("unix:"):
            out.append(Endpoint(item[len("unix:") :], 0))
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"bad upstream address {item!r} (want host:port or unix:/path)")
        out.append(Endpoint(host.strip("[]"), int(port)))
    if not out:
        raise ValueError(f"empty upstream address {spec!r}")
    return out


def _address(ep: Endpoint) -> dict[str, Any]:
    if ep.is_pipe:
        return {"pipe": {"path": ep.host}}
    return {"socket_address": {"address": ep.host, "port_value": ep.port}}


def _cluster(name: str, endpoints: list[Endpoint]) -> dict[str, Any]:
    dns = any(not ep.is_pipe and not ep.is_ip for ep in endpoints)
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STRICT_DNS" if dns else "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_LIMIT,
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {"max_concurrent_streams": 1000}},
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(ep)}} for ep in endpoints]}],
        },
        # grpc.health.v1 with the empty service name: "is this server up".
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "2s",
                "no_traffic_interval": "2s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": ""},
            }
        ],
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": 1024,
                    "max_pending_requests": 1024,
                    "max_requests": 4096,
                    "max_retries": 3,
                }
            ]
        },
    }
    if dns:
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    return cluster


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


BUFFER_PER_ROUTE = "envoy.extensions.filters.http.buffer.v3.BufferPerRoute"


def _routes(services: dict[str, list[Rpc]], rate_limited: bool = False) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    # Routes on REST paths exist only so the buffer filter (which runs before the transcoder)
    # finds the upload limit; the transcoder rewrites the path and clears the route cache, so
    # the router then picks a gRPC route below. Anything left on a REST path is not an rpc.
    for rpcs in services.values():
        for rpc in rpcs:
            if not rpc.upload:
                continue
            for b in rpc.bindings:
                match: dict[str, Any] = (
                    {"path": b.path} if "{" not in b.path and "*" not in b.path
                    else {"safe_regex": {"regex": template_regex(b.path)}}
                )
                match["headers"] = [{"name": ":method", "string_match": {"exact": b.verb}}]
                routes.append(
                    {
                        "name": f"upload {b.verb} {b.path}",
                        "match": match,
                        "direct_response": {"status": 404},
                        "typed_per_filter_config": {
                            "envoy.filters.http.buffer": _typed(
                                BUFFER_PER_ROUTE, buffer={"max_request_bytes": UPLOAD_BODY_LIMIT}
                            )
                        },
                    }
                )
    # gRPC routes: what the transcoder produces and what native gRPC clients send.
    for service, rpcs in services.items():
        common: dict[str, Any] = {
            # Native gRPC bodies stream; their size is bounded by the servers' message limit.
            "typed_per_filter_config": {"envoy.filters.http.buffer": _typed(BUFFER_PER_ROUTE, disabled=True)},
        }
        action: dict[str, Any] = {
            "cluster": service,
            "timeout": "30s",
            # Honour a gRPC client's deadline (grpc-timeout), capped.
            "max_stream_duration": {"grpc_timeout_header_max": "300s"},
            "retry_policy": {"retry_on": "connect-failure,refused-stream,reset-before-request", "num_retries": 2},
        }
        for rpc in rpcs:
            meta: dict[str, Any] = {}
            if rpc.raw_output:
                meta["raw"] = True
            if rpc.success_status:
                meta["success_status"] = rpc.success_status
            if rpc.response_body:
                meta["response_body"] = rpc.response_body
            if rpc.pagination:
                meta["pagination"] = rpc.pagination
            # --- rate limits: public and non-standard rpcs need a route of their own ---
            own_limits = rate_limited and (rpc.public or rpc.rate_class != "standard")
            if not meta and not rpc.server_streaming and not own_limits:
                continue
            route: dict[str, Any] = {
                "name": rpc.grpc_path,
                "match": {"path": rpc.grpc_path},
                "route": dict(action),
                **common,
            }
            if rpc.server_streaming:
                # Streams (exports) run as long as data flows; the idle timeout bounds a stall.
                route["route"] = {**action, "timeout": "0s", "idle_timeout": "60s"}
            if meta:
                # Read by edge/envelope.lua through handle:metadata() once the route is final.
                route["metadata"] = {"filter_metadata": {LUA_FILTER: meta}}
            if rate_limited:
                route["route"]["rate_limits"] = rate_limits.route_rate_limits(
                    public=rpc.public, rate_class=rpc.rate_class
                )
            routes.append(route)
        catch_all = dict(action)
        if rate_limited:
            catch_all["rate_limits"] = rate_limits.route_rate_limits(public=False, rate_class="standard")
        routes.append({"name": f"/{service}/", "match": {"prefix": f"/{service}/"}, "route": catch_all, **common})
    return routes


def _jwt_authn(services: dict[str, list[Rpc]], jwks_file: str | None, rate_limited: bool = False) -> dict[str, Any]:
    # Runs after the transcoder, so rules match the canonical /<pkg>.<Svc>/<Method> path for
    # REST and native gRPC alike; the catch-all makes anything not listed as public fail closed.
    rules: list[dict[str, Any]] = [
        {"match": {"path": rpc.grpc_path}} for rpcs in services.values() for rpc in rpcs if rpc.public
    ]
    rules.append({"match": {"prefix": "/"}, "requires": {"provider_name": PROVIDER}})
    jwks = {"filename": jwks_file} if jwks_file else {"inline_string": UNUSABLE_JWKS}
    return _typed(
        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        providers={
            PROVIDER: {
                "issuer": JWT_ISSUER,
                "audiences": JWT_AUDIENCES,
                "forward": True,
                "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
                "local_jwks": jwks,
                "clock_skew_seconds": 30,
                # Verified tokens are kept (their expiry still checked on each use), so a client's
                # every request does not pay for a signature check; revocation is the services' job.
                "jwt_cache_config": {"jwt_cache_size": JWT_CACHE_SIZE},
                "claim_to_headers": [
                    {"header_name": TENANT_CLAIM_HEADER, "claim_name": "tid"},
                    *(rate_limits.CLAIM_HEADERS if rate_limited else ()),  # rate limits: user and tier
                ],
            }
        },
        rules=rules,
    )


def _http_filters(
    services: dict[str, list[Rpc]],
    descriptor_path: str,
    jwks_file: str | None,
    local_rate_limit: tuple[int, int] | None,
    rate_limited: bool = False,
) -> list[dict[str, Any]]:
    # Decode order top to bottom, encode order bottom to top: the envelope filter is first so
    # its response side runs last, after the transcoder, and also sees every local reply.
    filters: list[dict[str, Any]] = [
        {
            "name": LUA_FILTER,
            "typed_config": _typed(
                "envoy.extensions.filters.http.lua.v3.Lua",
                default_source_code={"inline_string": ENVELOPE_LUA.read_text()},
            ),
        },
        {
            "name": "envoy.filters.http.health_check",
            "typed_config": _typed(
                "envoy.extensions.filters.http.health_check.v3.HealthCheck",
                pass_through_mode=False,
                headers=[{"name": ":path", "string_match": {"exact": "/healthz"}}],
                # Ready when every cluster has a healthy host. 1% (not 0.01: on 1.40 that never failed).
                cluster_min_healthy_percentages={name: {"value": 1.0} for name in services},
            ),
        },
    ]
    if local_rate_limit is not None:
        tokens, seconds = local_rate_limit
        filters.append(
            {
                "name": "envoy.filters.http.local_ratelimit",
                "typed_config": _typed(
                    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                    stat_prefix="edge_rate_limit",
                    token_bucket={"max_tokens": tokens, "tokens_per_fill": tokens, "fill_interval": f"{seconds}s"},
                    filter_enabled={"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                    filter_enforced={"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                    response_headers_to_add=[
                        {"header": {"key": "retry-after", "value": str(seconds)}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                    ],
                    rate_limited_as_resource_exhausted=True,
                ),
            }
        )
    filters += [
        {
            "name": "envoy.filters.http.buffer",
            "typed_config": _typed("envoy.extensions.filters.http.buffer.v3.Buffer", max_request_bytes=BODY_LIMIT),
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": _typed(
                "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                proto_descriptor=descriptor_path,
                services=list(services),
                print_options={"always_print_primitive_fields": True},
                # grpc-status/grpc-message stay headers; the envelope filter builds the error.
                convert_grpc_status=False,
                auto_mapping=False,
                request_validation_options={
                    "reject_unknown_method": True,
                    "reject_unknown_query_parameters": True,
                    "reject_binding_body_field_collisions": True,
                },
                case_insensitive_enum_parsing=True,
            ),
        },
        {"name": "envoy.filters.http.jwt_authn", "typed_config": _jwt_authn(services, jwks_file, rate_limited)},
        # Global rate limits: after jwt_authn (it keys on verified claims), on the gRPC route.
        *([rate_limits.http_filter()] if rate_limited else []),
        {
            "name": "envoy.filters.http.router",
            "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router", suppress_envoy_headers=True),
        },
    ]
    return filters


def _hcm(filters: list[dict[str, Any]], routes: list[dict[str, Any]]) -> dict[str, Any]:
    return _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="edge",
        codec_type="AUTO",  # HTTP/1.1 for REST, h2c (prior knowledge) for gRPC, one port
        use_remote_address=True,
        normalize_path=True,
        merge_slashes=True,
        path_with_escaped_slashes_action="REJECT_REQUEST",
        server_header_transformation="PASS_THROUGH",  # no "server: envoy"
        generate_request_id=True,
        preserve_external_request_id=True,  # the envelope filter vets a client-sent id
        always_set_request_id_in_response=True,
        request_id_extension={
            "typed_config": _typed(
                "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig", pack_trace_reason=False
            )
        },
        stream_idle_timeout="60s",
        request_timeout="300s",
        request_headers_timeout="10s",
        common_http_protocol_options={"idle_timeout": "300s", "headers_with_underscores_action": "DROP_HEADER"},
        http2_protocol_options={"max_concurrent_streams": 100},
        local_reply_config={
            "mappers": [
                # A 500 raised while the answer is being encoded (e.g. an answer too large to
                # transcode) bypasses the filters, so it gets its envelope here; the envelope
                # filter, when it does see a local 500, builds the same generic one.
                {
                    "filter": {
                        "status_code_filter": {
                            "comparison": {
                                "op": "EQ",
                                "value": {"default_value": 500, "runtime_key": "edge.local_reply.internal_status"},
                            }
                        }
                    },
                    "body_format_override": {
                        "text_format_source": {"inline_string": INTERNAL_ERROR_ENVELOPE},
                        "content_type": "application/json",
                    },
                },
                # Marks Envoy's own replies so the envelope filter wraps them (and nothing else twice).
                {
                    "filter": {
                        "status_code_filter": {
                            "comparison": {
                                "op": "GE",
                                "value": {"default_value": 100, "runtime_key": "edge.local_reply.min_status"},
                            }
                        }
                    },
                    "headers_to_add": [
                        {"header": {"key": "x-crm-local-reply", "value": "1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                    ],
                }
            ]
        },
        access_log=[
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": _typed(
                    "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    log_format={
                        "json_format": {
                            "time": "%START_TIME%",
                            "requestId": "%REQ(X-REQUEST-ID)%",
                            "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
                            "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                            "rpc": "%REQ(:PATH)%",
                            "status": "%RESPONSE_CODE%",
                            "flags": "%RESPONSE_FLAGS%",
                            "details": "%RESPONSE_CODE_DETAILS%",
                            "upstream": "%UPSTREAM_CLUSTER%",
                            "durationMs": "%DURATION%",
                        }
                    },
                ),
            }
        ],
        route_config={
            "name": "crm",
            "response_headers_to_remove": ["x-envoy-upstream-service-time"],
            "virtual_hosts": [{"name": "crm", "domains": ["*"], "routes": routes}],
        },
        http_filters=filters,
    )


def _parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bad address {value!r} (want host:port)")
    return host.strip("[]"), int(port)


def build(
    descriptor_path: str | Path,
    *,
    listen: str = "127.0.0.1:8080",
    upstreams: dict[str, str] | None = None,
    default_upstream: str = "127.0.0.1:50051",
    jwks_file: str | Path | None = None,
    admin_port: int = 9901,
    local_rate_limit: tuple[int, int] | None = None,
    transcoder_path: str | Path | None = None,
    rate_limit_service: str | None = rate_limits.DEFAULT_ADDRESS,
) -> dict[str, Any]:
    """The bootstrap as a dict (writes nothing).

    `transcoder_path` is the descriptor file the config names for the transcoder (see
    transcoder_descriptor()); `local_rate_limit=(tokens, seconds)` adds an edge-wide bucket;
    `rate_limit_service` is the address of edge/ratelimit (None: no per-user limits).
    """
    services = load_rpcs(descriptor_path)
    if not services:
        raise ValueError(f"{descriptor_path}: no crm.* service with HTTP rules")
    upstreams = dict(upstreams or {})
    unknown = sorted(set(upstreams) - set(services))
    if unknown:
        raise ValueError(f"--upstream names unknown services: {', '.join(unknown)}")
    host, port = _parse_hostport(listen)
    rate_limited = bool(rate_limit_service)
    filters = _http_filters(
        services, str(transcoder_path or descriptor_path), str(jwks_file) if jwks_file else None, local_rate_limit,
        rate_limited,
    )
    clusters = [_cluster(name, parse_endpoints(upstreams.get(name, default_upstream))) for name in services]
    if rate_limit_service:
        clusters.append(_cluster(rate_limits.CLUSTER, parse_endpoints(rate_limit_service)))
    return {
        "node": {"id": "crm-edge", "cluster": "crm-edge"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "edge",
                    "address": {"socket_address": {"address": host, "port_value": port}},
                    "per_connection_buffer_limit_bytes": CONNECTION_BUFFER_LIMIT,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": _hcm(filters, _routes(services, rate_limited)),
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": clusters,
        },
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": _typed(
                        "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        max_active_downstream_connections=50000,
                    ),
                }
            ]
        },
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # spell every block out: no &id001 anchors in the config


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line strings (the Lua script) as literal blocks, so the golden file stays readable.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def render(
    descriptor_path: str | Path,
    *,
    listen: str = "127.0.0.1:8080",
    upstreams: dict[str, str] | None = None,
    default_upstream: str = "127.0.0.1:50051",
    jwks_file: str | Path | None = None,
    admin_port: int = 9901,
    local_rate_limit: tuple[int, int] | None = None,
    transcoder_path: str | Path | None = None,
    rate_limit_service: str | None = rate_limits.DEFAULT_ADDRESS,
) -> str:
    """The bootstrap as YAML text (deterministic for fixed arguments).

    Also writes the transcoder's descriptor (see transcoder_descriptor()) to `transcoder_path`,
    by default envoy/transcoder.binpb of this repository; the YAML names that path as given.
    """
    if transcoder_path is None:
        transcoder_path = DEFAULT_TRANSCODER_PATH
    write_transcoder_descriptor(descriptor_path, transcoder_path)
    config = build(
        descriptor_path,
        listen=listen,
        upstreams=upstreams,
        default_upstream=default_upstream,
        jwks_file=jwks_file,
        admin_port=admin_port,
        local_rate_limit=local_rate_limit,
        transcoder_path=transcoder_path,
        rate_limit_service=rate_limit_service,
    )
    header = "# Generated by `python -m edge.envoy_config`; do not edit. Paths resolve from Envoy's cwd.\n"
    return header + str(yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=False))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.envoy_config", description=__doc__.split("\n\n")[0])
    p.add_argument("--descriptor", required=True, help="descriptor set (--include_imports --include_source_info)")
    p.add_argument("--out", required=True, help="where to write the bootstrap YAML ('-' for stdout)")
    p.add_argument("--listen", default="127.0.0.1:8080")
    p.add_argument("--upstream", action="append", default=[], metavar="SERVICE=ADDR[,ADDR...]",
                   help="address of one service (host:port or unix:/path); repeatable")
    p.add_argument("--default-upstream", default="127.0.0.1:50051", metavar="ADDR[,ADDR...]")
    p.add_argument("--jwks-file", help="JSON Web Key Set that verifies access tokens")
    p.add_argument("--admin-port", type=int, default=9901)
    p.add_argument("--transcoder-descriptor", metavar="PATH",
                   help="where to write the descriptor Envoy loads (default: transcoder.binpb beside --out)")
    p.add_argument("--local-rate-limit", metavar="TOKENS/SECONDS",
                   help="edge-wide token bucket, e.g. 1000/60 (per edge instance)")
    p.add_argument("--rate-limit-service", default=rate_limits.DEFAULT_ADDRESS, metavar="ADDR|none",
                   help="address of the per-user rate-limit service (python -m edge.ratelimit); 'none' disables")
    args = p.parse_args(argv)
    upstreams: dict[str, str] = {}
    for item in args.upstream:
        name, sep, addr = item.partition("=")
        if not sep or not addr:
            p.error(f"--upstream wants SERVICE=ADDR, got {item!r}")
        upstreams[name] = addr
    rate: tuple[int, int] | None = None
    if args.local_rate_limit:
        tokens, _, seconds = args.local_rate_limit.partition("/")
        rate = (int(tokens), int(seconds or "1"))
    try:
        text = render(
            args.descriptor,
            listen=args.listen,
            upstreams=upstreams,
            default_upstream=args.default_upstream,
            jwks_file=args.jwks_file,
            admin_port=args.admin_port,
            local_rate_limit=rate,
            transcoder_path=args.transcoder_descriptor
            or (Path(args.out).parent / "transcoder.binpb" if args.out != "-" else DEFAULT_TRANSCODER_PATH),
            rate_limit_service=None if args.rate_limit_service.lower() == "none" else args.rate_limit_service,
        )
    except ValueError as exc:
        p.error(str(exc))
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
