"""Two-way calendar sync against a real CalDAV server (Radicale, started here on a free port with
its own storage and htpasswd users), driven through Envoy: connection settings, pushes, pulls,
edits on the server, conflicts, deletions both ways, bad credentials and SSRF refusals."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import grpc
import httpx
import icalendar
import pytest

from services.devstack import DevStack, free_port, wait_for_port
from services.kernel.db import asyncpg_dsn
from tests.integration.test_activities_rest import create, user_of
from tests.integration.test_contacts_rest import h

USER, PASSWORD = "ann", "s3cret-calendar-pw"


class Radicale:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(auth=(USER, PASSWORD), timeout=10)

    def calendar(self) -> str:
        """A new, empty calendar collection of the user."""
        url = f"{self.base}/{USER}/{uuid.uuid4().hex[:8]}/"
        r = self.http.request("MKCALENDAR", url)
        assert r.status_code == 201, r.text
        return url

    def get(self, url: str) -> tuple[str, Any] | None:
        r = self.http.get(url)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return r.headers["etag"], icalendar.Calendar.from_ical(r.text).walk("VEVENT")[0]

    def put(self, url: str, event: icalendar.Event, etag: str = "") -> None:
        cal = icalendar.Calendar()
        cal.add("prodid", "-//Another client//EN")
        cal.add("version", "2.0")
        cal.add_component(event)
        headers = {"content-type": "text/calendar"} | ({"if-match": etag} if etag else {})
        r = self.http.put(url, content=cal.to_ical(), headers=headers)
        assert r.status_code in (201, 204), r.text

    def delete(self, url: str) -> None:
        assert self.http.delete(url).status_code in (200, 204)

    def hrefs(self, calendar: str) -> list[str]:
        body = '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
        r = self.http.request("PROPFIND", calendar, content=body, headers={"depth": "1"})
        return sorted(unquote(part.split("</")[0]) for part in r.text.split("<href>")[1:] if part.split("</")[0].endswith(".ics"))


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    root = Path(tmp_path_factory.mktemp("radicale"))
    (root / "users").write_text(f"{USER}:{PASSWORD}\n")
    port = free_port()
    (root / "config").write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {root / 'users'}\nhtpasswd_encryption = plain\n"
        f"[storage]\nfilesystem_folder = {root / 'collections'}\n"
        "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n"
    )
    log = open(root / "radicale.log", "wb")  # noqa: SIM115 - the child writes it until the end
    proc = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(root / "config")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield Radicale(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def remote_event(uid: str, summary: str, start: dt.datetime, *, modified: dt.datetime | None = None) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", dt.datetime.now(dt.UTC))
    event.add("dtstart", start)
    event.add("dtend", start + dt.timedelta(hours=1))
    event.add("summary", summary)
    event.add("last-modified", modified or dt.datetime.now(dt.UTC))
    return event


def sync(api: httpx.Client, t: dict[str, str]) -> dict[str, Any]:
    r = api.post("/v1/activities/calendar/sync", headers=h(t), json={})
    assert r.status_code == 202, r.text
    job_id = r.json()["data"]["jobId"]
    for _ in range(300):
        job: dict[str, Any] = api.get(f"/v1/activities/calendar/sync/{job_id}", headers=h(t)).json()["data"]
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("the sync job did not finish")


def events(api: httpx.Client, t: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = api.get("/v1/activities?type=event&limit=100", headers=h(t))
    return {e["subject"]: e for e in r.json()["data"]}


def start(days: int, hour: int) -> dt.datetime:
    return dt.datetime.combine(dt.date(2031, 5, 5) + dt.timedelta(days=days), dt.time(hour), dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def test_two_way_sync_with_a_caldav_server(api: httpx.Client, stack: DevStack, tenant: dict[str, str],
                                           radicale: Radicale) -> None:
    calendar = radicale.calendar()
    r = api.put("/v1/activities/calendar/connection", headers=h(tenant),
                json={"url": calendar, "username": USER, "password": PASSWORD})
    assert r.status_code == 200, r.text
    conn = r.json()["data"]
    # Write-only: the field is always empty in answers (the edge prints empty strings).
    assert conn["hasPassword"] is True and conn.get("password", "") == "" and conn["lastStatus"] == "never"
    got = api.get("/v1/activities/calendar/connection", headers=h(tenant)).json()["data"]
    assert got["url"] == calendar and got.get("password", "") == "" and PASSWORD not in str(got)
    # Stored encrypted, not as the plain password.
    sealed = asyncio.run(_stored_password(stack, user_of(tenant)))
    assert sealed and PASSWORD.encode() not in sealed

    # Local events, and one made on the server by another client.
    keep = create(api, tenant, "/v1/activities/events", subject="Local kept", startAt=iso(start(0, 9)), endAt=iso(start(0, 10)),
                  attendees=[{"email": "guest@example.com", "name": "Guest"}])
    server_wins = create(api, tenant, "/v1/activities/events", subject="Edited both, server later",
                         startAt=iso(start(0, 11)), endAt=iso(start(0, 12)))
    local_wins = create(api, tenant, "/v1/activities/events", subject="Edited both, local later",
                        startAt=iso(start(0, 13)), endAt=iso(start(0, 14)))
    doomed = create(api, tenant, "/v1/activities/events", subject="Deleted here", startAt=iso(start(1, 9)), endAt=iso(start(1, 10)))
    create(api, tenant, "/v1/activities/tasks", subject="Tasks stay local", dueAt=iso(start(1, 9)))
    remote_url = f"{calendar}remote-1.ics"
    radicale.put(remote_url, remote_event("remote-1@other", "Made on the server", start(2, 9)))

    job = sync(api, tenant)
    assert job["status"] == "completed", job
    assert job["counts"]["failed"] == 0 and job["counts"]["succeeded"] >= 5, json.dumps(job)
    # Pushed: the four local events are on the server as VEVENTs with their UIDs.
    assert len(radicale.hrefs(calendar)) == 5
    pushed = radicale.get(f"{calendar}{keep['icalUid']}.ics")
    assert pushed is not None
    etag, vevent = pushed
    assert str(vevent["uid"]) == keep["icalUid"] and str(vevent["summary"]) == "Local kept"
    assert vevent.decoded("dtstart") == start(0, 9) and str(vevent["attendee"]) == "mailto:guest@example.com"
    # Pulled: the server's event is an event here, owned by the calendar's user.
    local = events(api, tenant)
    assert local["Made on the server"]["startAt"] == iso(start(2, 9))
    assert local["Made on the server"]["ownerId"] == user_of(tenant) and local["Made on the server"]["icalUid"] == "remote-1@other"
    assert api.get("/v1/activities/calendar/connection", headers=h(tenant)).json()["data"]["lastStatus"] == "ok"

    # A second sync with nothing changed changes nothing.
    again = sync(api, tenant)
    assert again["status"] == "completed" and again["counts"]["succeeded"] == 0, json.dumps(again)

    # Server-side edits: one plain, two that conflict with local edits.
    server_etag = (radicale.get(remote_url) or ("",))[0]
    radicale.put(remote_url, remote_event("remote-1@other", "Renamed on the server", start(2, 15)), server_etag)
    api.put(f"/v1/activities/{server_wins['id']}?updateMask=subject", headers=h(tenant), json={"subject": "Local edit A"})
    api.put(f"/v1/activities/{local_wins['id']}?updateMask=subject", headers=h(tenant), json={"subject": "Local edit B"})
    future, past = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    url_a, url_b = f"{calendar}{server_wins['icalUid']}.ics", f"{calendar}{local_wins['icalUid']}.ics"
    radicale.put(url_a, remote_event(server_wins["icalUid"], "Server edit A", start(0, 11), modified=future),
                 (radicale.get(url_a) or ("",))[0])
    radicale.put(url_b, remote_event(local_wins["icalUid"], "Server edit B", start(0, 13), modified=past),
                 (radicale.get(url_b) or ("",))[0])
    # Deletions both ways.
    assert api.delete(f"/v1/activities/{doomed['id']}", headers=h(tenant)).status_code == 200
    made_remote = local["Made on the server"]["id"]
    # (renamed above; deleted below after the pull of the rename, to see both)

    job = sync(api, tenant)
    assert job["status"] == "completed", job
    local = events(api, tenant)
    assert "Renamed on the server" in local and local["Renamed on the server"]["startAt"] == iso(start(2, 15))
    assert local["Renamed on the server"]["id"] == made_remote
    assert "Server edit A" in local and "Local edit A" not in local  # later LAST-MODIFIED wins
    assert "Local edit B" in local and "Server edit B" not in local
    got_b = radicale.get(url_b)
    assert got_b is not None and str(got_b[1]["summary"]) == "Local edit B"  # and was pushed over the server's
    assert radicale.get(f"{calendar}{doomed['icalUid']}.ics") is None  # deleted here -> deleted there
    assert etag  # the first push had an ETag the later If-Match relied on

    # Deleted on the server -> deleted here.
    radicale.delete(remote_url)
    job = sync(api, tenant)
    assert job["status"] == "completed"
    assert "Renamed on the server" not in events(api, tenant)
    assert api.get(f"/v1/activities/{made_remote}", headers=h(tenant)).status_code == 404
    path = urlsplit(calendar).path
    assert radicale.hrefs(calendar) == sorted(f"{path}{x['icalUid']}.ics" for x in (keep, server_wins, local_wins))


async def _stored_password(stack: DevStack, user_id: str) -> bytes:
    conn = await asyncpg.connect(asyncpg_dsn(stack.migration_database_url))
    try:
        value: bytes = await conn.fetchval(
            "SELECT password_encrypted FROM activities.calendar_connections WHERE user_id = $1", uuid.UUID(user_id))
        return value
    finally:
        await conn.close()


def test_bad_credentials_fail_the_job_and_say_why(api: httpx.Client, tenant: dict[str, str], radicale: Radicale) -> None:
    calendar = radicale.calendar()
    r = api.put("/v1/activities/calendar/connection", headers=h(tenant),
                json={"url": calendar, "username": USER, "password": "wrong"})
    assert r.status_code == 200
    job = sync(api, tenant)
    assert job["status"] == "failed" and "calendar" in job["failureReason"]
    conn = api.get("/v1/activities/calendar/connection", headers=h(tenant)).json()["data"]
    assert conn["lastStatus"] == "failed" and conn["lastError"]
    # Fixing the password (an empty one keeps the stored password; this one replaces it) heals it.
    api.put("/v1/activities/calendar/connection", headers=h(tenant),
            json={"url": calendar, "username": USER, "password": PASSWORD})
    assert sync(api, tenant)["status"] == "completed"
    assert api.delete("/v1/activities/calendar/connection", headers=h(tenant)).status_code == 200
    assert api.get("/v1/activities/calendar/connection", headers=h(tenant)).status_code == 404


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://10.0.0.7/dav/", "http://192.168.0.10:5232/ann/cal/", "http://[fd12::1]/cal/",
    "ftp://example.com/cal/", "http://user:pw@8.8.8.8/cal/",
])
def test_calendar_urls_to_internal_networks_are_refused(api: httpx.Client, tenant: dict[str, str], url: str) -> None:
    r = api.put("/v1/activities/calendar/connection", headers=h(tenant), json={"url": url, "username": "x", "password": "y"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "url"
    assert api.get("/v1/activities/calendar/connection", headers=h(tenant)).status_code == 404


async def test_calendars_are_also_synced_in_the_background(stack: DevStack, radicale: Radicale,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Without anyone calling the sync endpoint, a connected calendar's changes arrive: the
    scheduler starts sync jobs when a calendar's turn comes (here: every second)."""
    from crm.activities.v1 import activities_service_pb2 as apb
    from crm.activities.v1 import activities_service_pb2_grpc as apb_grpc

    from services.activities import sync as sync_module
    from services.kernel.host import Host, load_modules
    from services.kernel.settings import Settings
    from tests.integration.conftest import mint

    monkeypatch.setenv("CRM_CALDAV_SYNC_INTERVAL", "1")
    monkeypatch.setenv("CRM_CALDAV_ALLOW_LOOPBACK", "1")
    monkeypatch.setattr(sync_module, "SCHEDULER_TICK_SECONDS", 0.2)
    settings = Settings.from_env(stack.service_env(CRM_GRPC_LISTEN="127.0.0.1:0", CRM_SERVICES="activities"))
    host = Host(settings, load_modules(("activities",)))
    await host.start()
    try:
        tenant, user = str(uuid.uuid4()), str(uuid.uuid4())
        md = (("authorization", f"Bearer {mint(stack, tenant_id=tenant, user_id=user, perms=['activities:*'])}"),
              ("x-tenant-id", tenant))
        calendar = radicale.calendar()
        radicale.put(f"{calendar}bg-1.ics", remote_event("bg-1@other", "Booked elsewhere", start(3, 9)))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            stub = apb_grpc.ActivitiesServiceStub(channel)
            await stub.PutCalendarConnection(apb.PutCalendarConnectionRequest(connection=apb.CalendarConnection(
                url=calendar, username=USER, password=PASSWORD)), metadata=md)
            for _ in range(100):
                page = await stub.ListActivities(apb.ListActivitiesRequest(type="event"), metadata=md)
                if page.activities:
                    break
                await asyncio.sleep(0.1)
            assert [a.subject for a in page.activities] == ["Booked elsewhere"]
            assert page.activities[0].owner_id == user
            state = await stub.GetCalendarConnection(apb.GetCalendarConnectionRequest(), metadata=md)
            assert state.last_status == "ok"
    finally:
        await host.stop(grace=1.0)
