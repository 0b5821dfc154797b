"""Requests the services cannot use are the caller's fault: a 400 naming the field, never a 500.

Two kinds reach a servicer through Envoy's transcoder. Bytes protobuf refuses: the transcoder
accepts some JSON it then encodes wrongly (an object where a map holds scalars, as in
`{"features": {"beta": {}}}`), and grpc would answer UNKNOWN for a request that fails to parse.
And text holding a NUL character, which parses but which PostgreSQL can neither store nor compare.
The interceptor parses with `tolerant()` and calls `check()` once the caller is authenticated.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from google.api import annotations_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from services.kernel.errors import FieldViolation, InvalidArgument

# JSON-shaped well-known types: their own fields are not part of the JSON path (`customFields.nick`).
_TRANSPARENT = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})


class Undecodable:
    """Stands for a request whose bytes did not parse; `field` is the JSON path of the field
    that broke, when it could be told."""

    __slots__ = ("field",)

    def __init__(self, field: str) -> None:
        self.field = field


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The handler's request deserializer, answering `Undecodable` instead of raising."""
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)  # a generated class's FromString
    parse = deserializer

    def tolerant_parse(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            if isinstance(message_class, type) and issubclass(message_class, Message):
                return Undecodable(_broken_field(message_class, data))
            return Undecodable("")

    return tolerant_parse


def check(request: object, method: str) -> None:
    """Refuse an undecodable request, or one with a NUL character in its text. Fields are named as
    a REST caller sees them: relative to the body when the rpc's body is one field (`contact`)."""
    if isinstance(request, Undecodable):
        field = _rest_path(request.field, method)
        violations = [FieldViolation(field, "has a value of the wrong type", "INVALID_TYPE")]
        raise InvalidArgument("the request could not be decoded: a value has the wrong type",
                              reason="MALFORMED_REQUEST", violations=violations if field else None)
    if isinstance(request, Message):
        found = nul_field(request)
        if found is not None:
            field = _rest_path(found, method)
            raise InvalidArgument(f"{field} contains a NUL character", reason="INVALID_CHARACTER", violations=[
                FieldViolation(field, "must not contain NUL characters", "INVALID_CHARACTER")])


@functools.cache
def _body_field(method: str) -> str:
    """JSON name of the request field the REST body binds (`body: "contact"`); "" for `*` or none."""
    try:
        rpc = descriptor_pool.Default().FindMethodByName(method.lstrip("/").replace("/", "."))
    except KeyError:
        return ""
    field = rpc.input_type.fields_by_name.get(rpc.GetOptions().Extensions[annotations_pb2.http].body)
    return field.json_name if field is not None else ""


def _rest_path(path: str, method: str) -> str:
    body = _body_field(method)
    if body and path.startswith(body + "."):
        return path[len(body) + 1:]
    return path


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and bool(fd.message_type.GetOptions().map_entry)


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def nul_field(message: Message, path: str = "") -> str | None:
    """JSON path of the first text (or map key) in the message holding a NUL character."""
    transparent = message.DESCRIPTOR.full_name in _TRANSPARENT
    for fd, value in message.ListFields():
        here = path if transparent else _join(path, fd.json_name)
        if fd.type == FieldDescriptor.TYPE_STRING:
            if fd.is_repeated:
                for i, text in enumerate(value):
                    if "\x00" in text:
                        return f"{here}[{i}]"
            elif "\x00" in value:
                return here
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_map(fd):
                for key, item in value.items():
                    if isinstance(key, str) and "\x00" in key:
                        return here
                    where = _join(here, str(key))
                    if isinstance(item, str) and "\x00" in item:
                        return where
                    if isinstance(item, Message) and (found := nul_field(item, where)):
                        return found
            elif fd.is_repeated:
                for i, item in enumerate(value):
                    if found := nul_field(item, f"{here}[{i}]"):
                        return found
            elif found := nul_field(value, here):
                return found
    return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def _broken_field(message_class: type[Message], data: bytes, path: str = "") -> str:
    """JSON path of the field whose bytes do not parse: each top-level field is parsed alone, and
    a singular or repeated message field is searched further."""
    descriptor = message_class.DESCRIPTOR
    seen: Counter[int] = Counter()
    pos = 0
    while pos < len(data):
        start = pos
        try:
            key, pos = _varint(data, pos)
        except ValueError:
            return path
        number, wire_type = key >> 3, key & 7
        fd = cast(FieldDescriptor | None, descriptor.fields_by_number.get(number))
        try:
            payload = pos
            if wire_type == 0:
                _, pos = _varint(data, pos)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 2:
                size, payload = _varint(data, pos)
                pos = payload + size
            elif wire_type == 5:
                pos += 4
            else:
                raise ValueError("unknown wire type")
            if pos > len(data):
                raise ValueError("cut short")
        except ValueError:  # this field's bytes end the message badly
            return _join(path, fd.json_name) if fd is not None else path
        index = seen[number]
        seen[number] += 1
        if fd is None:
            continue  # an unknown field is kept as is, it cannot be what broke
        try:
            message_class.FromString(data[start:pos])
        except DecodeError:
            here = _join(path, fd.json_name)
            nested = fd.message_type
            if wire_type == 2 and nested is not None and not _is_map(fd):
                if fd.is_repeated:
                    here = f"{here}[{index}]"
                inner = message_factory.GetMessageClass(cast(Descriptor, nested))
                return _broken_field(inner, data[payload:pos], here) or here
            return here
    return path
