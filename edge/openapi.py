"""OpenAPI 3.1 document of the REST surface that Envoy's gRPC-JSON transcoder exposes.

The protos are the contract; this module only reads the compiled descriptor set (the same one Envoy
loads) and describes what a REST client sees: the `google.api.http` routes of every `crm.*` rpc, the
request mapping of the transcoder (path variables, query parameters, body), the JSON mapping of
protobuf (lowerCamel names, int64 as strings, well-known types), and the response envelope that the
edge renders around every answer. Nothing here is hand-maintained per endpoint, so a new service
shows up in the document as soon as its protos are compiled.

    python -m edge.openapi --descriptor gen/descriptor.binpb --out gen/openapi/crm.openapi.json
"""

from __future__ import annotations

import argparse
import copy
import http
import importlib
import json
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

# googleapis-common-protos ships .pyi files but no py.typed marker.
from google.api import (  # type: ignore[import-untyped, unused-ignore]
    annotations_pb2 as http_annotations_pb2,
)
from google.api import field_behavior_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import descriptor_pb2

Schema = dict[str, Any]

_GEN_PYTHON: Final = Path(__file__).resolve().parent.parent / "gen" / "python"
_POLICY_MODULE: Final = "crm.common.v1.annotations_pb2"

TITLE: Final = "CRM Platform API"
VERSION: Final = "v1"
SERVER_URL: Final = "http://127.0.0.1:8080"
PACKAGE_PREFIX: Final = "crm."
OPENAPI_VERSION: Final = "3.1.0"

_FDP = descriptor_pb2.FieldDescriptorProto
_REF_PREFIX: Final = "#/components/schemas/"
_HTTP_BODY: Final = "google.api.HttpBody"
# A `google.api.HttpBody` body field of this name holds the request's other fields, form-encoded.
_FORM_FIELD: Final = "form"
_EMPTY: Final = "google.protobuf.Empty"
_XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_OPENAPI_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})

_INT32: Final[Schema] = {
    "type": "integer",
    "format": "int32",
    "minimum": -(2**31),
    "maximum": 2**31 - 1,
}
_UINT32: Final[Schema] = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
# The transcoder prints 64-bit integers as JSON strings (and accepts strings or numbers). The
# patterns keep a fuzzer's "valid" values inside the range protobuf accepts.
_INT64: Final[Schema] = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,18}$"}
_UINT64: Final[Schema] = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,19}$"}
_FLOAT_MAX: Final = 3.4028234663852886e38
_FLOAT: Final[Schema] = {
    "type": "number",
    "format": "float",
    "minimum": -_FLOAT_MAX,
    "maximum": _FLOAT_MAX,
}
_DOUBLE: Final[Schema] = {"type": "number", "format": "double"}
_BOOL: Final[Schema] = {"type": "boolean"}
_STRING: Final[Schema] = {"type": "string"}
_BYTES: Final[Schema] = {"type": "string", "format": "byte"}

_SCALARS: Final[dict[int, Schema]] = {
    _FDP.TYPE_INT32: _INT32,
    _FDP.TYPE_SINT32: _INT32,
    _FDP.TYPE_SFIXED32: _INT32,
    _FDP.TYPE_UINT32: _UINT32,
    _FDP.TYPE_FIXED32: _UINT32,
    _FDP.TYPE_INT64: _INT64,
    _FDP.TYPE_SINT64: _INT64,
    _FDP.TYPE_SFIXED64: _INT64,
    _FDP.TYPE_UINT64: _UINT64,
    _FDP.TYPE_FIXED64: _UINT64,
    _FDP.TYPE_DOUBLE: _DOUBLE,
    _FDP.TYPE_FLOAT: _FLOAT,
    _FDP.TYPE_BOOL: _BOOL,
    _FDP.TYPE_STRING: _STRING,
    _FDP.TYPE_BYTES: _BYTES,
}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


_FIELD_PATH = r"[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)*"

# Well-known types in their protobuf JSON form. Those in _QUERY_WKT have a string form and can
# therefore also travel as a query parameter.
_WKT: Final[dict[str, Schema]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {
        "type": "string",
        "pattern": f"^({_FIELD_PATH}(,{_FIELD_PATH})*)?$",
    },
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    _EMPTY: {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.DoubleValue": _nullable(_DOUBLE),
    "google.protobuf.FloatValue": _nullable(_FLOAT),
    "google.protobuf.Int64Value": _nullable(_INT64),
    "google.protobuf.UInt64Value": _nullable(_UINT64),
    "google.protobuf.Int32Value": _nullable(_INT32),
    "google.protobuf.UInt32Value": _nullable(_UINT32),
    "google.protobuf.BoolValue": _nullable(_BOOL),
    "google.protobuf.StringValue": _nullable(_STRING),
    "google.protobuf.BytesValue": _nullable(_BYTES),
}
_QUERY_WKT: Final = frozenset(
    name
    for name in _WKT
    if name
    not in {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        _EMPTY,
        "google.protobuf.Any",
    }
)
_WKT_ENUMS: Final[dict[str, Schema]] = {"google.protobuf.NullValue": {"type": "null"}}

# Error answers every operation documents, in the envelope. Public operations too answer 401:
# for the credentials they take (login, refresh). 503: a service or its database is down, or the
# service is not deployed; retry after Retry-After.
_ERRORS: Final[tuple[tuple[int, str], ...]] = (
    (400, "BadRequest"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "NotFound"),
    (409, "Conflict"),
    (422, "UnprocessableEntity"),
    (429, "TooManyRequests"),
    (500, "InternalServerError"),
    (503, "ServiceUnavailable"),
)

_PRECONDITION_FAILED: Final = 412  # only on conditional rpcs (services/kernel/preconditions.py)
_TOO_MANY_REQUESTS: Final = 429
_SERVICE_UNAVAILABLE: Final = 503
_TENANT_HEADER: Final = "X-Tenant-ID"
_REQUEST_ID_HEADER: Final = "X-Request-ID"
_IF_MATCH_HEADER: Final = "If-Match"
_IDEMPOTENCY_HEADER: Final = "Idempotency-Key"  # every unary POST (services/kernel/idempotency.py)
_ETAG_HEADER: Final = {
    "description": "The record's entity tag: send it back in `If-Match` to change the record only "
    "if nobody changed it since.",
    "schema": {"type": "string"},
}

_BINARY: Final[Schema] = {"type": "string", "format": "binary"}


# --------------------------------------------------------------------------------------------
# Descriptor index
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Message:
    full_name: str
    proto: descriptor_pb2.DescriptorProto
    comment: str
    field_comments: dict[str, str]


@dataclass(frozen=True)
class _Enum:
    full_name: str
    proto: descriptor_pb2.EnumDescriptorProto
    comment: str
    value_comments: dict[str, str]


@dataclass(frozen=True)
class _Method:
    proto: descriptor_pb2.MethodDescriptorProto
    comment: str


@dataclass(frozen=True)
class _Service:
    package: str
    name: str
    comment: str
    methods: list[_Method] = field(default_factory=list)


_INTERNAL_COMMENT = re.compile(r"\(--.*?--\)", re.DOTALL)


def _clean_comment(text: str) -> str:
    """Protoc comment text without the leading blank of each line, AIP-192 internal parts
    `(-- ... --)` and `buf:lint:` directives."""
    text = _INTERNAL_COMMENT.sub("", text)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if not line.startswith("buf:lint:")]
    return "\n".join(lines).strip()


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n", 1)[0].split())


class _Index:
    """Messages, enums and services of a descriptor set by full name, with their comments."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, _Message] = {}
        self.enums: dict[str, _Enum] = {}
        self.services: list[_Service] = []
        for file in fds.file:
            comments = {
                tuple(loc.path): _clean_comment(loc.leading_comments or loc.trailing_comments)
                for loc in file.source_code_info.location
            }
            for i, message in enumerate(file.message_type):
                self._add_message(file.package, message, (4, i), comments)
            for i, enum in enumerate(file.enum_type):
                self._add_enum(file.package, enum, (5, i), comments)
            for i, service in enumerate(file.service):
                entry = _Service(file.package, service.name, comments.get((6, i), ""))
                for j, method in enumerate(service.method):
                    entry.methods.append(_Method(method, comments.get((6, i, 2, j), "")))
                self.services.append(entry)

    def _add_message(
        self,
        scope: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
    ) -> None:
        full_name = f"{scope}.{message.name}" if scope else message.name
        field_comments = {
            f.name: comments.get((*path, 2, k), "") for k, f in enumerate(message.field)
        }
        self.messages[full_name] = _Message(
            full_name, message, comments.get(path, ""), field_comments
        )
        for j, nested in enumerate(message.nested_type):
            self._add_message(full_name, nested, (*path, 3, j), comments)
        for j, enum in enumerate(message.enum_type):
            self._add_enum(full_name, enum, (*path, 4, j), comments)

    def _add_enum(
        self,
        scope: str,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
    ) -> None:
        full_name = f"{scope}.{enum.name}" if scope else enum.name
        value_comments = {v.name: comments.get((*path, 2, k), "") for k, v in enumerate(enum.value)}
        self.enums[full_name] = _Enum(full_name, enum, comments.get(path, ""), value_comments)

    def message(self, full_name: str) -> _Message:
        try:
            return self.messages[full_name]
        except KeyError:
            raise ValueError(f"message {full_name} is not in the descriptor set") from None


def _type_name(f: descriptor_pb2.FieldDescriptorProto) -> str:
    return f.type_name.lstrip(".")


class _Policy(Protocol):
    """What this module reads of `crm.common.v1.MethodPolicy`."""

    permission: str
    public: bool
    success_status: int
    rate_class: str
    conditional: bool


def _policy_extension() -> Any:
    """The `crm.common.v1.policy` method option. Importing its generated module registers the
    extension, so that descriptors parsed afterwards carry it as a known extension. Imported by
    name: the stubs protoc writes for a module that declares an extension do not pass mypy."""
    try:
        module = importlib.import_module(_POLICY_MODULE)
    except ModuleNotFoundError:  # run from a checkout without gen/python on the path
        sys.path.append(str(_GEN_PYTHON))
        module = importlib.import_module(_POLICY_MODULE)
    return module.policy


def _extension(options: Any, handle: Any) -> Any:
    """`options.Extensions[handle]`; the typing stubs do not type generated extension handles."""
    return options.Extensions[handle]


def _behaviors(f: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(_extension(f.options, field_behavior_pb2.field_behavior))


def _is_output_only(f: descriptor_pb2.FieldDescriptorProto) -> bool:
    return field_behavior_pb2.OUTPUT_ONLY in _behaviors(f)


def _is_required(f: descriptor_pb2.FieldDescriptorProto) -> bool:
    behaviors = _behaviors(f)
    return (
        field_behavior_pb2.REQUIRED in behaviors and field_behavior_pb2.OUTPUT_ONLY not in behaviors
    )


def _json_name(f: descriptor_pb2.FieldDescriptorProto) -> str:
    if f.json_name:
        return f.json_name
    head, *rest = f.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _ref(name: str) -> Schema:
    return {"$ref": _REF_PREFIX + name}


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------


class _Schemas:
    """Builds components/schemas on demand: only what the operations reach is emitted."""

    def __init__(self, index: _Index) -> None:
        self.index = index
        self.components: dict[str, Schema] = {}

    # -- components ----------------------------------------------------------------------------

    def message_ref(self, full_name: str) -> Schema:
        """Schema of a message type: inline for well-known types, else a component reference."""
        if full_name in _WKT:
            return copy.deepcopy(_WKT[full_name])
        if full_name not in self.components:
            self.components[full_name] = {}  # placeholder: recursive messages refer to themselves
            self.components[full_name] = self._message_component(self.index.message(full_name))
        return _ref(full_name)

    def enum_ref(self, full_name: str) -> Schema:
        if full_name in _WKT_ENUMS:
            return copy.deepcopy(_WKT_ENUMS[full_name])
        if full_name not in self.components:
            enum = self.index.enums.get(full_name)
            if enum is None:
                raise ValueError(f"enum {full_name} is not in the descriptor set")
            names = [v.name for v in enum.proto.value]
            schema: Schema = {"type": "string", "enum": names}
            lines = [f"- `{n}`: {' '.join(c.split())}" for n, c in enum.value_comments.items() if c]
            description = "\n\n".join(part for part in (enum.comment, "\n".join(lines)) if part)
            if description:
                schema["description"] = description
            self.components[full_name] = schema
        return _ref(full_name)

    def _message_component(self, message: _Message) -> Schema:
        properties: Schema = {}
        required: list[str] = []
        for f in message.proto.field:
            properties[_json_name(f)] = self.field_schema(message, f)
            if _is_required(f):
                required.append(_json_name(f))
        schema: Schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if message.comment:
            schema["description"] = message.comment
        return schema

    # -- fields --------------------------------------------------------------------------------

    def _map_entry(self, f: descriptor_pb2.FieldDescriptorProto) -> _Message | None:
        if f.type != _FDP.TYPE_MESSAGE or f.label != _FDP.LABEL_REPEATED:
            return None
        entry = self.index.messages.get(_type_name(f))
        if entry is not None and entry.proto.options.map_entry:
            return entry
        return None

    def value_schema(self, f: descriptor_pb2.FieldDescriptorProto) -> Schema:
        """Schema of one value of the field (an element, for repeated fields)."""
        if f.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_GROUP):
            return self.message_ref(_type_name(f))
        if f.type == _FDP.TYPE_ENUM:
            return self.enum_ref(_type_name(f))
        return copy.deepcopy(_SCALARS[f.type])

    def field_schema(
        self, message: _Message, f: descriptor_pb2.FieldDescriptorProto, *, annotate: bool = True
    ) -> Schema:
        entry = self._map_entry(f)
        if entry is not None:
            value = next(v for v in entry.proto.field if v.name == "value")
            schema: Schema = {"type": "object", "additionalProperties": self.value_schema(value)}
        elif f.label == _FDP.LABEL_REPEATED:
            schema = {"type": "array", "items": self.value_schema(f)}
        else:
            schema = self.value_schema(f)
        if annotate:
            comment = message.field_comments.get(f.name, "")
            if comment:
                schema["description"] = comment
            behaviors = _behaviors(f)
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                schema["readOnly"] = True
            if field_behavior_pb2.INPUT_ONLY in behaviors:
                # Not `writeOnly`: the transcoder prints every field, so answers carry it, empty.
                note = "Input only: answers carry it empty."
                schema["description"] = f"{schema.get('description', '')}\n\n{note}".strip()
            if f.options.deprecated:
                schema["deprecated"] = True
        return schema

    def without(self, full_name: str, excluded: set[tuple[str, ...]]) -> Schema:
        """Inline schema of a message minus the given field paths (proto names), e.g. the fields a
        path template already binds."""
        if not excluded:
            return self.message_ref(full_name)
        message = self.index.message(full_name)
        self.message_ref(full_name)
        schema = copy.deepcopy(self.components[full_name])
        properties: Schema = schema["properties"]
        for f in message.proto.field:
            json_name = _json_name(f)
            if (f.name,) in excluded:
                del properties[json_name]
                continue
            nested = {p[1:] for p in excluded if len(p) > 1 and p[0] == f.name}
            if nested and f.type == _FDP.TYPE_MESSAGE and f.label != _FDP.LABEL_REPEATED:
                inner = self.without(_type_name(f), nested)
                siblings = {k: v for k, v in properties[json_name].items() if k != "$ref"}
                properties[json_name] = {**inner, **siblings}
        if "required" in schema:
            schema["required"] = [name for name in schema["required"] if name in properties]
            if not schema["required"]:
                del schema["required"]
        return schema


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------

_TEMPLATE_VAR = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class _Binding:
    method: str
    template: str
    body: str
    response_body: str


def _bindings(rule: Any) -> Iterator[_Binding]:
    """The rule of a `google.api.http` option and its additional bindings."""
    for r in (rule, *rule.additional_bindings):
        kind = r.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            method, template = r.custom.kind.lower(), r.custom.path
        else:
            method, template = kind, str(getattr(r, kind))
        yield _Binding(method, template, r.body, r.response_body)


def _status_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Success"


def _binary_response_content(method: str, paths: Iterable[str]) -> dict[str, Schema]:
    """Media types of a `google.api.HttpBody` answer. The contract does not name them, so they
    follow the route: JSON documents (the JWKS), exports (CSV or XLSX), else any file."""
    words = (method + " " + " ".join(paths)).lower()
    if "jwks" in words or any(p.endswith(".json") for p in paths):
        jwks: Schema = {
            "type": "object",
            "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
        }
        # RFC 7517 §8.5: the key set's own media type, which the auth service answers with.
        return {"application/jwk-set+json": {"schema": jwks}}
    content: dict[str, Schema] = {}
    if "pdf" in words:
        content["application/pdf"] = {"schema": dict(_BINARY)}
    if "csv" in words:
        content["text/csv"] = {"schema": dict(_BINARY)}
    if "excel" in words or "xlsx" in words:
        content[_XLSX] = {"schema": dict(_BINARY)}
    if not content and "export" in words:
        content = {"text/csv": {"schema": dict(_BINARY)}, _XLSX: {"schema": dict(_BINARY)}}
    return content or {"*/*": {"schema": dict(_BINARY)}}


def _binary_request_content(method: str, path: str) -> dict[str, Schema]:
    """Media types of a `google.api.HttpBody` upload: the raw file with its Content-Type, or the
    `file` part of multipart/form-data (the edge unwraps it)."""
    words = (method + " " + path).lower()
    raw = ["text/csv", _XLSX] if "import" in words else ["application/octet-stream"]
    content: dict[str, Schema] = {media: {"schema": dict(_BINARY)} for media in raw}
    content["multipart/form-data"] = {
        "schema": {
            "type": "object",
            "properties": {"file": dict(_BINARY)},
            "required": ["file"],
        },
        "encoding": {"file": {"contentType": ", ".join(raw)}},
    }
    return content


class _Builder:
    def __init__(self, index: _Index, policy: Any) -> None:
        self.index = index
        self.policy = policy
        self.schemas = _Schemas(index)
        self.paths: dict[str, dict[str, Schema]] = {}
        self.operation_ids: set[str] = set()
        self.tags: dict[str, str] = {}
        # Records answered with an ETag: what conditional rpcs change (policy.versioned_records).
        self.versioned: set[str] = set()

    # -- field paths ---------------------------------------------------------------------------

    def _resolve(
        self, message_name: str, dotted: str
    ) -> tuple[_Message, descriptor_pb2.FieldDescriptorProto, tuple[str, ...]]:
        """The field a template variable names (proto or JSON names, as the transcoder accepts),
        with its message and its path in proto names."""
        message = self.index.message(message_name)
        names: list[str] = []
        segments = dotted.split(".")
        for i, segment in enumerate(segments):
            found = next(
                (f for f in message.proto.field if segment in (f.name, _json_name(f))), None
            )
            if found is None:
                raise ValueError(f"{message_name} has no field {dotted!r}")
            names.append(found.name)
            if i == len(segments) - 1:
                return message, found, tuple(names)
            message = self.index.message(_type_name(found))
        raise ValueError(f"empty field path in {message_name}")  # pragma: no cover

    # -- parameters ----------------------------------------------------------------------------

    def _query_params(
        self,
        message_name: str,
        excluded: set[tuple[str, ...]],
        prefix: tuple[str, ...] = (),
        json_prefix: str = "",
        stack: tuple[str, ...] = (),
    ) -> list[Schema]:
        """Query parameters of the request fields no path variable or body takes: scalars, enums,
        repeated scalars, string-form well-known types, and the leaves of singular messages."""
        message = self.index.message(message_name)
        params: list[Schema] = []
        for f in message.proto.field:
            path = (*prefix, f.name)
            if path in excluded or _is_output_only(f):
                continue
            name = json_prefix + _json_name(f)
            if f.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_GROUP):
                type_name = _type_name(f)
                if type_name in _QUERY_WKT:
                    pass
                elif (
                    f.label == _FDP.LABEL_REPEATED
                    or type_name in _WKT
                    or type_name == _HTTP_BODY
                    or type_name in (*stack, message_name)
                ):
                    continue
                else:
                    params += self._query_params(
                        type_name, excluded, path, name + ".", (*stack, message_name)
                    )
                    continue
            param: Schema = {
                "name": name,
                "in": "query",
                "required": _is_required(f),
                "schema": self.schemas.field_schema(message, f, annotate=False),
            }
            comment = message.field_comments.get(f.name, "")
            if comment:
                param["description"] = comment
            if f.options.deprecated:
                param["deprecated"] = True
            if f.label == _FDP.LABEL_REPEATED:
                param["style"] = "form"
                param["explode"] = True
            params.append(param)
        return params

    # -- operations ----------------------------------------------------------------------------

    def add_service(self, service: _Service) -> None:
        added = False
        for method in service.methods:
            rule = _extension(method.proto.options, http_annotations_pb2.http)
            bindings = list(_bindings(rule))
            templates = [b.template for b in bindings]
            for n, binding in enumerate(bindings):
                added |= self._add_operation(service, method, binding, n, templates)
        if added:
            self.tags[service.name] = service.comment

    def _add_operation(
        self,
        service: _Service,
        method: _Method,
        binding: _Binding,
        n: int,
        templates: list[str],
    ) -> bool:
        proto = method.proto
        if binding.method not in _OPENAPI_METHODS:
            warnings.warn(
                f"{service.name}.{proto.name}: HTTP method {binding.method!r} cannot be described "
                "in OpenAPI; skipped",
                stacklevel=2,
            )
            return False
        policy: _Policy = _extension(proto.options, self.policy)
        path = _TEMPLATE_VAR.sub(lambda m: "{" + m.group(1) + "}", binding.template)
        operation_id = f"{service.name}_{proto.name}" + (f"_{n}" if n else "")
        if operation_id in self.operation_ids:
            raise ValueError(f"duplicate operationId {operation_id}")
        self.operation_ids.add(operation_id)
        item = self.paths.setdefault(path, {})
        if binding.method in item:
            raise ValueError(
                f"{binding.method.upper()} {path} is bound twice "
                f"({item[binding.method]['operationId']} and {operation_id})"
            )

        operation: Schema = {
            "operationId": operation_id,
            "tags": [service.name],
            "x-grpc-method": f"/{service.package}.{service.name}/{proto.name}",
        }
        summary = _first_paragraph(method.comment)
        if summary:
            operation["summary"] = summary
        if "\n\n" in method.comment:
            operation["description"] = method.comment
        if policy.permission:
            operation["x-permission"] = policy.permission
        # The per-user hourly budget the edge counts the call against (edge/ratelimit).
        operation["x-rate-limit-class"] = policy.rate_class or "standard"
        if proto.options.deprecated:
            operation["deprecated"] = True
        self._request(operation, proto, binding, path, public=bool(policy.public))
        responses: Schema = {
            str(policy.success_status or 200): self._success(
                proto, policy.success_status or 200, binding, templates
            )
        }
        for status, name in _ERRORS:
            responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
        if binding.method == "post" and not proto.server_streaming:
            operation["parameters"].append({"$ref": f"#/components/parameters/{_IDEMPOTENCY_HEADER}"})
        if policy.conditional:
            operation["parameters"].append({"$ref": f"#/components/parameters/{_IF_MATCH_HEADER}"})
            responses[str(_PRECONDITION_FAILED)] = {"$ref": "#/components/responses/PreconditionFailed"}
        operation["responses"] = responses
        if policy.public:
            operation["security"] = []
        item[binding.method] = operation
        return True

    def _path_parameters(
        self, input_name: str, template: str
    ) -> tuple[list[Schema], set[tuple[str, ...]]]:
        """Parameters of the template's variables, and the request fields they bind."""
        parameters: list[Schema] = []
        bound: set[tuple[str, ...]] = set()
        for match in _TEMPLATE_VAR.finditer(template):
            variable, pattern = match.group(1), match.group(2)
            message, f, field_path = self._resolve(input_name, variable)
            bound.add(field_path)
            param: Schema = {
                "name": variable,
                "in": "path",
                "required": True,
                "schema": self.schemas.field_schema(message, f, annotate=False),
            }
            description = message.field_comments.get(f.name, "")
            if pattern and pattern != "*":
                description = f"{description}\n\nMatches `{pattern}`.".strip()
            if description:
                param["description"] = description
            parameters.append(param)
        return parameters, bound

    def _request(
        self,
        operation: Schema,
        proto: descriptor_pb2.MethodDescriptorProto,
        binding: _Binding,
        path: str,
        *,
        public: bool,
    ) -> None:
        """Parameters and request body, mapped the way the transcoder maps them: path variables
        first, then the body (`*` = the rest of the request, or one field), the rest as query."""
        input_name = proto.input_type.lstrip(".")
        parameters, excluded = self._path_parameters(input_name, binding.template)
        if not public:
            parameters.append({"$ref": f"#/components/parameters/{_TENANT_HEADER}"})
        parameters.append({"$ref": f"#/components/parameters/{_REQUEST_ID_HEADER}"})
        if input_name == _HTTP_BODY and binding.body:
            operation["requestBody"] = {
                "required": True,
                "content": _binary_request_content(proto.name, path),
            }
        elif binding.body == "*":
            operation["requestBody"] = {
                "required": self._has_required(input_name, excluded),
                "content": {
                    "application/json": {"schema": self.schemas.without(input_name, excluded)}
                },
            }
        elif binding.body == _FORM_FIELD and self._is_http_body(input_name, binding.body):
            # The OAuth endpoints: the raw body carries the request's own fields, form-encoded
            # (RFC 6749) or as JSON, under their proto names.
            operation["requestBody"] = self._form_body(input_name, binding.body)
        else:
            if binding.body:
                operation["requestBody"] = self._field_body(
                    input_name, binding.body, excluded, proto.name, path
                )
                excluded.add(self._resolve(input_name, binding.body)[2])
            parameters += self._query_params(input_name, excluded)
        operation["parameters"] = parameters

    def _is_http_body(self, input_name: str, body: str) -> bool:
        _, f, _ = self._resolve(input_name, body)
        return f.type == _FDP.TYPE_MESSAGE and _type_name(f) == _HTTP_BODY

    def _form_body(self, input_name: str, body: str) -> Schema:
        message = self.index.message(input_name)
        properties: dict[str, Schema] = {}
        for f in message.proto.field:
            if f.name == body:
                continue
            schema = self.schemas.field_schema(message, f, annotate=False)
            comment = message.field_comments.get(f.name, "")
            properties[f.name] = {**schema, "description": comment} if comment else schema
        schema = {"type": "object", "properties": properties}
        return {
            "required": True,
            "description": message.field_comments.get(body, ""),
            "content": {"application/x-www-form-urlencoded": {"schema": schema},
                        "application/json": {"schema": dict(schema)}},
        }

    def _has_required(self, message_name: str, excluded: set[tuple[str, ...]]) -> bool:
        message = self.index.message(message_name)
        return any(_is_required(f) and (f.name,) not in excluded for f in message.proto.field)

    def _field_body(
        self,
        input_name: str,
        body: str,
        excluded: set[tuple[str, ...]],
        method: str,
        path: str,
    ) -> Schema:
        message, f, field_path = self._resolve(input_name, body)
        type_name = _type_name(f)
        if f.type == _FDP.TYPE_MESSAGE and type_name == _HTTP_BODY:
            return {"required": True, "content": _binary_request_content(method, path)}
        nested = {p[len(field_path) :] for p in excluded if p[: len(field_path)] == field_path}
        required = _is_required(f)
        if f.type == _FDP.TYPE_MESSAGE and f.label != _FDP.LABEL_REPEATED and type_name not in _WKT:
            schema = self.schemas.without(type_name, nested)
            required = required or self._has_required(type_name, nested)
        else:
            schema = self.schemas.field_schema(message, f, annotate=False)
        comment = message.field_comments.get(f.name, "")
        request_body: Schema = {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
        if comment:
            request_body["description"] = comment
        return request_body

    def _success(
        self,
        proto: descriptor_pb2.MethodDescriptorProto,
        status: int,
        binding: _Binding,
        templates: list[str],
    ) -> Schema:
        """The success answer: the envelope around the response (or its `response_body` field),
        or the raw document of a `google.api.HttpBody` response."""
        output_name = proto.output_type.lstrip(".")
        description = _status_phrase(status)
        if output_name == _HTTP_BODY:
            return {
                "description": f"{description}: the document itself, not enveloped.",
                "content": _binary_response_content(proto.name, templates),
            }
        if proto.server_streaming:
            items = self.schemas.message_ref(output_name)
            return {
                "description": f"{description}: a JSON array of messages streamed as they come.",
                "content": {"application/json": {"schema": {"type": "array", "items": items}}},
            }
        paginated = False
        if binding.response_body:
            message, f, _ = self._resolve(output_name, binding.response_body)
            data = self.schemas.field_schema(message, f, annotate=False)
            paginated = any(
                f.type == _FDP.TYPE_MESSAGE
                and (f.name == "pagination" or _type_name(f).endswith(".PageInfo"))
                for f in message.proto.field
            )
        else:
            data = self.schemas.message_ref(output_name)
        envelope: Schema = {
            "type": "object",
            "required": ["success", "data", "meta", "errors"],
            "properties": {
                "success": {"type": "boolean", "const": True},
                "data": data,
                "meta": _ref("PaginatedMeta" if paginated else "Meta"),
                "errors": {"type": "array", "items": _ref("ErrorDetail")},
            },
        }
        answer: Schema = {"description": description, "content": {"application/json": {"schema": envelope}}}
        if output_name in self.versioned and not binding.response_body:
            answer["headers"] = {"ETag": _ETAG_HEADER}
        return answer

    # -- document ------------------------------------------------------------------------------

    def document(self) -> Schema:
        schemas = self.schemas.components
        schemas.update(self._envelope_schemas())
        responses: Schema = {}
        responses["PreconditionFailed"] = {
            "description": _status_phrase(_PRECONDITION_FAILED)
            + ": `If-Match` names a version that is no longer current; nothing was changed.",
            "content": {"application/json": {"schema": _ref("ErrorEnvelope")}},
            "headers": {"ETag": _ETAG_HEADER},
        }
        for status, name in _ERRORS:
            response: Schema = {
                "description": _status_phrase(status),
                "content": {"application/json": {"schema": _ref("ErrorEnvelope")}},
            }
            if status == _TOO_MANY_REQUESTS:
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    # Also on every other answer of a rate-limited call (draft-polli-ratelimit-headers-03).
                    "X-RateLimit-Limit": {
                        "description": 'Size of the budget, then its policy, e.g. `1000, 1000;w=3600;name="standard"`.',
                        "schema": {"type": "string"},
                    },
                    "X-RateLimit-Remaining": {
                        "description": "Calls left in the current window.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    "X-RateLimit-Reset": {
                        "description": "Seconds until the current window closes.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                }
            if status == _SERVICE_UNAVAILABLE:
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                }
            responses[name] = response
        return {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": TITLE,
                "version": VERSION,
                "description": (
                    "REST/JSON surface of the CRM platform, transcoded by Envoy from the gRPC "
                    "services. Generated from the protobuf contracts; do not edit by hand. Every "
                    "JSON answer is wrapped in the envelope `{success, data, meta, errors}`."
                ),
            },
            "servers": [{"url": SERVER_URL}],
            "security": [{"bearerAuth": []}],
            "tags": [
                {"name": name, "description": self.tags[name]}
                if self.tags[name]
                else {"name": name}
                for name in sorted(self.tags)
            ],
            "paths": self.paths,
            "components": {
                "schemas": schemas,
                "responses": responses,
                "parameters": {
                    _TENANT_HEADER: {
                        "name": _TENANT_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "Tenant of the request; must match the token's tenant.",
                        "schema": {"type": "string", "format": "uuid"},
                    },
                    _IDEMPOTENCY_HEADER: {
                        "name": _IDEMPOTENCY_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "Makes a retry safe: the first answer for this key is kept 24 hours and "
                        "replayed for a retry with the same body; the same key with another body is refused "
                        "(422 `IDEMPOTENCY_KEY_REUSED`).",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    },
                    _IF_MATCH_HEADER: {
                        "name": _IF_MATCH_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "Change the record only if its current `ETag` is one of these "
                        "(or `*`); otherwise 412 and nothing changes.",
                        "schema": {"type": "string"},
                    },
                    _REQUEST_ID_HEADER: {
                        "name": _REQUEST_ID_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "Caller's request id, echoed as `meta.requestId`.",
                        "schema": {"type": "string"},
                    },
                },
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
            },
        }

    def _envelope_schemas(self) -> dict[str, Schema]:
        if "crm.common.v1.PageInfo" in self.index.messages:
            page_info = self.schemas.message_ref("crm.common.v1.PageInfo")
        else:
            page_info = {
                "type": "object",
                "properties": {
                    "page": dict(_INT32),
                    "limit": dict(_INT32),
                    "total": dict(_INT32),
                    "hasNext": dict(_BOOL),
                    "hasPrev": dict(_BOOL),
                },
            }
        meta_properties: Schema = {
            "timestamp": {"type": "string", "format": "date-time"},
            "version": {"type": "string"},
            "requestId": {"type": "string"},
            "pagination": _ref("PageInfo"),
        }
        meta_required = ["timestamp", "version", "requestId"]
        return {
            "PageInfo": page_info,
            "Meta": {
                "type": "object",
                "description": "Facts about the answer; `pagination` on list answers.",
                "properties": meta_properties,
                "required": meta_required,
            },
            "PaginatedMeta": {
                "type": "object",
                "description": "Meta of a list answer: `pagination` is always there.",
                "properties": copy.deepcopy(meta_properties),
                "required": [*meta_required, "pagination"],
            },
            "ErrorDetail": {
                "type": "object",
                "description": "One problem with the request.",
                "properties": {
                    "code": {"type": "string", "description": "Machine-readable, UPPER_SNAKE."},
                    "message": {"type": "string", "description": "Human-readable explanation."},
                    "field": {
                        "type": "string",
                        "description": "The offending field in lowerCamelCase, if any.",
                    },
                },
                "required": ["code", "message"],
            },
            "Envelope": {
                "type": "object",
                "description": "Every JSON answer of the REST edge, success or error.",
                "properties": {
                    "success": {"type": "boolean"},
                    "data": {},
                    "meta": _ref("Meta"),
                    "errors": {"type": "array", "items": _ref("ErrorDetail")},
                },
                "required": ["success", "data", "meta", "errors"],
            },
            "ErrorEnvelope": {
                "description": "An error answer: no data, at least one error.",
                "allOf": [_ref("Envelope")],
                "properties": {
                    "success": {"const": False},
                    "data": {"type": "null"},
                    "errors": {"minItems": 1},
                },
            },
        }


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def build(descriptor_path: str) -> dict[str, Any]:
    """The OpenAPI document of every `google.api.http` route of the `crm.*` packages in the
    descriptor set (built with `--include_imports --include_source_info`)."""
    policy = _policy_extension()  # registered before parsing, so the options carry it
    fds = descriptor_pb2.FileDescriptorSet.FromString(Path(descriptor_path).read_bytes())
    index = _Index(fds)
    builder = _Builder(index, policy)
    for service in index.services:
        for method in service.methods:
            if _extension(method.proto.options, policy).conditional:
                builder.versioned.add(method.proto.output_type.lstrip("."))
    builder.versioned.discard("google.protobuf.Empty")
    for service in sorted(index.services, key=lambda s: (s.package, s.name)):
        if service.package.startswith(PACKAGE_PREFIX):
            builder.add_service(service)
    return builder.document()


def render(document: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.openapi", description=__doc__)
    parser.add_argument("--descriptor", default="gen/descriptor.binpb", help="descriptor set")
    parser.add_argument(
        "--out", default="gen/openapi/crm.openapi.json", help="output file, or - for stdout"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when --out differs from what would be written",
    )
    args = parser.parse_args(argv)
    text = render(build(args.descriptor))
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is stale; run python -m edge.openapi", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
