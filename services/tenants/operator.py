"""Platform operators are made here, never by sign-up.

    python -m services.tenants.operator create --email ops@example.com --password '...' \
        [--first-name Ada] [--last-name Ops]

Reads the CRM_* settings the services read (CRM_DATABASE_URL, CRM_MIGRATION_DATABASE_URL ...;
`make operator` takes them from a running `make run` stack). Brings the identity schema up to
date, creates the platform tenant when it is missing, and adds a user there with the built-in
role `platform_operator` (`platform:*`). The operator then signs in with POST /v1/auth/login.
Prints the new operator as JSON; exits 2 on invalid input, 1 when the address is already an
operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.auth import identity, passwords
from services.auth.domain import EMAIL_RE, normalize_email
from services.kernel import migrations
from services.kernel.db import Database
from services.kernel.errors import ConfigurationError
from services.kernel.settings import Settings
from services.tenants.domain import PLATFORM_TENANT_ID

OPERATOR_ROLE = "platform_operator"
PLATFORM_TENANT_NAME = "Platform"


def _migrate(settings: Settings) -> None:
    from services.kernel.host import load_modules

    for module in load_modules(("auth", "tenants")):
        migrations.upgrade(module.schema, module.migrations, settings.migration_database_url,
                           settings.database_url, module.version_table)


async def create(settings: Settings, *, email: str, password: str, first_name: str, last_name: str) -> dict[str, str]:
    db = Database(settings.database_url, pool_size=1)
    try:
        await db.check_runtime_role()
        password_hash = await passwords.hash_password(password)
        # Scoped to the platform tenant like any of its rpcs: row-level security applies.
        async with db.transaction(tenant_id=str(PLATFORM_TENANT_ID)) as conn:
            exists = (await conn.execute(text("SELECT 1 FROM auth.tenants WHERE id = :t"),
                                         {"t": PLATFORM_TENANT_ID})).first()
            if exists is None:
                user = await identity.create_tenant_with_admin(
                    conn, tenant_id=PLATFORM_TENANT_ID, name=PLATFORM_TENANT_NAME, plan="enterprise", email=email,
                    password_hash=password_hash, first_name=first_name, last_name=last_name,
                    event_type="crm.tenants.tenant.created", roles=[OPERATOR_ROLE])
            else:
                user = await identity.insert_user(conn, tenant_id=PLATFORM_TENANT_ID, email=email,
                                                  password_hash=password_hash, first_name=first_name,
                                                  last_name=last_name, roles=[OPERATOR_ROLE])
        return {"tenantId": str(PLATFORM_TENANT_ID), "userId": str(user["id"]), "email": email,
                "roles": OPERATOR_ROLE}
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tenants.operator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="create a platform operator")
    make.add_argument("--email", required=True)
    make.add_argument("--password", required=True)
    make.add_argument("--first-name", default="")
    make.add_argument("--last-name", default="")
    args = parser.parse_args(argv)

    email = normalize_email(args.email)
    problems = []
    if not EMAIL_RE.match(email) or len(email) > 254:
        problems.append("--email: must be a valid email address")
    weak = passwords.weakness(args.password)
    if weak:
        problems.append(f"--password: password {weak}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        _migrate(settings)
        made = asyncio.run(create(settings, email=email, password=args.password, first_name=args.first_name,
                                  last_name=args.last_name))
    except ConfigurationError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    except IntegrityError:
        print(f"{email} is already a user of the platform tenant", file=sys.stderr)
        return 1
    print(json.dumps(made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
