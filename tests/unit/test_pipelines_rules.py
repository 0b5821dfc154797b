"""Pipeline, stage and automation rule checks, and the webhook address guard."""

from __future__ import annotations

import ipaddress
import uuid

import pytest

from services.kernel.settings import Settings
from services.pipelines import rules, webhooks
from services.pipelines.module import automation_settings


def test_reorder_must_name_exactly_the_pipelines_stages() -> None:
    current = ["a", "b", "c"]
    assert rules.reorder_problems(current, ["c", "a", "b"]) == []
    assert rules.reorder_problems(current, ["a", "b"])[0].code == "INCOMPLETE"
    assert rules.reorder_problems(current, ["a", "b", "c", "d"])[0].code == "UNKNOWN_STAGE"
    assert rules.reorder_problems(current, ["a", "a", "b"])[0].code == "DUPLICATE"


def test_stage_defaults_and_set_rules() -> None:
    won, problems = rules.check_stage({"name": "Won", "kind": "won"})
    assert not problems and won["probability"] == 100
    _, problems = rules.check_stage({"name": "Open"})
    assert problems[0].field == "probability"
    _, problems = rules.check_stage({"name": "X", "probability": 101, "kind": "maybe"})
    assert {p.field for p in problems} == {"probability", "kind"}
    problems = rules.check_stage_set([{"name": "A", "kind": "won"}, {"name": "a", "kind": "lost"}])
    assert {p.code for p in problems} == {"DUPLICATE", "OPEN_STAGE_REQUIRED"}


def test_rule_check_names_each_bad_part() -> None:
    stage = str(uuid.uuid4())
    clean, problems = rules.check_rule({"name": "r", "trigger": {"event": "stage_idle", "stage_id": stage, "idle_hours": 48},
                                        "actions": [{"type": "set_field", "field": "forecastCategory", "value": "commit"},
                                                    {"type": "webhook", "url": "https://hooks.example.com/x"}]},
                                       {stage})
    assert not problems and clean["enabled"] is True and clean["trigger"]["idle_hours"] == 48
    _, problems = rules.check_rule({"name": "", "trigger": {"event": "stage_idle", "stage_id": str(uuid.uuid4())},
                                    "actions": [{"type": "set_field", "field": "stageId"},
                                                {"type": "webhook", "url": "ftp://x"},
                                                {"type": "assign_owner", "owner_id": "bob"},
                                                {"type": ""}]}, {stage})
    assert {p.field for p in problems} == {"name", "trigger.stageId", "trigger.idleHours", "actions[0].setField.field",
                                           "actions[1].webhook.url", "actions[2].assignOwner.ownerId", "actions[3]"}


@pytest.mark.parametrize("address", ["169.254.169.254", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1",
                                     "0.0.0.0", "224.0.0.1", "fd00:ec2::254", "fe80::1", "::ffff:10.0.0.1",
                                     "::ffff:169.254.169.254", "100.100.100.200"])
def test_private_link_local_and_metadata_addresses_are_refused(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert webhooks.forbidden_reason(ip, allow_loopback=True) is not None


def test_loopback_only_with_the_allowance() -> None:
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        ip = ipaddress.ip_address(address)
        assert "loopback" in (webhooks.forbidden_reason(ip, allow_loopback=False) or "")
        assert webhooks.forbidden_reason(ip, allow_loopback=True) is None
    assert webhooks.forbidden_reason(ipaddress.ip_address("93.184.216.34"), allow_loopback=False) is None


async def test_vet_resolves_names_before_judging() -> None:
    with pytest.raises(webhooks.WebhookRefused, match="loopback"):
        await webhooks.vet("http://localhost:9/hook", allow_loopback=False)
    with pytest.raises(webhooks.WebhookRefused, match="metadata"):
        await webhooks.vet("http://169.254.169.254/latest/meta-data/", allow_loopback=True)
    target = await webhooks.vet("http://127.0.0.1:9/hook", allow_loopback=True)
    assert str(target.address) == "127.0.0.1" and target.port == 9


def test_loopback_allowance_is_refused_in_production(tmp_path: object) -> None:
    from services.kernel.errors import ConfigurationError

    base = {"CRM_DATABASE_URL": "postgresql://app@db/crm", "CRM_JWKS_FILE": "/dev/null",
            "CRM_PUBLIC_URL": "https://crm.example.com"}
    prod = Settings.from_env({**base, "CRM_ENV": "production"})
    with pytest.raises(ConfigurationError):
        automation_settings(prod, {"CRM_AUTOMATION_ALLOW_LOOPBACK_WEBHOOKS": "true"})
    dev = Settings.from_env(base)
    assert automation_settings(dev, {"CRM_AUTOMATION_ALLOW_LOOPBACK_WEBHOOKS": "1"}).allow_loopback_webhooks
    assert not automation_settings(dev, {}).allow_loopback_webhooks
