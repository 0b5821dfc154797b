"""Schemathesis extensions for the sweep (test_schemathesis.py), loaded by `st run` through the
`hooks` key of the configuration it writes. The sweep's tenant reaches this module through
environment variables (FUZZ_*), set by the test for the `st` process.

- auth: the seeded admin's token, except for logout, which ends the session it is called with,
  so each logout call signs in anew first;
- path parameters: half of the fuzzed cases name the seeded records (FUZZ_PATH_VALUES), the
  other half keep schemathesis' random values; ids schemathesis picks up from answers never
  name the sweep's own user (re-roling or deactivating it would end the sweep's token), nor, on a
  DELETE, a record other operations are given (they would meet 404s from then on);
- checks: the project's envelope on every answer, and the offending field on every 422;
- every answer's status is appended to FUZZ_STATUS_LOG, for the test's reach assertions.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st

LOGOUT = "/v1/auth/logout"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_LOCK = threading.Lock()


def _env(name: str) -> str:
    return os.environ.get(name, "")


def _path_values() -> list[tuple[str, str, dict[str, str]]]:
    raw = _env("FUZZ_PATH_VALUES")
    return [(m, p, v) for m, p, v in json.loads(raw)] if raw else []


PATH_VALUES = _path_values()
# Records the sweep must keep: its own user, and what non-destructive operations are given.
PROTECTED = {v for m, _, values in PATH_VALUES if m == "*" for v in values.values()}


def values_for(method: str, path: str) -> dict[str, str]:
    """Seeded values of an operation's path parameters; the first matching entry wins."""
    for m, p, values in PATH_VALUES:
        if p == path and m in (method.upper(), "*"):
            return values
    return {}


@schemathesis.auth(refresh_interval=None, retry_on=[])
class SweepAuth:
    """The admin's bearer token; a fresh session's for logout. No retry on 401: a 401 is an answer
    under test (bad credentials on login, refresh), not an expired token."""

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        if case.operation.path != LOGOUT:
            return _env("FUZZ_TOKEN")
        r = requests.post(f"{_env('FUZZ_BASE_URL')}/v1/auth/login", timeout=30,
                          json={"email": _env("FUZZ_EMAIL"), "password": _env("FUZZ_PASSWORD")})
        r.raise_for_status()
        token: str = r.json()["data"]["accessToken"]
        return token

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
    assert context.operation is not None
    known = values_for(context.operation.method, context.operation.path)
    if not known:
        return st.just(path_parameters)
    return st.sampled_from([{**path_parameters, **known}, path_parameters])


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    own = values_for(case.operation.method, case.operation.path)
    admin = _env("FUZZ_ADMIN_ID")
    params = case.path_parameters or {}
    for name, value in list(params.items()):
        spared = value == admin or (case.method.upper() == "DELETE" and value in PROTECTED)
        if spared and name in own and own[name] != value:
            params[name] = own[name]


@schemathesis.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response) -> None:
    log = _env("FUZZ_STATUS_LOG")
    if log:
        line = json.dumps({"op": f"{case.operation.method.upper()} {case.operation.path}", "status": response.status_code})
        with _LOCK, open(log, "a", encoding="utf-8") as out:
            out.write(line + "\n")


OAUTH_MEMBERS = ("access_token", "token_type", "expires_in", "refresh_token", "scope", "error", "error_description")


def _raw_success(case: schemathesis.Case, status: int) -> bool:
    """A success whose documented body is the document itself (exports, JWKS), not the envelope."""
    responses: dict[str, Any] = case.operation.definition.raw.get("responses", {})
    return status < 400 and "application/json" not in responses.get(str(status), {}).get("content", {})


@schemathesis.check
def envelope(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every REST answer but a raw download is `{success, data, meta{timestamp, version,
    requestId}, errors}`; an error names its code and message, a 422 the offending field."""
    status = response.status_code
    if _raw_success(case, status):
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"{status} answered with content type {content_type!r}"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{status} answered with a body that is not JSON ({exc}): {response.content[:300]!r}") from None
    # The OAuth endpoints add RFC 6749/7009 top-level members (`access_token`, `error` ...) to the
    # envelope for OAuth libraries; nothing else may add or drop a member.
    extra = set(OAUTH_MEMBERS) if case.operation.path.startswith("/v1/auth/token") else set()
    assert isinstance(body, dict) and {"success", "data", "meta", "errors"} <= set(body) <= (
        {"success", "data", "meta", "errors"} | extra), f"not the envelope: {body!r}"
    assert body["success"] is (status < 400), f"success={body['success']} on a {status}"
    meta = body["meta"]
    assert isinstance(meta, dict), f"meta is {meta!r}"
    assert isinstance(meta.get("timestamp"), str) and _TIMESTAMP.match(meta["timestamp"]), f"meta.timestamp: {meta!r}"
    assert meta.get("version") == "v1", f"meta.version: {meta!r}"
    assert isinstance(meta.get("requestId"), str) and meta["requestId"], f"meta.requestId: {meta!r}"
    errors = body["errors"]
    assert isinstance(errors, list), f"errors is {errors!r}"
    if status < 400:
        assert errors == [], f"errors on a {status}: {errors!r}"
        return
    assert body["data"] is None, f"data on a {status}: {body['data']!r}"
    assert errors, f"a {status} without errors"
    for error in errors:
        assert isinstance(error, dict) and isinstance(error.get("code"), str) and error["code"], f"error: {error!r}"
        assert isinstance(error.get("message"), str) and error["message"], f"error without a message: {error!r}"
        assert isinstance(error.get("field", ""), str), f"error field: {error!r}"
        if status == 422:
            assert error.get("field"), f"a 422 must name the offending field: {error!r}"
