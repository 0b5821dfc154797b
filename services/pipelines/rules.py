"""What a valid pipeline, stage and automation rule are. Pure functions: no I/O, no gRPC."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from services.kernel.errors import FieldViolation

STAGE_KINDS = ("open", "won", "lost")
MAX_STAGES = 50
MAX_ACTIONS = 10
MAX_RECIPIENTS = 50
MAX_IDLE_HOURS = 24 * 365
TRIGGER_EVENTS = ("stage_entered", "stage_left", "stage_idle")
ACTION_TYPES = ("create_task", "set_field", "assign_owner", "notify", "webhook")
# Deal fields an automation may set (API names); stage and pipeline change only by moves.
SETTABLE_FIELDS = ("name", "amount", "currency", "expectedCloseDate", "forecastCategory", "lostReason", "description")
CUSTOM_FIELD_PREFIX = "customFields."

# The stages a pipeline gets when it is created without any (and the tenant's default pipeline).
STANDARD_STAGES: tuple[dict[str, Any], ...] = (
    {"name": "Prospecting", "probability": 10, "kind": "open"},
    {"name": "Qualification", "probability": 25, "kind": "open"},
    {"name": "Proposal", "probability": 50, "kind": "open"},
    {"name": "Negotiation", "probability": 75, "kind": "open"},
    {"name": "Closed Won", "probability": 100, "kind": "won"},
    {"name": "Closed Lost", "probability": 0, "kind": "lost"},
)
DEFAULT_PIPELINE_NAME = "Sales Pipeline"


def _clean(value: Any) -> str:
    return " ".join(str(value or "").split())


def check_pipeline(values: Mapping[Any, Any]) -> tuple[dict[str, Any], list[FieldViolation]]:
    """Name and description of a pipeline."""
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []
    if "name" in values:
        name = _clean(values["name"])
        if not name:
            problems.append(FieldViolation("name", "a pipeline needs a name", "REQUIRED"))
        elif len(name) > 100:
            problems.append(FieldViolation("name", "must be at most 100 characters", "TOO_LONG"))
        out["name"] = name
    if "description" in values:
        description = str(values["description"] or "").strip()
        if len(description) > 2000:
            problems.append(FieldViolation("description", "must be at most 2000 characters", "TOO_LONG"))
        out["description"] = description
    return out, problems


def check_stage(values: Mapping[Any, Any], prefix: str = "", *, partial: bool = False) -> tuple[dict[str, Any], list[FieldViolation]]:
    """A stage's name, kind and probability. `partial` (updates) leaves absent values alone.

    `probability` and `position` are None when the client did not send them.
    """
    out: dict[str, Any] = {}
    problems: list[FieldViolation] = []
    name = _clean(values.get("name"))
    if name:
        if len(name) > 100:
            problems.append(FieldViolation(f"{prefix}name", "must be at most 100 characters", "TOO_LONG"))
        out["name"] = name
    elif not partial:
        problems.append(FieldViolation(f"{prefix}name", "a stage needs a name", "REQUIRED"))
    kind = str(values.get("kind") or "").strip().lower()
    if kind:
        if kind not in STAGE_KINDS:
            problems.append(FieldViolation(f"{prefix}kind", "must be open, won or lost"))
        out["kind"] = kind
    elif not partial:
        out["kind"] = kind = "open"
    probability = values.get("probability")
    if probability is not None:
        if not 0 <= int(probability) <= 100:
            problems.append(FieldViolation(f"{prefix}probability", "must be between 0 and 100", "OUT_OF_RANGE"))
        out["probability"] = int(probability)
    elif not partial:
        if kind == "won":
            out["probability"] = 100
        elif kind == "lost":
            out["probability"] = 0
        else:
            problems.append(FieldViolation(f"{prefix}probability", "an open stage needs a probability (0 to 100)", "REQUIRED"))
    position = values.get("position")
    if position is not None:
        if int(position) < 0:
            problems.append(FieldViolation(f"{prefix}position", "must be 0 or more", "OUT_OF_RANGE"))
        out["position"] = int(position)
    return out, problems


def check_stage_set(stages: Sequence[Mapping[Any, Any]], field: str = "stages") -> list[FieldViolation]:
    """Rules over all of a pipeline's stages: how many, unique names, at least one open stage."""
    problems: list[FieldViolation] = []
    if not stages:
        problems.append(FieldViolation(field, "a pipeline needs at least one stage", "REQUIRED"))
    if len(stages) > MAX_STAGES:
        problems.append(FieldViolation(field, f"at most {MAX_STAGES} stages", "TOO_MANY"))
    seen: set[str] = set()
    for i, stage in enumerate(stages):
        key = str(stage.get("name", "")).lower()
        if key and key in seen:
            problems.append(FieldViolation(f"{field}[{i}].name", "stage names must be unique in a pipeline", "DUPLICATE"))
        seen.add(key)
    if stages and not any(s.get("kind") == "open" for s in stages):
        problems.append(FieldViolation(field, "a pipeline needs at least one open stage", "OPEN_STAGE_REQUIRED"))
    return problems


def reorder_problems(current_ids: Sequence[str], asked: Sequence[str]) -> list[FieldViolation]:
    """`stageIds` of a reorder must be exactly the pipeline's stage ids, each once."""
    if len(asked) != len(set(asked)):
        return [FieldViolation("stageIds", "lists a stage more than once", "DUPLICATE")]
    unknown = [s for s in asked if s not in set(current_ids)]
    if unknown:
        return [FieldViolation("stageIds", f"not stages of this pipeline: {', '.join(unknown)}", "UNKNOWN_STAGE")]
    missing = [s for s in current_ids if s not in set(asked)]
    if missing:
        return [FieldViolation("stageIds", f"every stage must be listed; missing: {', '.join(missing)}", "INCOMPLETE")]
    return []


def _uuid_or_none(raw: Any) -> str | None:
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        return None


def check_webhook_url(url: str) -> str | None:
    """Why `url` cannot be a webhook target, judged from the text alone (addresses are checked
    again after DNS resolution, at every call)."""
    if not url:
        return "a webhook needs a url"
    if len(url) > 2000:
        return "must be at most 2000 characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if port == 0:
        return "has an invalid port"
    return None


def check_rule(values: Mapping[Any, Any], stage_ids: set[str]) -> tuple[dict[str, Any], list[FieldViolation]]:
    """A rule's name, trigger and actions, normalized for storage.

    Actions come as `{"type": ..., <that action's fields>}`; the trigger's stage must be one of
    `stage_ids` (the pipeline's stages).
    """
    problems: list[FieldViolation] = []

    def bad(field: str, message: str, code: str = "INVALID") -> None:
        problems.append(FieldViolation(field, message, code))

    name = _clean(values.get("name"))
    if not name:
        bad("name", "a rule needs a name", "REQUIRED")
    elif len(name) > 100:
        bad("name", "must be at most 100 characters", "TOO_LONG")
    enabled = values.get("enabled")
    trigger_in = values.get("trigger") or {}
    event = str(trigger_in.get("event") or "").strip().lower()
    trigger: dict[str, Any] = {"event": event, "stage_id": "", "idle_hours": 0}
    if event not in TRIGGER_EVENTS:
        bad("trigger.event", f"must be one of {', '.join(TRIGGER_EVENTS)}", "REQUIRED" if not event else "INVALID")
    stage = str(trigger_in.get("stage_id") or "").strip()
    if stage:
        if _uuid_or_none(stage) not in stage_ids:
            bad("trigger.stageId", "not a stage of this pipeline", "UNKNOWN_STAGE")
        trigger["stage_id"] = _uuid_or_none(stage) or stage
    elif event == "stage_idle":
        bad("trigger.stageId", "an idle trigger watches one stage", "REQUIRED")
    if event == "stage_idle":
        hours = int(trigger_in.get("idle_hours") or 0)
        if not 1 <= hours <= MAX_IDLE_HOURS:
            bad("trigger.idleHours", f"must be between 1 and {MAX_IDLE_HOURS}", "OUT_OF_RANGE")
        trigger["idle_hours"] = hours
    raw_actions = list(values.get("actions") or [])
    if not raw_actions:
        bad("actions", "a rule needs at least one action", "REQUIRED")
    if len(raw_actions) > MAX_ACTIONS:
        bad("actions", f"at most {MAX_ACTIONS} actions", "TOO_MANY")
    actions = []
    for i, raw in enumerate(raw_actions[:MAX_ACTIONS]):
        action, action_problems = _check_action(raw, f"actions[{i}]")
        problems.extend(action_problems)
        actions.append(action)
    return {"name": name, "enabled": True if enabled is None else bool(enabled), "trigger": trigger,
            "actions": actions}, problems


def _check_action(raw: Mapping[str, Any], path: str) -> tuple[dict[str, Any], list[FieldViolation]]:
    problems: list[FieldViolation] = []
    kind = raw.get("type", "")
    if kind not in ACTION_TYPES:
        return {"type": kind}, [FieldViolation(path, f"set exactly one of {', '.join(ACTION_TYPES)}", "REQUIRED")]
    out: dict[str, Any] = {"type": kind}
    if kind == "create_task":
        subject = _clean(raw.get("subject"))
        if not subject or len(subject) > 200:
            problems.append(FieldViolation(f"{path}.createTask.subject", "needs 1 to 200 characters", "REQUIRED"))
        hours = int(raw.get("due_in_hours") or 0)
        if not 0 <= hours <= MAX_IDLE_HOURS:
            problems.append(FieldViolation(f"{path}.createTask.dueInHours", "must be between 0 and 8760", "OUT_OF_RANGE"))
        assignee = str(raw.get("assignee_id") or "")
        if assignee and _uuid_or_none(assignee) is None:
            problems.append(FieldViolation(f"{path}.createTask.assigneeId", "must be a user id"))
        out.update(subject=subject, body=str(raw.get("body") or "")[:5000], due_in_hours=hours, assignee_id=assignee)
    elif kind == "set_field":
        field = str(raw.get("field") or "")
        if field not in SETTABLE_FIELDS and not (field.startswith(CUSTOM_FIELD_PREFIX) and len(field) > len(CUSTOM_FIELD_PREFIX)):
            problems.append(FieldViolation(f"{path}.setField.field",
                                           f"must be one of {', '.join(SETTABLE_FIELDS)} or customFields.<key>"))
        value = raw.get("value")
        if isinstance(value, dict | list) and not field.startswith(CUSTOM_FIELD_PREFIX):
            problems.append(FieldViolation(f"{path}.setField.value", "must be a single value for this field"))
        out.update(field=field, value=value)
    elif kind == "assign_owner":
        owner = _uuid_or_none(raw.get("owner_id"))
        if owner is None:
            problems.append(FieldViolation(f"{path}.assignOwner.ownerId", "must be a user id", "REQUIRED"))
        out.update(owner_id=owner or "")
    elif kind == "notify":
        message = str(raw.get("message") or "").strip()
        if not message or len(message) > 1000:
            problems.append(FieldViolation(f"{path}.notify.message", "needs 1 to 1000 characters", "REQUIRED"))
        recipients = [str(r) for r in raw.get("recipient_ids") or []]
        if len(recipients) > MAX_RECIPIENTS or any(_uuid_or_none(r) is None for r in recipients):
            problems.append(FieldViolation(f"{path}.notify.recipientIds", f"up to {MAX_RECIPIENTS} user ids"))
        out.update(message=message, recipient_ids=recipients)
    elif kind == "webhook":
        url = str(raw.get("url") or "").strip()
        why = check_webhook_url(url)
        if why:
            problems.append(FieldViolation(f"{path}.webhook.url", why, "REQUIRED" if not url else "INVALID_URL"))
        out.update(url=url)
    return out, problems


def trigger_matches(trigger: Mapping[Any, Any], event: str, stage_id: str) -> bool:
    """Whether a stage_entered / stage_left occurrence at `stage_id` fires `trigger`."""
    return trigger.get("event") == event and (not trigger.get("stage_id") or trigger["stage_id"] == stage_id)
