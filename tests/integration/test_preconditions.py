"""ETag and If-Match on records, through Envoy: no lost updates between two editors."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.kernel import policy
from tests.integration.conftest import account
from tests.integration.sales import default_pipeline, make_deal, make_pipeline
from tests.integration.users_support import h, make_user

Change = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body


def _contact(api: httpx.Client, t: dict[str, str]) -> str:
    r = api.post("/v1/contacts", headers=h(t), json={"firstName": "Ida", "lastName": "Tag", "email": "ida@example.com"})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def _lead(api: httpx.Client, t: dict[str, str]) -> str:
    r = api.post("/v1/leads", headers=h(t), json={"firstName": "Lou", "lastName": "Lead", "company": "Leadco"})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def _activity(api: httpx.Client, t: dict[str, str]) -> str:
    r = api.post("/v1/activities", headers=h(t), json={"type": "task", "subject": "Call back"})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def _deal(api: httpx.Client, t: dict[str, str]) -> str:
    return str(make_deal(api, t, "Tagged deal", amount="100.00", currency="USD")["id"])


def _user(api: httpx.Client, t: dict[str, str]) -> str:
    return str(make_user(api, t, ["sales_rep"])[0]["id"])


def _second_stage(api: httpx.Client, t: dict[str, str]) -> str:
    stages = default_pipeline(api, t)["stages"]
    return str(stages[1]["id"])


def _update(path: str, field: str, value: str) -> Callable[[httpx.Client, dict[str, str], str], Change]:
    return lambda api, t, i: ("PUT", f"{path.format(id=i)}?updateMask={field}", {field: value})


def _delete(path: str) -> Callable[[httpx.Client, dict[str, str], str], Change]:
    return lambda api, t, i: ("DELETE", path.format(id=i), None)


@dataclass(frozen=True)
class Case:
    make: Callable[[httpx.Client, dict[str, str]], str]
    path: str  # where the record is read
    edit: Callable[[httpx.Client, dict[str, str], str], Change]  # someone else's change, moving the tag on
    change: Callable[[httpx.Client, dict[str, str], str], Change]  # the conditional rpc under test


_ACCOUNT, _CONTACT, _DEAL = "/v1/accounts/{id}", "/v1/contacts/{id}", "/v1/deals/{id}"
_LEAD, _ACTIVITY, _USER = "/v1/leads/{id}", "/v1/activities/{id}", "/v1/users/{id}"
_PIPELINE = "/v1/pipelines/{id}"


def _account(api: httpx.Client, t: dict[str, str]) -> str:
    return account(api, t, "Tagged")


def _pipeline(api: httpx.Client, t: dict[str, str]) -> str:
    return str(make_pipeline(api, t, f"Tagged {uuid.uuid4().hex[:6]}")["id"])


def _rename_first_stage(api: httpx.Client, t: dict[str, str], pipeline: str) -> Change:
    first = api.get(f"/v1/pipelines/{pipeline}", headers=h(t)).json()["data"]["stages"][0]["id"]
    return ("PUT", f"/v1/pipelines/{pipeline}/stages/{first}", {"name": "Renamed stage"})


SWEEP: dict[str, Case] = {
    "UpdateAccount": Case(_account, _ACCOUNT, _update(_ACCOUNT, "industry", "Theirs"), _update(_ACCOUNT, "name", "Mine")),
    "DeleteAccount": Case(_account, _ACCOUNT, _update(_ACCOUNT, "industry", "Theirs"), _delete(_ACCOUNT)),
    "UpdateContact": Case(_contact, _CONTACT, _update(_CONTACT, "company", "Theirs"), _update(_CONTACT, "title", "CTO")),
    "DeleteContact": Case(_contact, _CONTACT, _update(_CONTACT, "company", "Theirs"), _delete(_CONTACT)),
    "UpdateDeal": Case(_deal, _DEAL, _update(_DEAL, "description", "Theirs"), _update(_DEAL, "amount", "250.00")),
    "DeleteDeal": Case(_deal, _DEAL, _update(_DEAL, "description", "Theirs"), _delete(_DEAL)),
    "MoveDealStage": Case(_deal, _DEAL, _update(_DEAL, "description", "Theirs"),
                          lambda api, t, i: ("POST", f"/v1/deals/{i}/move-stage", {"stageId": _second_stage(api, t)})),
    "UpdateLead": Case(_lead, _LEAD, _update(_LEAD, "description", "Theirs"), _update(_LEAD, "company", "Mine")),
    "DeleteLead": Case(_lead, _LEAD, _update(_LEAD, "description", "Theirs"), _delete(_LEAD)),
    "UpdateActivity": Case(_activity, _ACTIVITY, _update(_ACTIVITY, "body", "Theirs"),
                           _update(_ACTIVITY, "subject", "Mine")),
    "DeleteActivity": Case(_activity, _ACTIVITY, _update(_ACTIVITY, "body", "Theirs"), _delete(_ACTIVITY)),
    "UpdateUser": Case(_user, _USER, _update(_USER, "lastName", "Theirs"), _update(_USER, "firstName", "Mine")),
    "DeleteUser": Case(_user, _USER, _update(_USER, "lastName", "Theirs"), _delete(_USER)),
    # A pipeline's tag also moves when one of its stages changes (the stages are part of it).
    "UpdatePipeline": Case(_pipeline, _PIPELINE, _rename_first_stage, 
                           lambda api, t, i: ("PUT", f"/v1/pipelines/{i}", {"name": "Mine", "description": "Mine"})),
    "DeletePipeline": Case(_pipeline, _PIPELINE, _rename_first_stage, _delete(_PIPELINE)),
}


def _send(api: httpx.Client, t: dict[str, str], change: Change, **headers: str) -> httpx.Response:
    method, path, body = change
    return api.request(method, path, headers={**h(t), **headers}, json=body)


def test_every_conditional_rpc_is_in_the_sweep() -> None:
    conditional = {name.rsplit("/", 1)[1] for name, p in policy.policies(policy.contract_services()).items()
                   if p.conditional}
    assert conditional == set(SWEEP)


@pytest.mark.parametrize("rpc", sorted(SWEEP))
def test_a_stale_if_match_changes_nothing(api: httpx.Client, tenant: dict[str, str], rpc: str) -> None:
    case = SWEEP[rpc]
    record = case.make(api, tenant)
    path = case.path.format(id=record)
    first = api.get(path, headers=h(tenant))
    assert first.status_code == 200, first.text
    stale = first.headers["etag"]
    theirs = _send(api, tenant, case.edit(api, tenant, record))  # someone else's change in between
    assert theirs.status_code == 200, theirs.text
    reread = api.get(path, headers=h(tenant))
    current, before = reread.headers["etag"], reread.json()["data"]
    assert current != stale

    refused = _send(api, tenant, case.change(api, tenant, record), **{"if-match": stale})
    assert refused.status_code == 412, refused.text
    body = refused.json()
    assert body["success"] is False and body["errors"][0]["code"] == "PRECONDITION_FAILED"
    assert refused.headers["etag"] == current  # the version to read before trying again
    after = api.get(path, headers=h(tenant))
    assert after.status_code == 200 and after.json()["data"] == before

    done = _send(api, tenant, case.change(api, tenant, record), **{"if-match": current})
    assert done.status_code == 200, done.text


def test_etag_follows_every_change_and_if_match_forms(api: httpx.Client, tenant: dict[str, str]) -> None:
    created = api.post("/v1/contacts", headers=h(tenant), json={"firstName": "Eve", "email": "eve@example.com"})
    assert created.status_code == 201
    contact = created.json()["data"]["id"]
    tag = created.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')
    got = api.get(f"/v1/contacts/{contact}", headers=h(tenant))
    assert got.headers["etag"] == tag  # same version, same tag

    # Any listed tag may match; `*` matches whatever the version; weak tags never match If-Match.
    r = api.put(f"/v1/contacts/{contact}?updateMask=title", headers={**h(tenant), "if-match": f'"0", {tag}'},
                json={"title": "One"})
    assert r.status_code == 200 and r.headers["etag"] != tag
    tag = r.headers["etag"]
    r = api.put(f"/v1/contacts/{contact}?updateMask=title", headers={**h(tenant), "if-match": "*"}, json={"title": "Two"})
    assert r.status_code == 200
    r = api.put(f"/v1/contacts/{contact}?updateMask=title", headers={**h(tenant), "if-match": f"W/{r.headers['etag']}"},
                json={"title": "Three"})
    assert r.status_code == 412
    r = api.put(f"/v1/contacts/{contact}?updateMask=title", headers={**h(tenant), "if-match": "not-a-tag"},
                json={"title": "Four"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "If-Match"
    assert api.get(f"/v1/contacts/{contact}", headers=h(tenant)).json()["data"]["title"] == "Two"
    # Lists carry no ETag: a tag names one record's version.
    assert "etag" not in api.get("/v1/contacts", headers=h(tenant)).headers


def test_two_editors_with_one_version_one_wins(api: httpx.Client, tenant: dict[str, str], stack: Any) -> None:
    """Twenty editors change the same version at once: exactly one succeeds, the rest get 412."""
    contact = _contact(api, tenant)
    tag = api.get(f"/v1/contacts/{contact}", headers=h(tenant)).headers["etag"]
    titles = [f"Title {uuid.uuid4().hex[:6]}" for _ in range(20)]

    def edit(title: str) -> tuple[int, str]:
        with httpx.Client(base_url=stack.base_url, timeout=30) as own:
            r = own.put(f"/v1/contacts/{contact}?updateMask=title", headers={**h(tenant), "if-match": tag},
                        json={"title": title})
            return r.status_code, title

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(edit, titles))
    statuses = sorted(code for code, _ in answers)
    assert statuses == [200] + [412] * 19
    winner = next(title for code, title in answers if code == 200)
    assert api.get(f"/v1/contacts/{contact}", headers=h(tenant)).json()["data"]["title"] == winner
