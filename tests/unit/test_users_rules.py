"""The users service's rules on their own: validation, who may grant what, avatars, catalogue."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from services.kernel import uploads
from services.kernel.policy import permission_catalogue
from services.users import avatars, rules

CATALOGUE = ["contacts:read", "contacts:write", "contacts:delete", "users:read", "users:admin", "teams:write"]


def fields(problems: list[rules.FieldViolation]) -> set[str]:
    return {p.field for p in problems}


def test_user_fields_are_normalized_and_checked() -> None:
    clean, problems = rules.check_user({"email": "  Ann@Example.COM ", "first_name": "  Ann  Marie ", "last_name": "Lee"})
    assert clean == {"email": "ann@example.com", "first_name": "Ann Marie", "last_name": "Lee"} and not problems
    _, problems = rules.check_user({"email": "nope", "first_name": "x" * 101})
    assert fields(problems) == {"email", "firstName"}
    _, problems = rules.check_user({"email": ""})
    assert problems[0].code == "REQUIRED"
    # Only fields present are touched (partial updates).
    assert rules.check_user({"last_name": "Lee"}) == ({"last_name": "Lee"}, [])


def test_password_rules_and_invitations() -> None:
    assert rules.check_password("") == []  # no password: the user is invited
    assert rules.check_password("correct-horse-battery") == []
    assert rules.check_password("short")[0].code == "WEAK_PASSWORD"
    assert rules.check_password("aaaaaaaaaaaa")[0].field == "password"


def test_role_keys() -> None:
    assert rules.check_role_keys(["sales_rep", " manager ", "sales_rep"]) == (["sales_rep", "manager"], [])
    keys, problems = rules.check_role_keys(["Admin", "x", "ok_role", "a-b"])
    assert keys == ["ok_role"] and fields(problems) == {"roles[0]", "roles[1]", "roles[3]"}
    _, problems = rules.check_role_keys([f"role_{i}" for i in range(21)])
    assert problems[-1].code == "TOO_MANY"


def test_user_status() -> None:
    assert rules.user_status(True, True) == "active"
    assert rules.user_status(True, False) == "invited"
    assert rules.user_status(False, True) == rules.user_status(False, False) == "inactive"


@pytest.mark.parametrize(
    ("held", "wanted", "missing"),
    [
        ({"*"}, {"contacts:delete", "users:admin", "anything:at_all"}, []),
        ({"*"}, {"platform:tenants"}, ["platform:tenants"]),  # `*` never implies platform permissions
        ({"contacts:*"}, {"contacts:read", "contacts:delete", "contacts:*"}, []),
        ({"contacts:read", "contacts:write"}, {"contacts:*"}, ["contacts:*"]),  # the parts are not the whole
        ({"contacts:read"}, {"contacts:read", "users:read"}, ["users:read"]),
        ({"users:*"}, {"*"}, ["*"]),
        (set(), set(), []),
    ],
)
def test_not_held(held: set[str], wanted: set[str], missing: list[str]) -> None:
    assert rules.not_held(held, wanted) == missing
    assert all(rules.grants(held, p) for p in wanted if p not in missing)


def test_custom_role_permissions_come_from_the_catalogue() -> None:
    perms, problems = rules.check_permissions(["contacts:write", "users:*", "contacts:write", " teams:write "], CATALOGUE)
    assert perms == ["contacts:write", "teams:write", "users:*"] and not problems
    _, problems = rules.check_permissions(["*", "platform:*", "platform:tenants", "contacts:fly", "reports:*", "Contacts:Read", "x"], CATALOGUE)
    codes = {p.field: p.code for p in problems}
    assert codes == {
        "permissions[0]": "INVALID_PERMISSION", "permissions[1]": "FORBIDDEN_PERMISSION",
        "permissions[2]": "FORBIDDEN_PERMISSION", "permissions[3]": "UNKNOWN_PERMISSION",
        "permissions[4]": "UNKNOWN_PERMISSION", "permissions[5]": "INVALID_PERMISSION",
        "permissions[6]": "INVALID_PERMISSION",
    }


def test_custom_role_shape() -> None:
    clean, problems = rules.check_role({"key": "auditor", "name": " Auditor ", "description": "d", "permissions": ["users:read"]},
                                       CATALOGUE, creating=True)
    assert clean == {"key": "auditor", "name": "Auditor", "description": "d", "permissions": ["users:read"]} and not problems
    for key in ("admin", "platform_operator", "read_only"):
        _, problems = rules.check_role({"key": key, "name": "x"}, CATALOGUE, creating=True)
        assert problems[0].code == "RESERVED"
    _, problems = rules.check_role({"key": "9lives", "name": "", "description": "d" * 501}, CATALOGUE, creating=True)
    assert fields(problems) == {"key", "name", "description"}
    # Updates leave out the key and check only what they carry.
    assert rules.check_role({"description": "new"}, CATALOGUE, creating=False) == ({"description": "new"}, [])


def test_profile_fields() -> None:
    clean, problems = rules.check_profile({"title": " VP  Sales ", "phone": "0049 151 123 4567", "timezone": "America/New_York",
                                           "locale": "PT_br", "bio": "  Line one\nLine two  ", "location": ""})
    assert not problems
    assert clean == {"title": "VP Sales", "phone": "+491511234567", "timezone": "America/New_York", "locale": "pt-BR",
                     "bio": "Line one\nLine two", "location": ""}
    assert rules.check_profile({"locale": "zh-hant-tw"})[0]["locale"] == "zh-Hant-TW"
    assert rules.check_profile({"locale": "", "timezone": "", "phone": ""}) == ({"locale": "", "timezone": "", "phone": ""}, [])
    _, problems = rules.check_profile({"phone": "12", "timezone": "Europe/Atlantis", "locale": "english please",
                                       "title": "t" * 201, "bio": "b" * 2001})
    assert fields(problems) == {"phone", "timezone", "locale", "title", "bio"}


def test_preferences() -> None:
    prefs = {"theme": "dark", "pageSize": 25.0, "notifications": {"email": True, "digest": "daily"}, "ui": {"a": [1, 2]},
             "defaultCurrency": "EUR", "dateFormat": "YYYY-MM-DD", "timeFormat": "12h", "weekStart": "sunday"}
    clean, problems = rules.check_preferences(prefs)
    assert not problems and clean["pageSize"] == 25 and isinstance(clean["pageSize"], int)
    _, problems = rules.check_preferences({"theme": "pink", "pageSize": 5, "defaultCurrency": "euro", "x": 1,
                                           "notifications": {"email": "yes", "digest": "hourly", "fax": True}, "ui": []})
    assert fields(problems) == {"preferences.theme", "preferences.pageSize", "preferences.defaultCurrency", "preferences.x",
                                "preferences.notifications.email", "preferences.notifications.digest",
                                "preferences.notifications.fax", "preferences.ui"}
    assert rules.check_preferences({"pageSize": True})[1][0].field == "preferences.pageSize"  # a bool is no number
    _, problems = rules.check_preferences({"ui": {"k": "v" * 5000}})
    assert problems[0].code == "TOO_LARGE"
    _, problems = rules.check_preferences({f"k{i}": "v" * 100 for i in range(100)})
    assert "preferences" in fields(problems)


def test_team_fields() -> None:
    assert rules.check_team({"name": "  Big   Deals "}, creating=True) == ({"name": "Big Deals"}, [])
    assert fields(rules.check_team({}, creating=True)[1]) == {"name"}
    assert rules.check_team({"description": "x"}, creating=False) == ({"description": "x"}, [])
    assert fields(rules.check_team({"name": "n" * 101, "description": "d" * 1001}, creating=False)[1]) == {"name", "description"}


def _image(fmt: str, size: tuple[int, int], mode: str = "RGB", **save: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "red" if mode != "1" else 0).save(out, fmt, **save)
    return out.getvalue()


def test_avatar_is_cropped_scaled_and_reencoded() -> None:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}
    exif[0x0112] = 6  # rotated: the stored picture is turned upright first
    a = avatars.process(_image("JPEG", (900, 300), exif=exif.tobytes()))
    assert (a.content_type, a.width, a.height) == ("image/jpeg", 256, 256)
    img = Image.open(io.BytesIO(a.data))
    assert img.size == (256, 256) and not img.getexif()
    small = avatars.process(_image("PNG", (40, 64), "RGBA"))
    assert (small.content_type, small.width) == ("image/png", 40)
    gif = avatars.process(_image("GIF", (300, 300), "P"))
    assert gif.content_type == "image/jpeg" and gif.width == 256
    assert avatars.process(_image("WEBP", (100, 100))).width == 100
    assert a.etag != small.etag


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"", "EMPTY_FILE", 422),
        (b"GIF89a" + b"\0" * 20, "NOT_AN_IMAGE", 422),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "NOT_AN_IMAGE", 422),
        (b"BM" + b"\0" * 100, "NOT_AN_IMAGE", 422),  # BMP is not among the formats taken
        (b"\0" * (avatars.MAX_BYTES + 1), "FILE_TOO_LARGE", 413),
    ],
)
def test_avatar_refusals(data: bytes, code: str, status: int) -> None:
    with pytest.raises(avatars.AvatarError) as caught:
        avatars.process(data)
    assert (caught.value.code, caught.value.status) == (code, status)


def test_avatar_refuses_bombs_before_decoding() -> None:
    with pytest.raises(avatars.AvatarError) as caught:
        avatars.process(_image("PNG", (5001, 5001), "1"))
    assert caught.value.code == "TOO_MANY_PIXELS"
    assert Image.new("RGB", (1, 1)).size == (1, 1)  # Pillow's own warnings stay untouched afterwards


def test_uploaded_file_raw_and_multipart() -> None:
    assert uploads.uploaded_file(b"abc", "Image/PNG; charset=x") == uploads.UploadedFile(b"abc", "image/png")
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n"
            b"\x89PNG\r\n\r\n--XyZ--\r\n")
    found = uploads.uploaded_file(body, "multipart/form-data; boundary=XyZ")
    assert (found.data, found.content_type, found.filename, found.form) == (b"\x89PNG\r\n", "image/png", "me.png", {"note": "hello"})
    with pytest.raises(uploads.MultipartError) as caught:
        uploads.uploaded_file(body.replace(b'name="file"', b'name="other"'), "multipart/form-data; boundary=XyZ")
    assert caught.value.code == "MISSING_FILE_PART"
    with pytest.raises(uploads.MultipartError):
        uploads.uploaded_file(body, "multipart/form-data")


def test_permission_catalogue_reads_every_contract() -> None:
    catalogue = permission_catalogue()
    assert list(catalogue) == sorted(catalogue)
    assert "crm.users.v1.UsersService/AssignRole" in catalogue["users:admin"]
    assert "crm.contacts.v1.ContactsService/GetContact" in catalogue["contacts:read"]
    assert all(":" in name for name in catalogue)
