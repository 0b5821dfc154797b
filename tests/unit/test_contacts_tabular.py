"""Contact import parsing and export writing (services.contacts.tabular)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Mapping, Sequence

import openpyxl
import pytest

from services.contacts import tabular
from services.contacts.tabular import (
    EXPORT_COLUMNS,
    MAX_IMPORT_ROWS,
    TabularError,
    read_upload,
)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def rows_of(body: bytes, content_type: str = "text/csv", hint: str = "") -> tuple[str, list[dict[str, object]]]:
    fmt, rows = read_upload(body, content_type, hint)
    return fmt, [dict(r) for r in rows]


def xlsx_file(*rows: Sequence[object], title: str = "Sheet") -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def multipart(boundary: str, parts: list[tuple[str, str | None, str | None, bytes]], newline: bytes = b"\r\n") -> bytes:
    """parts: (name, filename, content type, content)."""
    out = b"preamble to ignore" + newline
    for name, filename, ctype, content in parts:
        out += b"--" + boundary.encode() + newline
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += disposition.encode() + newline
        if ctype is not None:
            out += f"Content-Type: {ctype}".encode() + newline
        out += newline + content + newline
    return out + b"--" + boundary.encode() + b"--" + newline


def error_code(body: bytes, content_type: str = "text/csv", hint: str = "", *, consume: bool = False) -> str:
    with pytest.raises(TabularError) as info:
        upload = read_upload(body, content_type, hint)
        if consume:
            list(upload.rows)
    assert info.value.message
    return info.value.code


# --- header aliases -------------------------------------------------------------------------

ALIASES = [
    ("First Name", "first_name"), ("first_name", "first_name"), ("firstname", "first_name"),
    ("given name", "first_name"), ("FIRST-NAME", "first_name"), ("Forename", "first_name"),
    ("Last Name", "last_name"), ("last_name", "last_name"), ("Surname", "last_name"), ("Family Name", "last_name"),
    ("Email", "email"), ("E-mail", "email"), ("Email Address", "email"), ("e_mail", "email"),
    ("Phone", "phone"), ("Phone Number", "phone"), ("Mobile", "phone"), ("Tel", "phone"), ("Telephone", "phone"),
    ("Title", "title"), ("Job Title", "title"),
    ("Company", "company"), ("Organization", "company"), ("Organisation", "company"), ("Company Name", "company"),
    ("Account Id", "account_id"), ("account_id", "account_id"),
    ("Owner Id", "owner_id"), ("OwnerID", "owner_id"),
    ("Stage", "lifecycle_stage"), ("Lifecycle Stage", "lifecycle_stage"),
    ("Lead Source", "source"), ("Source", "source"),
    ("Tags", "tags"), ("tag", "tags"),
    ("Street", "address_street"), ("Address", "address_street"), ("Street Address", "address_street"),
    ("City", "address_city"),
    ("State", "address_region"), ("Region", "address_region"), ("Province", "address_region"),
    ("Zip", "address_postal_code"), ("Postal Code", "address_postal_code"), ("ZIP code", "address_postal_code"),
    ("address_postal_code", "address_postal_code"),
    ("Country", "address_country"),
]


@pytest.mark.parametrize(("header", "key"), ALIASES)
def test_each_alias_maps_to_its_field(header: str, key: str) -> None:
    assert tabular.map_header(header) == key
    assert tabular.map_header(f"  {header.upper()} ") == key
    other = "Email" if key != "email" else "City"
    body = f"{header},{other}\r\nvalue,x\r\n".encode()
    _, rows = rows_of(body)
    if key == "tags":
        assert rows[0]["tags"] == ["value"]
    else:
        assert rows[0][key] == "value"


def test_unknown_headers_become_custom_fields_and_output_only_columns_are_dropped() -> None:
    assert tabular.map_header("Favourite Colour") == "custom:Favourite Colour"
    assert tabular.map_header("custom:Email") == "custom:Email"
    assert tabular.map_header("Id") is None
    assert tabular.map_header("Created At") is None
    assert tabular.map_header("   ") is None
    _, rows = rows_of(b"Email,Favourite Colour,Id,,Updated At\r\na@x.io,blue,123,zzz,2024\r\n")
    assert rows == [{"email": "a@x.io", "custom:Favourite Colour": "blue"}]


# --- CSV ----------------------------------------------------------------------------------


def test_utf8_bom_is_ignored_and_text_decoded() -> None:
    body = "\ufeffFirst Name,Last Name,Email\r\nJürgen,Müller,j@x.de\r\n".encode()
    fmt, rows = rows_of(body)
    assert fmt == "csv"
    assert rows == [{"first_name": "Jürgen", "last_name": "Müller", "email": "j@x.de"}]


def test_cp1252_file_is_decoded() -> None:
    body = "Last Name;Email\r\nMüller – Lüdenscheid;m@x.de\r\n".encode("cp1252")
    _, rows = rows_of(body)
    assert rows[0]["last_name"] == "Müller – Lüdenscheid"


def test_utf16_file_from_excel_unicode_text() -> None:
    body = "First Name\tEmail\r\nZoë\tz@x.io\r\n".encode("utf-16")
    _, rows = rows_of(body)
    assert rows == [{"first_name": "Zoë", "email": "z@x.io"}]


def test_semicolon_csv_as_written_by_european_excel() -> None:
    body = b"Vorname;Last Name;E-Mail;Street\r\nMax;Mustermann;max@x.de;Hauptstr. 1, Hinterhaus\r\n"
    _, rows = rows_of(body)
    assert rows[0]["last_name"] == "Mustermann"
    assert rows[0]["address_street"] == "Hauptstr. 1, Hinterhaus"
    assert rows[0]["custom:Vorname"] == "Max"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(delimiter: str) -> None:
    lines = [["First Name", "Email", "Tags"], ["Ann", "a@x.io", "vip"], ["Bo", "b@x.io", ""]]
    body = "\r\n".join(delimiter.join(line) for line in lines).encode()
    _, rows = rows_of(body)
    assert [r["email"] for r in rows] == ["a@x.io", "b@x.io"]


def test_comma_csv_with_semicolons_inside_values_stays_comma() -> None:
    body = b'Email,Tags,City\r\na@x.io,"a;b;c",Berlin\r\nb@x.io,x;y,Paris\r\n'
    _, rows = rows_of(body)
    assert rows[0]["tags"] == ["a", "b", "c"]
    assert rows[1]["address_city"] == "Paris"


def test_whitespace_stripped_blank_rows_skipped_line_numbers_kept() -> None:
    body = b"\r\n  Email , First Name \r\n a@x.io ,  Ann \r\n , \r\n\r\nb@x.io,Bo\r\n"
    _, rows = read_upload(body, "text/csv")
    got = [(r.line, dict(r)) for r in rows]
    assert got == [
        (3, {"email": "a@x.io", "first_name": "Ann"}),
        (6, {"email": "b@x.io", "first_name": "Bo"}),
    ]


def test_line_numbers_follow_multiline_cells() -> None:
    body = b'Email,Street\r\na@x.io,"Line 1\r\nLine 2"\r\nb@x.io,Main St\r\n'
    rows = list(read_upload(body, "text/csv").rows)
    assert [r.line for r in rows] == [2, 4]
    assert rows[0]["address_street"] == "Line 1\r\nLine 2"


def test_tags_split_on_comma_and_semicolon_and_unioned_across_columns() -> None:
    body = b'Email,Tags,Labels\r\na@x.io,"VIP, partner; vip",Partner;new\r\nb@x.io,,\r\n'
    rows = list(read_upload(body, "text/csv").rows)
    assert rows[0]["tags"] == ["VIP", "partner", "new"]
    assert rows[0].tags == ["VIP", "partner", "new"]
    assert rows[1]["tags"] == []
    assert tabular.split_tags(" a ;b,, A ") == ["a", "b"]


def test_duplicate_columns_first_non_empty_wins() -> None:
    body = b"Email,Phone,Mobile\r\na@x.io,,+49 151 1\r\nb@x.io,030 1,0151 2\r\n"
    rows = list(read_upload(body, "text/csv").rows)
    assert [r["phone"] for r in rows] == ["+49 151 1", "030 1"]


def test_every_row_has_the_same_keys_and_helpers_read_them() -> None:
    body = b"Email,First Name,Shoe Size,Tags\r\na@x.io,,42,x;y\r\nb@x.io,Bo,,\r\n"
    upload = read_upload(body, "text/csv")
    assert upload.rows.fields == ["email", "first_name", "custom:Shoe Size", "tags"]
    assert upload.rows.headers == ["Email", "First Name", "Shoe Size", "Tags"]
    first, second = list(upload.rows)
    assert first == {"email": "a@x.io", "first_name": "", "custom:Shoe Size": "42", "tags": ["x", "y"]}
    assert first.custom_fields() == {"Shoe Size": "42"}
    assert second.custom_fields() == {}
    assert first.text("tags") == "x; y"
    assert first.text("missing") == ""
    assert upload.rows.count == 2


def test_export_escaping_is_undone_on_import() -> None:
    body = b"Email,Phone,Job Title\r\na@x.io,'+4915112345,'=boss\r\nb@x.io,'not escaped,\r\n"
    rows = list(read_upload(body, "text/csv").rows)
    assert rows[0]["phone"] == "+4915112345"
    assert rows[0]["title"] == "=boss"
    assert rows[1]["phone"] == "'not escaped"


# --- XLSX ---------------------------------------------------------------------------------


def test_xlsx_round_trip_converts_cell_values_to_text() -> None:
    body = xlsx_file(
        [None],
        ["First Name", "Phone Number", "Created", "Met", "Score", "Big", "Active", "Zip", "Notes"],
        ["Ann", 4915112345678.0, dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 1, 14, 30), 0.1, 1e20, True, 1234, None],
        [None, None, None],
        ["Bo", "+49 151 1", dt.date(2023, 1, 2), None, 2.5e-7, -3, False, "01234", "  x  "],
    )
    fmt, rows = rows_of(body, XLSX_TYPE)
    assert fmt == "xlsx"
    assert rows == [
        {
            "first_name": "Ann", "phone": "4915112345678", "custom:Created": "2024-03-01",
            "custom:Met": "2024-03-01T14:30:00", "custom:Score": "0.1", "custom:Big": "100000000000000000000",
            "custom:Active": "true", "address_postal_code": "1234", "custom:Notes": "",
        },
        {
            "first_name": "Bo", "phone": "+49 151 1", "custom:Created": "2023-01-02", "custom:Met": "",
            "custom:Score": "0.00000025", "custom:Big": "-3", "custom:Active": "false",
            "address_postal_code": "01234", "custom:Notes": "x",
        },
    ]
    assert [r.line for r in read_upload(body, XLSX_TYPE).rows] == [3, 5]


def test_xlsx_reads_the_first_sheet_only() -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["Email"])
    wb.active.append(["first@x.io"])
    other = wb.create_sheet("Other")
    other.append(["Email"])
    other.append(["second@x.io"])
    out = io.BytesIO()
    wb.save(out)
    _, rows = rows_of(out.getvalue(), XLSX_TYPE)
    assert rows == [{"email": "first@x.io"}]


@pytest.mark.parametrize(
    ("content_type", "hint"),
    [(XLSX_TYPE, ""), ("application/octet-stream", ""), ("", ""), ("text/csv", ""), ("", "xlsx"), ("", "XLSX")],
)
def test_xlsx_detected_by_type_hint_or_magic_bytes(content_type: str, hint: str) -> None:
    fmt, rows = rows_of(xlsx_file(["Email"], ["a@x.io"]), content_type, hint)
    assert (fmt, rows) == ("xlsx", [{"email": "a@x.io"}])


def test_xlsx_reader_can_be_closed_early() -> None:
    body = xlsx_file(["Email"], *[[f"u{i}@x.io"] for i in range(50)])
    upload = read_upload(body, XLSX_TYPE)
    assert next(upload.rows)["email"] == "u0@x.io"
    upload.rows.close()
    assert list(upload.rows) == []


# --- multipart ----------------------------------------------------------------------------


def test_multipart_with_crlf_boundaries() -> None:
    csv_body = b"First Name,Email\r\nAnn,a@x.io\r\nBo,b@x.io\r\n"
    body = multipart("----WebKitFormBoundary7MA4YWxkTrZu0gW", [
        ("note", None, None, b"ignored"),
        ("file", "contacts.csv", "text/csv", csv_body),
    ])
    ctype = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"
    fmt, rows = rows_of(body, ctype)
    assert fmt == "csv"
    assert rows == [{"first_name": "Ann", "email": "a@x.io"}, {"first_name": "Bo", "email": "b@x.io"}]


def test_multipart_xlsx_is_byte_exact_and_found_by_filename() -> None:
    xlsx = xlsx_file(["Email", "Phone"], ["a@x.io", "+1 415 555 2671"])
    body = multipart("XyZ", [("file", "export.xlsx", "application/octet-stream", xlsx)])
    fmt, rows = rows_of(body, 'multipart/form-data; boundary="XyZ"')
    assert (fmt, rows) == ("xlsx", [{"email": "a@x.io", "phone": "+1 415 555 2671"}])


def test_multipart_format_field_and_bare_lf_line_breaks() -> None:
    tsv = b"Email\tCity\na@x.io\tRome\n"
    body = multipart("b0undary", [("format", None, None, b"csv"), ("file", "upload", None, tsv)], newline=b"\n")
    fmt, rows = rows_of(body, "multipart/form-data; boundary=b0undary")
    assert (fmt, rows) == ("csv", [{"email": "a@x.io", "address_city": "Rome"}])


def test_multipart_without_part_headers_end_is_rejected() -> None:
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n"
    assert error_code(body, "multipart/form-data; boundary=b") == "BAD_MULTIPART"


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"   \r\n\r\n", b"\xef\xbb\xbf", b",,,\r\n , ,\r\n"])
def test_empty_file(body: bytes) -> None:
    assert error_code(body) == "EMPTY_FILE"


def test_empty_xlsx_sheet() -> None:
    assert error_code(xlsx_file(), XLSX_TYPE) == "EMPTY_FILE"


def test_no_header_row() -> None:
    assert error_code(b"ann@x.io,Ann,Smith\r\nbo@x.io,Bo,Jones\r\n") == "NO_HEADER"
    assert error_code(xlsx_file(["+49 151 12345678", "Ann"]), XLSX_TYPE) == "NO_HEADER"


def test_no_known_columns() -> None:
    assert error_code(b"Foo,Bar\r\n1,2\r\n") == "NO_KNOWN_COLUMNS"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"Email\r\na@x.io\r\n", "multipart/form-data"),
        (b"Email\r\na@x.io\r\n", "multipart/form-data; boundary=abc"),
        (b"--abc\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nEmail\r\na@x.io\r\n", "multipart/form-data; boundary=abc"),
        (b"--abc", "multipart/form-data; boundary=abc"),
    ],
)
def test_malformed_multipart(body: bytes, content_type: str) -> None:
    assert error_code(body, content_type) == "BAD_MULTIPART"


def test_multipart_without_file_part() -> None:
    body = multipart("abc", [("upload", "c.csv", "text/csv", b"Email\r\na@x.io\r\n")])
    assert error_code(body, "multipart/form-data; boundary=abc") == "MISSING_FILE_PART"


@pytest.mark.parametrize(
    ("body", "content_type", "hint"),
    [
        (b"Email\r\na@x.io\r\n", "text/csv", "pdf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "application/vnd.ms-excel", ""),
        (b"%PDF-1.7\x00\x00\x01binary", "application/octet-stream", ""),
    ],
)
def test_unsupported_format(body: bytes, content_type: str, hint: str) -> None:
    assert error_code(body, content_type, hint) == "UNSUPPORTED_FORMAT"


def test_unsupported_extension_in_multipart() -> None:
    body = multipart("abc", [("file", "old.xls", "application/vnd.ms-excel", b"Email\r\na@x.io\r\n")])
    assert error_code(body, "multipart/form-data; boundary=abc") == "UNSUPPORTED_FORMAT"


def test_format_hint_contradicting_the_content() -> None:
    assert error_code(xlsx_file(["Email"]), XLSX_TYPE, "csv") == "FORMAT_MISMATCH"
    assert error_code(b"Email\r\na@x.io\r\n", "text/csv", "xlsx") == "BAD_XLSX"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"PK\x03\x04 this is not really a zip archive", XLSX_TYPE),
        (b"Email\r\na@x.io\r\n", XLSX_TYPE),
    ],
)
def test_bad_xlsx(body: bytes, content_type: str) -> None:
    assert error_code(body, content_type) == "BAD_XLSX"


def test_zip_that_is_not_a_workbook() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert error_code(out.getvalue(), "application/octet-stream") == "BAD_XLSX"


def test_xlsx_that_inflates_too_much(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "MAX_XLSX_UNCOMPRESSED_BYTES", 1000)
    assert error_code(xlsx_file(["Email"], ["a@x.io"]), XLSX_TYPE) == "TOO_LARGE"


def test_bad_csv_surfaces_while_reading() -> None:
    body = b'Email,Notes\r\na@x.io,"' + b"x" * 200_000 + b'"\r\n'
    assert error_code(body, consume=True) == "BAD_CSV"


def test_too_many_rows_with_a_small_limit() -> None:
    body = b"Email\r\n" + b"".join(f"u{i}@x.io\r\n".encode() for i in range(5)) + b"\r\n\r\n"
    upload = read_upload(body, "text/csv", max_rows=5)
    assert len(list(upload.rows)) == 5
    upload = read_upload(body + b"late@x.io\r\n", "text/csv", max_rows=5)
    got: list[tabular.ImportRow] = []
    with pytest.raises(TabularError) as info:
        got.extend(upload.rows)
    assert info.value.code == "TOO_MANY_ROWS"
    assert len(got) == 5


def test_too_many_rows_at_the_module_limit() -> None:
    assert MAX_IMPORT_ROWS == 100_000
    body = b"Email\n" + b"a@x.io\n" * MAX_IMPORT_ROWS
    assert sum(1 for _ in read_upload(body, "text/csv").rows) == MAX_IMPORT_ROWS
    assert error_code(body + b"a@x.io\n", consume=True) == "TOO_MANY_ROWS"


def test_xlsx_row_limit() -> None:
    body = xlsx_file(["Email"], *[[f"u{i}@x.io"] for i in range(4)])
    with pytest.raises(TabularError) as info:
        list(read_upload(body, XLSX_TYPE, max_rows=3).rows)
    assert info.value.code == "TOO_MANY_ROWS"


def test_error_carries_code_and_message() -> None:
    err = TabularError("EMPTY_FILE", "the file is empty")
    assert (err.code, err.message, str(err)) == ("EMPTY_FILE", "the file is empty", "EMPTY_FILE: the file is empty")
    assert isinstance(err, ValueError)


# --- exports ------------------------------------------------------------------------------

CONTACT: dict[str, object] = {
    "id": "7f1c", "first_name": "Ann", "last_name": "Lee", "email": "ann@x.io", "phone": "+4915112345",
    "title": "=HYPERLINK(\"http://evil\")", "company": "@SUM(1+1)", "account_id": None, "owner_id": "u1",
    "lifecycle_stage": "lead", "source": "-2+3", "tags": ["vip", "=x", "b2b"], "address_street": "\tMain 1",
    "address_city": "\rRome", "address_region": "\nLazio", "address_postal_code": "00100", "address_country": "IT",
    "created_at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "updated_at": "2024-01-03T00:00:00Z",
    "custom_fields": {"Score": -3, "Notes": "+1 call back", "Email": "other@x.io"},
}


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_export_columns_reimport_to_the_same_keys() -> None:
    for key, label in EXPORT_COLUMNS:
        mapped = tabular.map_header(label)
        assert mapped == (None if key in ("id", "created_at", "updated_at") else key), label


def test_csv_export_header_values_and_escaping() -> None:
    data = b"".join(tabular.csv_chunks([CONTACT, {"email": "b@x.io"}], custom_fields=["Score", "Notes", "Email"]))
    assert data.startswith(b"\xef\xbb\xbfId,First Name")
    header, first, second = parse_csv(data)
    assert header == [label for _, label in EXPORT_COLUMNS] + ["Score", "Notes", "custom:Email"]
    got = dict(zip(header, first, strict=True))
    assert got["Phone"] == "'+4915112345"
    assert got["Job Title"] == "'=HYPERLINK(\"http://evil\")"
    assert got["Company"] == "'@SUM(1+1)"
    assert got["Source"] == "'-2+3"
    assert got["Street"] == "'\tMain 1"
    assert got["City"] == "'\rRome"
    assert got["Region"] == "'\nLazio"
    assert got["Tags"] == "vip; =x; b2b"
    assert got["Account Id"] == ""
    assert got["Postal Code"] == "00100"
    assert got["Created At"] == "2024-01-02T03:04:05+00:00"
    assert got["Score"] == "-3"
    assert got["Notes"] == "'+1 call back"
    assert got["custom:Email"] == "other@x.io"
    assert second[3] == "b@x.io"
    assert set(second) - {"", "b@x.io"} == set()


def test_csv_export_formula_prefixes_and_safe_values() -> None:
    for text in ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "\nx", "\uff1dx"]:
        assert tabular.escape_formula(text) == "'" + text
    for text in ["", "a=b", " =x", "'=x", "1-2"]:
        assert tabular.escape_formula(text) == text


def test_csv_export_custom_fields_from_flat_keys_and_without_bom() -> None:
    rows: list[dict[str, object]] = [
        {"email": "a@x.io", "custom:Size": 42.0, "tags": ("a",)},
        {"email": "b@x.io", "custom_fields": {"Size": 0.5}},
    ]
    data = b"".join(tabular.csv_chunks(rows, custom_fields=["Size"], bom=False))
    assert data.startswith(b"Id,")
    header, first, second = parse_csv(data)
    assert (first[-1], second[-1]) == ("42", "0.5")
    assert first[header.index("Tags")] == "a"


def test_csv_chunks_are_exact_sizes_and_reassemble() -> None:
    rows = [{"email": f"user{i}@example.com", "first_name": "Zoë", "tags": ["x"]} for i in range(3000)]
    chunks = list(tabular.csv_chunks(rows, chunk_size=4096))
    assert len(chunks) > 10
    assert all(len(c) == 4096 for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 4096
    parsed = parse_csv(b"".join(chunks))
    assert len(parsed) == 3001
    assert parsed[-1][3] == "user2999@example.com"
    assert parsed[-1][1] == "Zoë"


def test_csv_chunks_with_no_rows_is_just_the_header() -> None:
    chunks = list(tabular.csv_chunks([]))
    assert len(chunks) == 1
    assert parse_csv(chunks[0]) == [[label for _, label in EXPORT_COLUMNS]]
    with pytest.raises(ValueError, match="chunk_size"):
        list(tabular.csv_chunks([], chunk_size=0))


def test_csv_export_writer_for_async_sources() -> None:
    writer = tabular.CsvExportWriter(chunk_size=1024, bom=False)
    out = bytearray()
    for i in range(200):
        out += writer.write({"email": f"u{i}@x.io"})
    out += writer.finish()
    assert len(parse_csv(bytes(out))) == 201


def test_csv_export_reimports() -> None:
    data = b"".join(tabular.csv_chunks([CONTACT], custom_fields=["Notes", "Email"]))
    _, rows = rows_of(data)
    assert rows[0]["phone"] == "+4915112345"
    assert rows[0]["title"] == "=HYPERLINK(\"http://evil\")"
    assert rows[0]["tags"] == ["vip", "=x", "b2b"]
    assert rows[0]["custom:Notes"] == "+1 call back"
    assert rows[0]["custom:Email"] == "other@x.io"
    assert rows[0]["email"] == "ann@x.io"
    assert "id" not in rows[0]


def read_xlsx(data: bytes) -> list[tuple[object, ...]]:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Contacts"]
    return list(wb.active.iter_rows(values_only=True))


def test_xlsx_export_escapes_formulas_and_reads_back() -> None:
    row: Mapping[str, object] = {**CONTACT, "last_name": "Lee\x00\x07"}
    data = b"".join(tabular.xlsx_bytes([row], custom_fields=["Score", "Notes"]))
    assert data.startswith(b"PK\x03\x04")
    header, values = read_xlsx(data)
    assert list(header) == [label for _, label in EXPORT_COLUMNS] + ["Score", "Notes"]
    got = dict(zip(header, values, strict=True))
    assert got["Job Title"] == "'=HYPERLINK(\"http://evil\")"
    assert got["Company"] == "'@SUM(1+1)"
    assert got["Phone"] == "'+4915112345"
    assert got["Source"] == "'-2+3"
    assert got["Street"] == "'\tMain 1"
    assert got["Last Name"] == "Lee"
    assert got["Tags"] == "vip; =x; b2b"
    assert got["Score"] == -3
    assert got["Notes"] == "'+1 call back"
    assert got["Account Id"] in (None, "")
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.active.freeze_panes == "A2"
    assert all(cell.data_type != "f" for r in wb.active.iter_rows() for cell in r)


def test_xlsx_export_streams_in_chunks_and_reimports() -> None:
    rows = [{"email": f"user{i}@example.com", "phone": f"+49151{i:07d}", "tags": ["a", "b"]} for i in range(2000)]
    chunks = list(tabular.xlsx_bytes(rows, chunk_size=8192))
    assert len(chunks) > 1
    assert all(len(c) == 8192 for c in chunks[:-1])
    fmt, back = rows_of(b"".join(chunks), "application/octet-stream")
    assert fmt == "xlsx"
    assert len(back) == 2000
    assert back[7]["phone"] == "+491510000007"
    assert back[7]["tags"] == ["a", "b"]


def test_xlsx_export_of_no_rows() -> None:
    assert len(read_xlsx(b"".join(tabular.xlsx_bytes([])))) == 1
