import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Pipeline(_message.Message):
    __slots__ = ("id", "name", "description", "is_default", "stages", "created_by", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    is_default: bool
    stages: _containers.RepeatedCompositeFieldContainer[Stage]
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., is_default: _Optional[bool] = ..., stages: _Optional[_Iterable[_Union[Stage, _Mapping]]] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Stage(_message.Message):
    __slots__ = ("id", "name", "probability", "position", "kind", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    probability: int
    position: int
    kind: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., probability: _Optional[int] = ..., position: _Optional[int] = ..., kind: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AutomationRule(_message.Message):
    __slots__ = ("id", "pipeline_id", "name", "enabled", "trigger", "actions", "created_by", "created_at", "updated_at", "last_run")
    ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    id: str
    pipeline_id: str
    name: str
    enabled: bool
    trigger: Trigger
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    last_run: RuleRun
    def __init__(self, id: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., name: _Optional[str] = ..., enabled: _Optional[bool] = ..., trigger: _Optional[_Union[Trigger, _Mapping]] = ..., actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run: _Optional[_Union[RuleRun, _Mapping]] = ...) -> None: ...

class Trigger(_message.Message):
    __slots__ = ("event", "stage_id", "idle_hours")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    IDLE_HOURS_FIELD_NUMBER: _ClassVar[int]
    event: str
    stage_id: str
    idle_hours: int
    def __init__(self, event: _Optional[str] = ..., stage_id: _Optional[str] = ..., idle_hours: _Optional[int] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("create_task", "set_field", "assign_owner", "notify", "webhook")
    CREATE_TASK_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_OWNER_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    create_task: CreateTaskAction
    set_field: SetFieldAction
    assign_owner: AssignOwnerAction
    notify: NotifyAction
    webhook: WebhookAction
    def __init__(self, create_task: _Optional[_Union[CreateTaskAction, _Mapping]] = ..., set_field: _Optional[_Union[SetFieldAction, _Mapping]] = ..., assign_owner: _Optional[_Union[AssignOwnerAction, _Mapping]] = ..., notify: _Optional[_Union[NotifyAction, _Mapping]] = ..., webhook: _Optional[_Union[WebhookAction, _Mapping]] = ...) -> None: ...

class CreateTaskAction(_message.Message):
    __slots__ = ("subject", "body", "due_in_hours", "assignee_id")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    DUE_IN_HOURS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    subject: str
    body: str
    due_in_hours: int
    assignee_id: str
    def __init__(self, subject: _Optional[str] = ..., body: _Optional[str] = ..., due_in_hours: _Optional[int] = ..., assignee_id: _Optional[str] = ...) -> None: ...

class SetFieldAction(_message.Message):
    __slots__ = ("field", "value")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field: str
    value: _struct_pb2.Value
    def __init__(self, field: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class AssignOwnerAction(_message.Message):
    __slots__ = ("owner_id",)
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    owner_id: str
    def __init__(self, owner_id: _Optional[str] = ...) -> None: ...

class NotifyAction(_message.Message):
    __slots__ = ("message", "recipient_ids")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_IDS_FIELD_NUMBER: _ClassVar[int]
    message: str
    recipient_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, message: _Optional[str] = ..., recipient_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WebhookAction(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class RuleRun(_message.Message):
    __slots__ = ("deal_id", "event_id", "status", "outcomes", "started_at")
    DEAL_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    deal_id: str
    event_id: str
    status: str
    outcomes: _containers.RepeatedCompositeFieldContainer[ActionOutcome]
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, deal_id: _Optional[str] = ..., event_id: _Optional[str] = ..., status: _Optional[str] = ..., outcomes: _Optional[_Iterable[_Union[ActionOutcome, _Mapping]]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ActionOutcome(_message.Message):
    __slots__ = ("type", "status", "detail", "changes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    type: str
    status: str
    detail: str
    changes: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., status: _Optional[str] = ..., detail: _Optional[str] = ..., changes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
