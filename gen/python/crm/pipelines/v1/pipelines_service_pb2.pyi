from crm.common.v1 import annotations_pb2 as _annotations_pb2
from crm.common.v1 import common_pb2 as _common_pb2
from crm.pipelines.v1 import pipeline_pb2 as _pipeline_pb2
from google.api import annotations_pb2 as _annotations_pb2_1
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreatePipelineRequest(_message.Message):
    __slots__ = ("pipeline",)
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    pipeline: _pipeline_pb2.Pipeline
    def __init__(self, pipeline: _Optional[_Union[_pipeline_pb2.Pipeline, _Mapping]] = ...) -> None: ...

class GetPipelineRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdatePipelineRequest(_message.Message):
    __slots__ = ("id", "pipeline")
    ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    id: str
    pipeline: _pipeline_pb2.Pipeline
    def __init__(self, id: _Optional[str] = ..., pipeline: _Optional[_Union[_pipeline_pb2.Pipeline, _Mapping]] = ...) -> None: ...

class DeletePipelineRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListPipelinesRequest(_message.Message):
    __slots__ = ("page", "limit", "sort", "search", "page_token")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page: int
    limit: int
    sort: str
    search: str
    page_token: str
    def __init__(self, page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ..., search: _Optional[str] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPipelinesResponse(_message.Message):
    __slots__ = ("pipelines", "pagination")
    PIPELINES_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    pipelines: _containers.RepeatedCompositeFieldContainer[_pipeline_pb2.Pipeline]
    pagination: _common_pb2.PageInfo
    def __init__(self, pipelines: _Optional[_Iterable[_Union[_pipeline_pb2.Pipeline, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateStageRequest(_message.Message):
    __slots__ = ("id", "stage")
    ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    stage: _pipeline_pb2.Stage
    def __init__(self, id: _Optional[str] = ..., stage: _Optional[_Union[_pipeline_pb2.Stage, _Mapping]] = ...) -> None: ...

class UpdateStageRequest(_message.Message):
    __slots__ = ("id", "stage_id", "stage")
    ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    stage_id: str
    stage: _pipeline_pb2.Stage
    def __init__(self, id: _Optional[str] = ..., stage_id: _Optional[str] = ..., stage: _Optional[_Union[_pipeline_pb2.Stage, _Mapping]] = ...) -> None: ...

class DeleteStageRequest(_message.Message):
    __slots__ = ("id", "stage_id", "move_deals_to")
    ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MOVE_DEALS_TO_FIELD_NUMBER: _ClassVar[int]
    id: str
    stage_id: str
    move_deals_to: str
    def __init__(self, id: _Optional[str] = ..., stage_id: _Optional[str] = ..., move_deals_to: _Optional[str] = ...) -> None: ...

class DeleteStageResponse(_message.Message):
    __slots__ = ("moved_deals", "pipeline")
    MOVED_DEALS_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    moved_deals: int
    pipeline: _pipeline_pb2.Pipeline
    def __init__(self, moved_deals: _Optional[int] = ..., pipeline: _Optional[_Union[_pipeline_pb2.Pipeline, _Mapping]] = ...) -> None: ...

class ReorderStagesRequest(_message.Message):
    __slots__ = ("id", "stage_ids")
    ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    stage_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., stage_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateAutomationRuleRequest(_message.Message):
    __slots__ = ("id", "rule")
    ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    id: str
    rule: _pipeline_pb2.AutomationRule
    def __init__(self, id: _Optional[str] = ..., rule: _Optional[_Union[_pipeline_pb2.AutomationRule, _Mapping]] = ...) -> None: ...

class ListAutomationRulesRequest(_message.Message):
    __slots__ = ("id", "page", "limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAutomationRulesResponse(_message.Message):
    __slots__ = ("rules", "pagination")
    RULES_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[_pipeline_pb2.AutomationRule]
    pagination: _common_pb2.PageInfo
    def __init__(self, rules: _Optional[_Iterable[_Union[_pipeline_pb2.AutomationRule, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class UpdateAutomationRuleRequest(_message.Message):
    __slots__ = ("id", "rule_id", "rule")
    ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    id: str
    rule_id: str
    rule: _pipeline_pb2.AutomationRule
    def __init__(self, id: _Optional[str] = ..., rule_id: _Optional[str] = ..., rule: _Optional[_Union[_pipeline_pb2.AutomationRule, _Mapping]] = ...) -> None: ...

class DeleteAutomationRuleRequest(_message.Message):
    __slots__ = ("id", "rule_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    rule_id: str
    def __init__(self, id: _Optional[str] = ..., rule_id: _Optional[str] = ...) -> None: ...

class TestAutomationRuleRequest(_message.Message):
    __slots__ = ("id", "rule_id", "deal_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    DEAL_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    rule_id: str
    deal_id: str
    def __init__(self, id: _Optional[str] = ..., rule_id: _Optional[str] = ..., deal_id: _Optional[str] = ...) -> None: ...

class TestAutomationRuleResponse(_message.Message):
    __slots__ = ("matched", "reason", "outcomes", "dry_run")
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    matched: bool
    reason: str
    outcomes: _containers.RepeatedCompositeFieldContainer[_pipeline_pb2.ActionOutcome]
    dry_run: bool
    def __init__(self, matched: _Optional[bool] = ..., reason: _Optional[str] = ..., outcomes: _Optional[_Iterable[_Union[_pipeline_pb2.ActionOutcome, _Mapping]]] = ..., dry_run: _Optional[bool] = ...) -> None: ...
