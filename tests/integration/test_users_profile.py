"""Profiles, preferences and avatars through real Envoy, self-service included."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
from PIL import Image

from tests.integration.users_support import h, make_user


def _jpeg_with_gps(size: tuple[int, int] = (1200, 800)) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS IFD
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels, with one tiny compressed row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_profile_self_service_and_validation(api: httpx.Client, tenant: dict[str, str]) -> None:
    user, me = make_user(api, tenant, ["read_only"])
    other, ot = make_user(api, tenant, ["read_only"])
    uid = user["id"]
    r = api.get(f"/v1/users/{uid}/profile", headers=h(me))
    assert r.status_code == 200 and r.json()["data"]["title"] == "" and r.json()["data"]["email"] == user["email"]
    r = api.put(f"/v1/users/{uid}/profile", headers=h(me), json={
        "title": "  Account   Executive ", "department": "Sales", "phone": "+49 (151) 123-4567",
        "timezone": "Europe/Berlin", "locale": "de_de", "bio": "Hi.\nI sell.", "location": "Berlin"})
    assert r.status_code == 200, r.text
    p = r.json()["data"]
    assert (p["title"], p["phone"], p["locale"], p["bio"]) == ("Account Executive", "+491511234567", "de-DE", "Hi.\nI sell.")
    assert api.get(f"/v1/users/{uid}", headers=h(tenant)).json()["data"]["title"] == "Account Executive"
    r = api.put(f"/v1/users/{uid}/profile?updateMask=title", headers=h(me), json={"title": "AE", "bio": "ignored"})
    assert r.json()["data"]["title"] == "AE" and r.json()["data"]["bio"] == "Hi.\nI sell."
    r = api.put(f"/v1/users/{uid}/profile", headers=h(me), json={"timezone": "Mars/Olympus", "locale": "xx-!!",
                                                                 "phone": "call me", "bio": "b" * 2001})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"timezone", "locale", "phone", "bio"}
    # Colleagues read it (users:read) but only users:write holders change someone else's.
    assert api.get(f"/v1/users/{uid}/profile", headers=h(ot)).status_code == 200
    assert api.put(f"/v1/users/{uid}/profile", headers=h(ot), json={"title": "Intern"}).status_code == 403
    r = api.put(f"/v1/users/{uid}/profile?updateMask=department", headers=h(tenant), json={"department": "EMEA"})
    assert r.status_code == 200 and r.json()["data"]["department"] == "EMEA"
    assert other["id"] != uid


def test_preferences_known_keys_and_bounds(api: httpx.Client, tenant: dict[str, str]) -> None:
    user, me = make_user(api, tenant, ["read_only"])
    uid = user["id"]
    r = api.get(f"/v1/users/{uid}/preferences", headers=h(me))
    assert r.status_code == 200 and r.json()["data"]["preferences"] == {}
    prefs = {"theme": "dark", "pageSize": 50, "timeFormat": "24h", "weekStart": "monday", "defaultCurrency": "EUR",
             "dateFormat": "DD.MM.YYYY", "notifications": {"email": False, "digest": "weekly"}, "ui": {"sidebar": "collapsed"}}
    r = api.put(f"/v1/users/{uid}/preferences", headers=h(me), json={"preferences": prefs})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["preferences"] == prefs
    assert api.get(f"/v1/users/{uid}/preferences", headers=h(me)).json()["data"]["preferences"] == prefs
    r = api.put(f"/v1/users/{uid}/preferences", headers=h(me), json={"preferences": {
        "theme": "neon", "pageSize": 10.5, "color": "red", "notifications": {"sms": True, "email": "yes"}}})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "preferences.theme", "preferences.pageSize", "preferences.color", "preferences.notifications.sms",
        "preferences.notifications.email"}
    r = api.put(f"/v1/users/{uid}/preferences", headers=h(me), json={"preferences": {"ui": {"blob": "x" * 5000}}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "preferences.ui"
    # PUT replaces: what is not sent is gone.
    r = api.put(f"/v1/users/{uid}/preferences", headers=h(me), json={"preferences": {"theme": "light"}})
    assert r.json()["data"]["preferences"] == {"theme": "light"}
    _, colleague = make_user(api, tenant, ["sales_rep"])
    assert api.put(f"/v1/users/{uid}/preferences", headers=h(colleague), json={"preferences": {}}).status_code == 403


def test_avatar_raw_and_multipart_resized_and_stripped(api: httpx.Client, tenant: dict[str, str]) -> None:
    user, me = make_user(api, tenant, ["read_only"])
    uid = user["id"]
    assert api.get(f"/v1/users/{uid}/avatar", headers=h(me)).status_code == 404
    original = _jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get(0x8825) is not None
    # Raw body; the declared type does not matter, the bytes do.
    r = api.post(f"/v1/users/{uid}/avatar", headers={**h(me), "content-type": "application/octet-stream"}, content=original)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["avatarUrl"] == f"/v1/users/{uid}/avatar"
    assert api.get(f"/v1/users/{uid}", headers=h(me)).json()["data"]["avatarUrl"] == f"/v1/users/{uid}/avatar"
    got = api.get(f"/v1/users/{uid}/avatar", headers=h(me))
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(got.content))
    assert img.size == (256, 256) and img.format == "JPEG"
    assert not img.getexif() and b"SpyCam" not in got.content
    # multipart/form-data with a `file` part; a transparent PNG stays a PNG.
    png = io.BytesIO()
    Image.new("RGBA", (120, 90), (0, 0, 0, 0)).save(png, "PNG")
    r = api.post(f"/v1/users/{uid}/avatar", headers=h(me), files={"file": ("me.png", png.getvalue(), "image/png")})
    assert r.status_code == 200, r.text
    got = api.get(f"/v1/users/{uid}/avatar", headers=h(me))
    assert got.headers["content-type"] == "image/png" and Image.open(io.BytesIO(got.content)).size == (90, 90)
    # Admins may set anyone's; a colleague may not.
    _, colleague = make_user(api, tenant, ["sales_rep"])
    assert api.post(f"/v1/users/{uid}/avatar", headers={**h(colleague), "content-type": "image/jpeg"},
                    content=original).status_code == 403
    assert api.post(f"/v1/users/{uid}/avatar", headers={**h(tenant), "content-type": "image/jpeg"},
                    content=original).status_code == 200


def test_avatar_refuses_non_images_large_files_and_bombs(api: httpx.Client, tenant: dict[str, str]) -> None:
    user, me = make_user(api, tenant, ["read_only"])
    url = f"/v1/users/{user['id']}/avatar"
    # Not an image, whatever the Content-Type claims.
    for body, ctype in ((b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
                        (b"%PDF-1.7\n" + b"0" * 100, "image/png"), (b"\xff\xd8\xff\xe0garbage", "image/jpeg")):
        r = api.post(url, headers={**h(me), "content-type": ctype}, content=body)
        assert r.status_code == 422 and r.json()["errors"][0] == {
            "code": "NOT_AN_IMAGE", "message": "the file is not a JPEG, PNG, GIF or WebP image", "field": "file"}, r.text
    r = api.post(url, headers={**h(me), "content-type": "image/png"}, content=b"")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    # Over 5 MiB: 413.
    r = api.post(url, headers={**h(me), "content-type": "image/jpeg"}, content=b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["errors"][0]["code"] == "FILE_TOO_LARGE"
    # Decompression bombs: 36 megapixels in a few KiB, and a header claiming 10 gigapixels.
    bomb = io.BytesIO()
    Image.new("1", (6000, 6000)).save(bomb, "PNG", optimize=True)
    assert len(bomb.getvalue()) < 64 * 1024
    for data in (bomb.getvalue(), _png_header_only(100_000, 100_000)):
        r = api.post(url, headers={**h(me), "content-type": "image/png"}, content=data)
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "TOO_MANY_PIXELS", r.text
    # A form without a `file` part.
    r = api.post(url, headers=h(me), files={"other": ("x.png", b"123", "image/png")})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MISSING_FILE_PART"
    assert api.get(url, headers=h(me)).status_code == 404
