"""Uploaded files as rpcs receive them: the raw body with its Content-Type, or the `file` part
of a multipart/form-data post (Envoy hands either to a `google.api.HttpBody` field as is).

One byte-exact RFC 7578 reader shared by every upload (contact imports, avatars, files), so a
form post is understood the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value


class MultipartError(ValueError):
    """A form post that cannot be read; `code` is an UPPER_SNAKE reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UploadedFile:
    data: bytes
    content_type: str  # lower-cased media type without parameters ("" when not given)
    filename: str = ""
    form: dict[str, str] = field(default_factory=dict)  # the other (text) fields of a form post


def parse_content_type(value: str) -> tuple[str, str]:
    """(lower-cased media type, boundary parameter or "")."""
    if not value.strip():
        return "", ""
    msg = Message()
    msg["Content-Type"] = value
    main = value.split(";", 1)[0].strip().lower()
    return main, header_param(msg, "boundary", "content-type")


def header_param(msg: Message, name: str, header: str) -> str:
    raw = msg.get_param(name, header=header)
    return "" if raw is None else collapse_rfc2231_value(raw)


def uploaded_file(body: bytes, content_type: str) -> UploadedFile:
    """The file of an upload: the body itself, or the `file` part of a form post."""
    main_type, boundary = parse_content_type(content_type)
    if main_type.startswith("multipart/"):
        return file_from_multipart(body, boundary)
    return UploadedFile(body, main_type)


def file_from_multipart(body: bytes, boundary: str) -> UploadedFile:
    """The `file` part of a form post, with its content type, filename and the text fields."""
    if not boundary:
        raise MultipartError("BAD_MULTIPART", "multipart body without a boundary parameter")
    file_part: tuple[Message, bytes] | None = None
    form: dict[str, str] = {}
    for headers, content in split_multipart(body, boundary.encode("latin-1")):
        name = header_param(headers, "name", "content-disposition")
        if name == "file" and file_part is None:
            file_part = (headers, content)
        elif name and name != "file" and len(content) <= 4096:
            form.setdefault(name, content.decode("utf-8", "replace").strip())
    if file_part is None:
        raise MultipartError("MISSING_FILE_PART", "the multipart body has no part named `file`")
    headers, content = file_part
    part_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return UploadedFile(content, part_type, headers.get_filename() or "", form)


def split_multipart(body: bytes, boundary: bytes) -> list[tuple[Message, bytes]]:
    """Byte-exact RFC 7578 splitting: CRLF line breaks (bare LF tolerated), preamble ignored."""
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        pos = 0
    else:
        found = body.find(b"\n" + delimiter)
        if found < 0:
            raise MultipartError("BAD_MULTIPART", "the multipart boundary does not occur in the body")
        pos = found + 1
    parts: list[tuple[Message, bytes]] = []
    while True:
        pos += len(delimiter)
        if body.startswith(b"--", pos):
            return parts
        eol = body.find(b"\n", pos)
        if eol < 0:
            raise MultipartError("BAD_MULTIPART", "the multipart body ends inside a part")
        start = eol + 1
        if body.startswith(b"\r\n", start) or body.startswith(b"\n", start):
            header_bytes, content_start = b"", body.index(b"\n", start) + 1
        else:
            ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := body.find(sep, start)) >= 0]
            if not ends:
                raise MultipartError("BAD_MULTIPART", "a multipart part has no end of headers")
            header_end, sep_len = min(ends)
            header_bytes, content_start = body[start:header_end], header_end + sep_len
        nxt = body.find(b"\n" + delimiter, content_start - 1)
        if nxt < 0:
            raise MultipartError("BAD_MULTIPART", "the multipart body has no closing boundary")
        content_end = nxt - 1 if nxt > 0 and body[nxt - 1 : nxt] == b"\r" else nxt
        headers = BytesHeaderParser().parsebytes(header_bytes + b"\r\n\r\n")
        parts.append((headers, body[content_start:max(content_end, content_start)]))
        pos = nxt + 1
