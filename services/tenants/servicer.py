"""gRPC adapter of the tenants service: decode, call the domain, encode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import grpc
from crm.tenants.v1 import tenant_pb2 as tpb
from crm.tenants.v1 import tenants_service_pb2 as pb
from crm.tenants.v1 import tenants_service_pb2_grpc as pb_grpc
from google.protobuf import empty_pb2, timestamp_pb2
from sqlalchemy.engine import RowMapping

from services.auth.identity import tier_for
from services.auth.plans import CURRENCY, PLANS, Plan
from services.auth.servicer import user_to_proto
from services.kernel import listing
from services.kernel.errors import FieldViolation, InvalidArgument
from services.tenants import billing
from services.tenants.domain import PLATFORM_TENANT_ID, TenantsDomain, Usage, draft_to_invoice

Ctx = grpc.aio.ServicerContext[Any, Any]
_CONFIG_FIELDS = {"name": "name", "timezone": "timezone", "locale": "locale", "currency": "currency",
                  "date_format": "dateFormat", "time_format": "timeFormat", "week_start": "weekStart",
                  "fiscal_year_start_month": "fiscalYearStartMonth"}
_BRANDING_FIELDS = {"logo_url": "logoUrl", "primary_color": "primaryColor", "accent_color": "accentColor",
                    "email_footer": "emailFooter"}


def _ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def tenant_to_proto(row: RowMapping) -> tpb.Tenant:
    return tpb.Tenant(
        id=str(row["id"]), name=row["name"], plan=row["plan"], status=row["status"], tier=tier_for(row["plan"]),
        platform=row["id"] == PLATFORM_TENANT_ID, status_reason=row["status_reason"] or "",
        created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]), suspended_at=_ts(row["suspended_at"]),
        deleted_at=_ts(row["deleted_at"]),
    )


def plan_to_proto(plan: Plan) -> tpb.Plan:
    return tpb.Plan(key=plan.key, name=plan.name, price_per_seat=billing.money(plan.price_per_seat),
                    currency=CURRENCY, features=sorted(plan.features), limits=dict(plan.limits), tier=plan.tier)


def config_to_proto(config: Mapping[str, Any]) -> tpb.TenantConfig:
    out = tpb.TenantConfig(**{f: config[api] for f, api in _CONFIG_FIELDS.items() if api in config},
                           updated_at=_ts(config.get("updatedAt")))
    for f, api in _BRANDING_FIELDS.items():
        if api in config.get("branding", {}):
            setattr(out.branding, f, config["branding"][api])
    return out


def config_from_proto(config: tpb.TenantConfig) -> dict[str, Any]:
    """Only the fields the client sent (proto3 `optional` keeps their presence)."""
    present = {f.name for f, _ in config.ListFields()}
    changes: dict[str, Any] = {api: getattr(config, f) for f, api in _CONFIG_FIELDS.items() if f in present}
    if "branding" in present:
        sent = {f.name for f, _ in config.branding.ListFields()}
        changes["branding"] = {api: getattr(config.branding, f) for f, api in _BRANDING_FIELDS.items() if f in sent}
    return changes


def features_to_proto(plan: Plan, features: list[dict[str, Any]]) -> tpb.TenantFeatures:
    return tpb.TenantFeatures(plan=plan.key, features=[tpb.Feature(**f) for f in features])


def limits_to_proto(plan: Plan, limits: list[dict[str, Any]]) -> tpb.TenantLimits:
    return tpb.TenantLimits(plan=plan.key, limits=[tpb.Limit(**lim) for lim in limits])


def _percent(used: int, limit: int) -> str:
    if not limit:
        return ""
    return billing.money(Decimal(used) * 100 / Decimal(limit))


def usage_to_proto(usage: Usage, limits: Mapping[str, int]) -> tpb.TenantUsage:
    storage_limit = limits["storageMb"] * 1024 * 1024
    return tpb.TenantUsage(
        period_start=_ts(usage.period_start), period_end=_ts(usage.period_end),
        users=tpb.UsageMetric(used=usage.users, limit=limits["users"], percent=_percent(usage.users, limits["users"])),
        records=tpb.UsageMetric(used=usage.records, limit=limits["records"],
                                percent=_percent(usage.records, limits["records"])),
        records_by_type=usage.records_by_type,
        storage=tpb.StorageUsage(used_bytes=usage.storage_bytes, limit_bytes=storage_limit,
                                 percent=_percent(usage.storage_bytes, storage_limit)),
        api_calls=tpb.UsageMetric(used=usage.api_calls, limit=limits["apiCallsPerMonth"],
                                  percent=_percent(usage.api_calls, limits["apiCallsPerMonth"])),
        api_calls_today=usage.api_calls_today,
    )


def billing_to_proto(info: Mapping[str, Any]) -> tpb.BillingInfo:
    return tpb.BillingInfo(
        company_name=info["company_name"], tax_id=info["tax_id"], billing_email=info["billing_email"],
        address=tpb.Address(line1=info["address"].get("line1", ""), line2=info["address"].get("line2", ""),
                            city=info["address"].get("city", ""), postal_code=info["address"].get("postalCode", ""),
                            region=info["address"].get("region", ""), country=info["address"].get("country", "")),
        plan=plan_to_proto(info["plan"]), seats=info["seats"], period_start=_ts(info["period_start"]),
        period_end=_ts(info["period_end"]), current_period_total=info["current_period_total"],
        payment_method="invoice", complete=info["complete"],
        available_plans=[plan_to_proto(p) for p in PLANS.values()],
    )


def billing_from_proto(b: tpb.BillingInfo) -> dict[str, Any]:
    a = b.address
    return {"companyName": b.company_name, "taxId": b.tax_id, "billingEmail": b.billing_email,
            "address": {"line1": a.line1, "line2": a.line2, "city": a.city, "postalCode": a.postal_code,
                        "region": a.region, "country": a.country}}


def line_to_proto(line: billing.Line) -> tpb.InvoiceLine:
    return tpb.InvoiceLine(kind=line.kind, description=line.description, quantity=line.quantity,
                           unit_price=billing.money(line.unit_price), period_fraction=line.fraction,
                           amount=billing.money(line.amount), period_start=_ts(line.start),
                           period_end=_ts(line.end))


def invoice_to_proto(inv: Mapping[str, Any]) -> tpb.Invoice:
    return tpb.Invoice(
        id=inv["id"], number=inv["number"], status=inv["status"], currency=inv["currency"],
        period_start=_ts(inv["period_start"]), period_end=_ts(inv["period_end"]),
        lines=[line_to_proto(line) for line in inv["lines"]], subtotal=inv["subtotal"], tax=inv["tax"],
        total=inv["total"], issued_at=_ts(inv["issued_at"]), bill_to=inv["bill_to"],
    )


class TenantsServicer(pb_grpc.TenantsServiceServicer):
    def __init__(self, domain: TenantsDomain) -> None:
        self.domain = domain

    async def CreateTenant(self, request: pb.CreateTenantRequest, context: Ctx) -> pb.CreateTenantResponse:
        tenant, admin = await self.domain.create_tenant(
            name=request.name, plan=request.plan, email=request.admin_email, password=request.admin_password,
            first_name=request.admin_first_name, last_name=request.admin_last_name)
        return pb.CreateTenantResponse(tenant=tenant_to_proto(tenant), admin=user_to_proto(admin))

    async def GetTenant(self, request: pb.GetTenantRequest, context: Ctx) -> tpb.Tenant:
        return tenant_to_proto(await self.domain.get_tenant(request.id))

    async def UpdateTenant(self, request: pb.UpdateTenantRequest, context: Ctx) -> tpb.Tenant:
        t = request.tenant
        row: RowMapping = await self.domain.update_tenant(request.id, name=t.name, plan=t.plan, status=t.status,
                                                          reason=t.status_reason)
        return tenant_to_proto(row)

    async def DeleteTenant(self, request: pb.DeleteTenantRequest, context: Ctx) -> empty_pb2.Empty:
        await self.domain.delete_tenant(request.id)
        return empty_pb2.Empty()

    async def ListTenants(self, request: pb.ListTenantsRequest, context: Ctx) -> pb.ListTenantsResponse:
        p = listing.params(page=request.page, limit=request.limit, sort=request.sort, search=request.search)
        page = await self.domain.list_tenants(p, request.status, request.plan)
        return pb.ListTenantsResponse(tenants=[tenant_to_proto(r._mapping) for r in page.rows],
                                      pagination=page.info())

    async def GetTenantConfig(self, request: pb.GetTenantConfigRequest, context: Ctx) -> tpb.TenantConfig:
        return config_to_proto(await self.domain.get_config(request.id))

    async def UpdateTenantConfig(self, request: pb.UpdateTenantConfigRequest, context: Ctx) -> tpb.TenantConfig:
        changes = config_from_proto(request.config)
        if not changes:
            raise InvalidArgument("nothing to change", violations=[FieldViolation("config", "name a setting", "EMPTY")])
        return config_to_proto(await self.domain.update_config(request.id, changes))

    async def GetTenantFeatures(self, request: pb.GetTenantFeaturesRequest, context: Ctx) -> tpb.TenantFeatures:
        return features_to_proto(*await self.domain.get_features(request.id))

    async def UpdateTenantFeatures(self, request: pb.UpdateTenantFeaturesRequest, context: Ctx) -> tpb.TenantFeatures:
        return features_to_proto(*await self.domain.update_features(request.id, dict(request.features)))

    async def GetTenantLimits(self, request: pb.GetTenantLimitsRequest, context: Ctx) -> tpb.TenantLimits:
        return limits_to_proto(*await self.domain.get_limits(request.id))

    async def UpdateTenantLimits(self, request: pb.UpdateTenantLimitsRequest, context: Ctx) -> tpb.TenantLimits:
        return limits_to_proto(*await self.domain.update_limits(request.id, dict(request.limits)))

    async def GetTenantUsage(self, request: pb.GetTenantUsageRequest, context: Ctx) -> tpb.TenantUsage:
        return usage_to_proto(*await self.domain.usage(request.id))

    async def GetBilling(self, request: pb.GetBillingRequest, context: Ctx) -> tpb.BillingInfo:
        return billing_to_proto(await self.domain.get_billing(request.id))

    async def UpdateBilling(self, request: pb.UpdateBillingRequest, context: Ctx) -> tpb.BillingInfo:
        return billing_to_proto(await self.domain.update_billing(request.id, billing_from_proto(request.billing)))

    async def ListInvoices(self, request: pb.ListInvoicesRequest, context: Ctx) -> pb.ListInvoicesResponse:
        p = listing.params(page=request.page, limit=request.limit)
        invoices, total = await self.domain.list_invoices(request.id, p)
        page = listing.Page(rows=invoices, page=p.page, limit=p.limit, total=total)
        return pb.ListInvoicesResponse(invoices=[invoice_to_proto(i) for i in invoices], pagination=page.info())

    async def UpgradePlan(self, request: pb.UpgradePlanRequest, context: Ctx) -> pb.UpgradePlanResponse:
        changed = await self.domain.upgrade(request.id, request.plan)
        invoice = draft_to_invoice(changed.tenant["id"], changed.invoice, "")
        return pb.UpgradePlanResponse(tenant=tenant_to_proto(changed.tenant), previous_plan=changed.previous_plan,
                                      proration=line_to_proto(changed.proration), invoice=invoice_to_proto(invoice))
