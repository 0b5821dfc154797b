"""Helpers of the tenants tests: the operator CLI run for real, logins, and users added the way the
users service (built elsewhere) adds them, straight into the identity tables."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import httpx

from services.auth import passwords
from services.devstack import ROOT, DevStack

PASSWORD = "correct-horse-battery"


def run_operator_cli(stack: DevStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.tenants.operator", *args], env=stack.service_env(),
                          cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)


def login(api: httpx.Client, email: str, password: str = PASSWORD, tenant: str = "") -> dict[str, str]:
    body = {"email": email, "password": password}
    if tenant:
        body["tenantId"] = tenant
    r = api.post("/v1/auth/login", json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return {"authorization": f"Bearer {data['accessToken']}", "x-tenant-id": data["tenantId"],
            "refresh": data["refreshToken"]}


def h(t: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in t.items() if k != "refresh"}


def claims(headers: dict[str, str]) -> dict[str, Any]:
    """The payload of the access token (already verified by the services; read here only)."""
    payload = headers["authorization"].split()[1].split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def new_operator(stack: DevStack, api: httpx.Client) -> dict[str, str]:
    email = f"ops-{uuid.uuid4().hex[:8]}@platform.example"
    done = run_operator_cli(stack, "create", "--email", email, "--password", PASSWORD, "--first-name", "Olga")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["email"] == email
    return login(api, email, tenant=made["tenantId"])


def sql(stack: DevStack, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run SQL as the database owner (test setup only: it bypasses row-level security)."""
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(stack.migration_database_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def add_user(stack: DevStack, tenant_id: str, roles: list[str], *, active: bool = True) -> str:
    """A user of `tenant_id` with `roles` who can sign in; returns the email."""
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    user_id = uuid.uuid4()
    password_hash = asyncio.run(passwords.hash_password(PASSWORD))
    sql(stack, "INSERT INTO auth.users (id, tenant_id, email, password_hash, roles, active) "
               "VALUES ($1, $2, $3, $4, $5, $6)", user_id, uuid.UUID(tenant_id), email, password_hash, roles, active)
    sql(stack, "INSERT INTO auth.login_index (email, tenant_id, user_id) VALUES ($1, $2, $3)",
        email, uuid.UUID(tenant_id), user_id)
    return email


def create_tenant(api: httpx.Client, operator: dict[str, str], **overrides: Any) -> tuple[dict[str, Any], str]:
    """A tenant made by an operator; returns it and its admin's email."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    body = {"name": "Globex", "plan": "standard", "adminEmail": email, "adminPassword": PASSWORD,
            "adminFirstName": "Gina", "adminLastName": "Admin", **overrides}
    r = api.post("/v1/tenants", headers=h(operator), json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"], email


BILLING = {"companyName": "Globex GmbH", "taxId": "DE123456789", "billingEmail": "Billing@Globex.example",
           "address": {"line1": "Hauptstr. 1", "city": "Berlin", "postalCode": "10115", "country": "de"}}
