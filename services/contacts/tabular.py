"""Contact imports (CSV/XLSX, raw or multipart) and exports (CSV/XLSX), as plain data.

Kept free of gRPC and the database so the request handler (which checks an upload before
starting a job), the import job and the export stream all share one tested implementation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import IO, Final, NamedTuple

import openpyxl
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from services.kernel import uploads

__all__ = [
    "CONTACT_FIELDS",
    "CUSTOM_PREFIX",
    "EXPORT_COLUMNS",
    "IGNORED_HEADERS",
    "MAX_IMPORT_ROWS",
    "MAX_XLSX_UNCOMPRESSED_BYTES",
    "CsvExportWriter",
    "ImportRow",
    "RowReader",
    "TabularError",
    "Upload",
    "XlsxExportWriter",
    "csv_chunks",
    "escape_formula",
    "map_header",
    "read_upload",
    "split_tags",
    "xlsx_bytes",
]

MAX_IMPORT_ROWS: Final = 100_000
"""Most data rows one import may hold; bounds job time and memory."""

MAX_XLSX_UNCOMPRESSED_BYTES: Final = 512 * 1024 * 1024
"""Most bytes an XLSX may inflate to; a small zip must not expand into gigabytes (zip bomb)."""

CUSTOM_PREFIX: Final = "custom:"

CONTACT_FIELDS: Final[tuple[str, ...]] = (
    "first_name", "last_name", "email", "phone", "title", "company", "account_id", "owner_id",
    "lifecycle_stage", "source", "tags", "address_street", "address_city", "address_region",
    "address_postal_code", "address_country",
)

_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "first_name": ("firstname", "first", "givenname", "forename", "fname"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "email": ("email", "emailaddress", "emailaddr", "mail", "primaryemail", "workemail"),
    "phone": (
        "phone", "phonenumber", "phoneno", "mobile", "mobilephone", "mobilenumber", "cell",
        "cellphone", "tel", "telephone", "telephonenumber", "workphone", "primaryphone",
    ),
    "title": ("title", "jobtitle", "position"),
    "company": (
        "company", "companyname", "organization", "organisation", "organizationname",
        "organisationname", "org", "employer",
    ),
    "account_id": ("accountid",),
    "owner_id": ("ownerid",),
    "lifecycle_stage": ("stage", "lifecyclestage", "lifecycle"),
    "source": ("source", "leadsource", "contactsource"),
    "tags": ("tags", "tag", "labels"),
    "address_street": ("street", "address", "streetaddress", "address1", "addressline1", "addressstreet"),
    "address_city": ("city", "town", "addresscity"),
    "address_region": (
        "state", "region", "province", "stateprovince", "stateregion", "addressregion", "addressstate",
    ),
    "address_postal_code": (
        "zip", "zipcode", "postalcode", "postcode", "zippostalcode", "addresspostalcode", "addresszip",
    ),
    "address_country": ("country", "countrycode", "addresscountry"),
}

IGNORED_HEADERS: Final[frozenset[str]] = frozenset({"id", "contactid", "createdat", "updatedat", "createdby"})
"""Output-only columns of our own export: dropped on import so a re-imported export does not
turn them into custom fields (normalized header form)."""

_HEADER_MAP: Final[dict[str, str]] = {
    **{field.replace("_", ""): field for field in CONTACT_FIELDS},
    **{alias: key for key, aliases in _ALIASES.items() for alias in aliases},
}

_CSV_TYPES: Final = frozenset({
    "text/csv", "application/csv", "text/x-csv", "application/x-csv", "text/comma-separated-values",
    "text/tab-separated-values", "text/plain",
})
_XLSX_TYPES: Final = frozenset({
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel.sheet.macroenabled.12",
})
_CSV_EXTENSIONS: Final = frozenset({"csv", "tsv", "txt"})
_XLSX_EXTENSIONS: Final = frozenset({"xlsx", "xlsm"})
_UNSUPPORTED_EXTENSIONS: Final = frozenset({"xls", "ods", "numbers"})
_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc)
_DELIMITERS: Final = (",", ";", "\t", "|")
_TAG_SPLIT_RE: Final = re.compile(r"[;,]")
_NOT_ALNUM_RE: Final = re.compile(r"[^0-9a-z]+")
_LOOKS_LIKE_DATA_RE: Final = re.compile(r"@|\d{5,}")


class TabularError(ValueError):
    """An upload that cannot be read; `code` is stable for clients, `message` is for people.

    Codes: EMPTY_FILE, NO_HEADER, NO_KNOWN_COLUMNS, BAD_MULTIPART, MISSING_FILE_PART,
    UNSUPPORTED_FORMAT, FORMAT_MISMATCH, BAD_XLSX, BAD_CSV, TOO_LARGE, TOO_MANY_ROWS.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --- header mapping ----------------------------------------------------------------------


def _normalize_header(header: str) -> str:
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_ALNUM_RE.sub("", plain)


def map_header(header: str) -> str | None:
    """The row key for a column header: a contact field, `custom:<header>`, or None to drop it.

    Matching ignores case, accents, spaces, `_`, `-` and punctuation, so "E-mail", "Email Address"
    and "email_address" all land on `email`; a `custom:` prefix is kept so exports round-trip.
    """
    text = header.strip()
    if not text:
        return None
    if text.casefold().startswith(CUSTOM_PREFIX):
        name = text[len(CUSTOM_PREFIX):].strip()
        return CUSTOM_PREFIX + name if name else None
    key = _normalize_header(text)
    if key in IGNORED_HEADERS:
        return None
    return _HEADER_MAP.get(key, CUSTOM_PREFIX + text)


def split_tags(value: str) -> list[str]:
    """Tags typed in one cell, split on `,` or `;`, trimmed, de-duplicated ignoring case."""
    seen: set[str] = set()
    tags: list[str] = []
    for part in _TAG_SPLIT_RE.split(value):
        tag = part.strip()
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    return tags


# --- rows ----------------------------------------------------------------------------------


class ImportRow(dict[str, str | list[str]]):
    """One data row keyed by contact field; `tags` is a list, every other value a string.

    Every row of an upload has the same keys (one per recognized column, "" when the cell is
    blank). `line` is the row's number in the file (header = line 1), for per-row errors.
    """

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line

    def text(self, key: str) -> str:
        """The value as one string ("" when absent), so callers need no isinstance checks."""
        value = self.get(key, "")
        return value if isinstance(value, str) else "; ".join(value)

    @property
    def tags(self) -> list[str]:
        value = self.get("tags")
        return list(value) if isinstance(value, list) else []

    def custom_fields(self) -> dict[str, str]:
        """Non-empty custom columns, keyed by their header without the `custom:` prefix."""
        return {
            key[len(CUSTOM_PREFIX):]: value
            for key, value in self.items()
            if key.startswith(CUSTOM_PREFIX) and isinstance(value, str) and value
        }


_PhysicalRows = Generator[tuple[int, list[str]], None, None]


class RowReader(Iterator[ImportRow]):
    """Lazily turns the file's rows into ImportRows; raises TOO_MANY_ROWS past the limit."""

    def __init__(
        self, rows: _PhysicalRows, headers: list[str], columns: list[tuple[int, str]], max_rows: int
    ) -> None:
        self._rows = rows
        self._columns = columns
        self._max_rows = max_rows
        self.headers = headers
        self.fields: list[str] = list(dict.fromkeys(key for _, key in columns))
        self.count = 0

    def __iter__(self) -> RowReader:
        return self

    def __next__(self) -> ImportRow:
        for line, values in self._rows:
            row = self._build(line, values)
            if row is None:
                continue
            self.count += 1
            if self.count > self._max_rows:
                self.close()
                raise TabularError("TOO_MANY_ROWS", f"the file has more than {self._max_rows} rows")
            return row
        raise StopIteration

    def close(self) -> None:
        """Release the underlying file (an XLSX workbook) when not read to the end."""
        self._rows.close()

    def _build(self, line: int, values: list[str]) -> ImportRow | None:
        row = ImportRow(line)
        blank = True
        for key in self.fields:
            row[key] = [] if key == "tags" else ""
        for index, key in self._columns:
            value = values[index] if index < len(values) else ""
            if value.startswith("'") and value[1:].startswith(_FORMULA_PREFIXES):
                value = value[1:]  # undo our export's formula escaping, so exports re-import as they were
            if not value:
                continue
            blank = False
            current = row[key]
            if isinstance(current, list):
                seen = {t.casefold() for t in current}
                current.extend(t for t in split_tags(value) if t.casefold() not in seen)
            elif not current:
                row[key] = value
        return None if blank else row


class Upload(NamedTuple):
    """What read_upload found: "csv" or "xlsx", and the rows (unpacks like a 2-tuple)."""

    format: str
    rows: RowReader


# --- reading -------------------------------------------------------------------------------


def read_upload(
    body: bytes, content_type: str, format_hint: str = "", *, max_rows: int = MAX_IMPORT_ROWS
) -> Upload:
    """Open a CSV or XLSX upload (raw or the `file` part of multipart/form-data).

    The format, header and columns are checked now, so a bad file is refused before a job
    starts; data rows are read while iterating. Blank rows (nothing in any recognized column)
    are skipped.
    """
    main_type, boundary = _parse_content_type(content_type)
    filename = ""
    if main_type.startswith("multipart/"):
        body, main_type, filename, form_format = _file_from_multipart(body, boundary)
        format_hint = format_hint or form_format
    if not body.strip(b" \t\r\n\x00").removeprefix(b"\xef\xbb\xbf").strip():
        raise TabularError("EMPTY_FILE", "the file is empty")
    fmt = _detect_format(body, main_type, filename, format_hint)
    physical = _xlsx_rows(body) if fmt == "xlsx" else _csv_rows(_decode_text(body))
    first = next(((line, values) for line, values in physical if any(values)), None)
    if first is None:
        raise TabularError("EMPTY_FILE", "the file has no rows")
    header_line, headers = first
    columns = [(i, key) for i, h in enumerate(headers) if (key := map_header(h)) is not None]
    if not any(not key.startswith(CUSTOM_PREFIX) for _, key in columns):
        physical.close()
        if any(_LOOKS_LIKE_DATA_RE.search(h) for h in headers):
            raise TabularError(
                "NO_HEADER",
                f"line {header_line} looks like data; the first row must name the columns"
                " (e.g. First Name, Last Name, Email)",
            )
        raise TabularError(
            "NO_KNOWN_COLUMNS",
            "no column is a contact field; name columns e.g. First Name, Last Name, Email, Phone",
        )
    return Upload(fmt, RowReader(physical, headers, columns, max_rows))


def _parse_content_type(value: str) -> tuple[str, str]:
    """(lower-cased media type, boundary parameter or "")."""
    return uploads.parse_content_type(value)


def _file_from_multipart(body: bytes, boundary: str) -> tuple[bytes, str, str, str]:
    """(file bytes, its content type, its filename, the `format` form field) of a form post."""
    try:
        found = uploads.file_from_multipart(body, boundary)
    except uploads.MultipartError as exc:
        raise TabularError(exc.code, exc.message) from None
    return found.data, found.content_type, found.filename, found.form.get("format", "")


def _detect_format(data: bytes, content_type: str, filename: str, hint: str) -> str:
    """Explicit hint first; then the magic bytes (conclusive); then content type, extension."""
    is_zip = data.startswith(_ZIP_MAGIC)
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if data.startswith(_OLE2_MAGIC) or extension in _UNSUPPORTED_EXTENSIONS:
        raise TabularError(
            "UNSUPPORTED_FORMAT", "only CSV and XLSX files can be imported; save the sheet as .xlsx or .csv"
        )
    if hint.strip():
        declared = hint.strip().lower().lstrip(".")
        if declared not in ("csv", "xlsx"):
            raise TabularError("UNSUPPORTED_FORMAT", f"format {hint.strip()!r} is not csv or xlsx")
        if declared == "csv" and is_zip:
            raise TabularError("FORMAT_MISMATCH", "format csv was given but the file is an XLSX/zip file")
        if declared == "xlsx" and not is_zip:
            raise TabularError("BAD_XLSX", "format xlsx was given but the file is not an XLSX file")
        return declared
    if is_zip:
        # Browsers label files loosely (Windows sends CSV as application/vnd.ms-excel), so
        # the zip signature beats the declared type.
        return "xlsx"
    if content_type in _XLSX_TYPES or (content_type not in _CSV_TYPES and extension in _XLSX_EXTENSIONS):
        raise TabularError("BAD_XLSX", "the file is declared as XLSX but is not a valid XLSX file")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TabularError("UNSUPPORTED_FORMAT", "the file is neither CSV text nor XLSX")
    return "csv"


def _decode_text(data: bytes) -> str:
    """UTF-16 with BOM, UTF-8 (BOM optional), then cp1252, then latin-1 (which always works)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _sniff_delimiter(text: str) -> str:
    """The delimiter among , ; tab | that splits the header widest and the rows most evenly."""
    sample = text[:65536]
    best, best_score = ",", (False, -1, -1)
    for delimiter in _DELIMITERS:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        records: list[list[str]] = []
        try:
            for record in reader:
                if record:  # skip empty lines only: ",,," is a row, and evidence for ","
                    records.append(record)
                if len(records) >= 20:
                    break
        except csv.Error:
            continue
        if not records:
            continue
        width = len(records[0])
        score = (width > 1, sum(1 for r in records[1:] if len(r) == width), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(text: str) -> _PhysicalRows:
    text = text.removeprefix("\ufeff").removeprefix("\u00ef\u00bb\u00bf")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    line = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TabularError("BAD_CSV", f"CSV line {reader.line_num}: {exc}") from None
        yield line, [cell.strip() for cell in record]
        line = reader.line_num + 1


def _xlsx_rows(data: bytes) -> _PhysicalRows:
    """Opens the workbook now (errors surface at read_upload) and streams the first sheet."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise TabularError("BAD_XLSX", f"the XLSX file cannot be opened: {exc}") from None
    if inflated > MAX_XLSX_UNCOMPRESSED_BYTES:
        raise TabularError("TOO_LARGE", "the XLSX file expands to more than 512 MiB")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises KeyError, ValueError, XML errors ...
        raise TabularError("BAD_XLSX", f"the XLSX file cannot be opened: {exc}") from None
    return _sheet_rows(workbook)


def _sheet_rows(workbook: object) -> _PhysicalRows:
    try:
        sheets = getattr(workbook, "worksheets", [])
        if not sheets:
            return
        sheet = sheets[0]
        # A wrong <dimension> in the file would otherwise cut rows silently.
        sheet.reset_dimensions()
        try:
            for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield line, [_cell_text(v) for v in values]
        except Exception as exc:  # noqa: BLE001 - a corrupt sheet surfaces only while parsing
            raise TabularError("BAD_XLSX", f"the XLSX sheet cannot be read: {exc}") from None
    finally:
        close = getattr(workbook, "close", None)
        if close is not None:
            close()


def _cell_text(value: object) -> str:
    """A cell as typed text: 4915112345678.0 -> "4915112345678", dates -> ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        return ""
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


# --- exports -------------------------------------------------------------------------------

EXPORT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("id", "Id"),
    ("first_name", "First Name"),
    ("last_name", "Last Name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("title", "Job Title"),
    ("company", "Company"),
    ("account_id", "Account Id"),
    ("owner_id", "Owner Id"),
    ("lifecycle_stage", "Lifecycle Stage"),
    ("source", "Source"),
    ("tags", "Tags"),
    ("address_street", "Street"),
    ("address_city", "City"),
    ("address_region", "Region"),
    ("address_postal_code", "Postal Code"),
    ("address_country", "Country"),
    ("created_at", "Created At"),
    ("updated_at", "Updated At"),
)
"""(row key, header) in export order. Headers read back through map_header to the same keys
(Id/Created At/Updated At are dropped), so an export can be re-imported as it is."""

_FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_XML_ILLEGAL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XLSX_MAX_CELL: Final = 32_767


def escape_formula(text: str) -> str:
    """Prefix a `'` to text a spreadsheet would run as a formula (OWASP CSV injection).

    Applies to every text cell, phones too: "+4915112345" is exported as "'+4915112345".
    OWASP advises prefixing unconditionally, since "+1+cmd|..." is as dangerous as "=...".
    Full-width = + - @ are included because some spreadsheet apps normalize them.
    """
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _export_value(value: object) -> str | int | float:
    """Cell value: numbers stay numbers (they cannot carry a formula), text is escaped."""
    plain = _plain_value(value)
    return escape_formula(plain) if isinstance(plain, str) else plain


def _plain_value(value: object) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value if not isinstance(value, float) or math.isfinite(value) else ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return json.dumps(dict(value), ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, Iterable):
        return "; ".join(_item_text(item) for item in value)
    return str(value)


def _item_text(item: object) -> str:
    value = _plain_value(item)
    return value if isinstance(value, str) else _number_text(value)


def _number_text(value: float) -> str:
    return str(value) if isinstance(value, int) else _float_text(value)


def _export_columns(custom_fields: Sequence[str]) -> list[tuple[str, str]]:
    """Fixed columns plus one per custom field; a custom header that would read back as a
    standard field on import is written as `custom:<name>`."""
    columns = list(EXPORT_COLUMNS)
    for name in custom_fields:
        label = name if map_header(name) == CUSTOM_PREFIX + name.strip() else CUSTOM_PREFIX + name
        columns.append((CUSTOM_PREFIX + name, label))
    return columns


def _row_value(row: Mapping[str, object], key: str) -> object:
    if key in row or not key.startswith(CUSTOM_PREFIX):
        return row.get(key)
    custom = row.get("custom_fields")
    return custom.get(key[len(CUSTOM_PREFIX):]) if isinstance(custom, Mapping) else None


class CsvExportWriter:
    """Incremental CSV encoder, for sync or async row sources alike.

    `write(row)` returns the bytes ready so far in whole `chunk_size` pieces (often b"");
    `finish()` returns the rest. The header row is emitted with the first call.
    """

    def __init__(
        self, chunk_size: int = 64 * 1024, *, custom_fields: Sequence[str] = (), bom: bool = True
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._chunk_size = chunk_size
        self._columns = _export_columns(custom_fields)
        self._text = io.StringIO()
        self._writer = csv.writer(self._text)
        self._pending = bytearray(b"\xef\xbb\xbf" if bom else b"")
        self._writer.writerow([escape_formula(label) for _, label in self._columns])

    def write(self, row: Mapping[str, object]) -> bytes:
        cells = (_export_value(_row_value(row, key)) for key, _ in self._columns)
        self._writer.writerow([c if isinstance(c, str) else _number_text(c) for c in cells])
        return self._drain(final=False)

    def finish(self) -> bytes:
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> bytes:
        self._pending += self._text.getvalue().encode("utf-8")
        self._text.seek(0)
        self._text.truncate()
        size = len(self._pending) if final else len(self._pending) // self._chunk_size * self._chunk_size
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out

    def chunks(self, data: bytes) -> Iterator[bytes]:
        """Split a write()/finish() result into pieces of at most chunk_size bytes."""
        for start in range(0, len(data), self._chunk_size):
            yield data[start : start + self._chunk_size]


def csv_chunks(
    rows: Iterable[Mapping[str, object]],
    chunk_size: int = 64 * 1024,
    *,
    custom_fields: Sequence[str] = (),
    bom: bool = True,
) -> Iterator[bytes]:
    """Stream rows as UTF-8 CSV (header first, CRLF lines) in chunks of exactly `chunk_size`
    bytes, the last one shorter.

    Rows use the import keys (address flattened to address_*, tags a list); custom fields come
    from `custom:<name>` keys or a `custom_fields` mapping, for the names given in
    `custom_fields` (the header is written before any row is seen). `bom` (default on) makes
    Excel read the file as UTF-8; read_upload tolerates it.
    """
    writer = CsvExportWriter(chunk_size, custom_fields=custom_fields, bom=bom)
    for row in rows:
        yield from writer.chunks(writer.write(row))
    yield from writer.chunks(writer.finish())


class XlsxExportWriter:
    """Incremental XLSX builder: rows go to openpyxl's write-only sheet (spooled to disk by
    openpyxl), `finish()` saves the zip to a temporary file and streams it back in chunks."""

    def __init__(self, *, custom_fields: Sequence[str] = (), sheet_title: str = "Contacts") -> None:
        self._columns = _export_columns(custom_fields)
        self._workbook = openpyxl.Workbook(write_only=True)
        self._sheet = self._workbook.create_sheet(title=sheet_title)
        self._sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for _, label in self._columns:
            cell = WriteOnlyCell(self._sheet, value=_xlsx_text(escape_formula(label)))
            cell.font = bold
            header.append(cell)
        self._sheet.append(header)

    def write(self, row: Mapping[str, object]) -> None:
        values = (_export_value(_row_value(row, key)) for key, _ in self._columns)
        self._sheet.append([_xlsx_text(v) if isinstance(v, str) else v for v in values])

    def finish(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        with tempfile.TemporaryFile() as handle:
            self._workbook.save(handle)
            handle.seek(0)
            yield from _read_chunks(handle, chunk_size)


def _read_chunks(handle: IO[bytes], chunk_size: int) -> Iterator[bytes]:
    while chunk := handle.read(chunk_size):
        yield chunk


def _xlsx_text(text: str) -> str:
    """Drop characters XML cannot hold and cut at Excel's cell limit, which openpyxl would reject
    or Excel would "repair"."""
    return _XML_ILLEGAL_RE.sub("", text)[:_XLSX_MAX_CELL]


def xlsx_bytes(
    rows: Iterable[Mapping[str, object]],
    chunk_size: int = 64 * 1024,
    *,
    custom_fields: Sequence[str] = (),
) -> Iterator[bytes]:
    """Stream rows as an XLSX workbook (one "Contacts" sheet, bold frozen header).

    Same row keys and escaping as csv_chunks; numbers stay numeric cells, all else is text.
    A zip is only complete at its end, so the first chunk comes after the last row was read;
    memory stays bounded because openpyxl and this function spool to temporary files.
    """
    writer = XlsxExportWriter(custom_fields=custom_fields)
    for row in rows:
        writer.write(row)
    yield from writer.finish(chunk_size)
