"""The pipelines service as the kernel hosts it: the rpcs, the automation consumer and the
periodic idle-deal check.

Service settings (environment):
- CRM_AUTOMATION_ALLOW_LOOPBACK_WEBHOOKS=true lets webhooks reach loopback addresses (tests and
  local development only; refused when CRM_ENV=production). Private, link-local and metadata
  addresses stay refused whatever it says.
- CRM_AUTOMATION_WEBHOOK_TIMEOUT (seconds, default 5) bounds each webhook call.
- CRM_AUTOMATION_IDLE_CHECK_SECONDS (default 300): how often idle rules and abandoned runs are checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from crm.pipelines.v1 import pipelines_service_pb2, pipelines_service_pb2_grpc

from services.kernel.errors import ConfigurationError
from services.kernel.host import Runtime, ServiceModule
from services.kernel.settings import Settings
from services.pipelines.automation import CONSUMER, Automation, AutomationSettings
from services.pipelines.domain import PipelinesDomain
from services.pipelines.peers import ActivitiesPeer, DealsPeer
from services.pipelines.servicer import PipelinesServicer
from services.pipelines.tables import SCHEMA


def automation_settings(settings: Settings, env: dict[str, str] | None = None) -> AutomationSettings:
    e = os.environ if env is None else env
    allow = e.get("CRM_AUTOMATION_ALLOW_LOOPBACK_WEBHOOKS", "").lower() in ("1", "true", "yes")
    if allow and settings.environment == "production":
        raise ConfigurationError("CRM_AUTOMATION_ALLOW_LOOPBACK_WEBHOOKS is for tests; refusing it in production")
    try:
        timeout = float(e.get("CRM_AUTOMATION_WEBHOOK_TIMEOUT", "5"))
        interval = float(e.get("CRM_AUTOMATION_IDLE_CHECK_SECONDS", "300"))
    except ValueError:
        raise ConfigurationError("CRM_AUTOMATION_WEBHOOK_TIMEOUT and _IDLE_CHECK_SECONDS must be numbers") from None
    if not 0.1 <= timeout <= 30 or interval < 0.1:
        raise ConfigurationError("webhook timeout must be 0.1 to 30 seconds and the idle check interval at least 0.1")
    return AutomationSettings(allow_loopback_webhooks=allow, webhook_timeout=timeout, idle_check_seconds=interval)


async def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    assert runtime.clients is not None
    deals = DealsPeer(runtime.clients)
    automation = Automation(runtime.db, deals, ActivitiesPeer(runtime.clients), automation_settings(runtime.settings))
    domain = PipelinesDomain(runtime.db, deals)
    pipelines_service_pb2_grpc.add_PipelinesServiceServicer_to_server(PipelinesServicer(domain, automation), server)
    runtime.consume(SCHEMA, CONSUMER, "crm.deals.deal.>", automation.on_event)  # SUBJECTS among them
    runtime.background("pipelines-automation-periodic", automation.periodic)


MODULE = ServiceModule(
    name="pipelines",
    schema=SCHEMA,
    migrations=Path(__file__).parent / "migrations",
    descriptors=(pipelines_service_pb2.DESCRIPTOR.services_by_name["PipelinesService"],),
    register=register,
)
