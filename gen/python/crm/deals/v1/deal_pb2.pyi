import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Deal(_message.Message):
    __slots__ = ("id", "name", "amount", "currency", "pipeline_id", "stage_id", "account_id", "contact_id", "expected_close_date", "status", "owner_id", "created_at", "updated_at", "forecast_category", "lost_reason", "description", "closed_at", "stage_entered_at", "created_by", "custom_fields")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CLOSE_DATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FORECAST_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    LOST_REASON_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    STAGE_ENTERED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    amount: str
    currency: str
    pipeline_id: str
    stage_id: str
    account_id: str
    contact_id: str
    expected_close_date: str
    status: str
    owner_id: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    forecast_category: str
    lost_reason: str
    description: str
    closed_at: _timestamp_pb2.Timestamp
    stage_entered_at: _timestamp_pb2.Timestamp
    created_by: str
    custom_fields: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., amount: _Optional[str] = ..., currency: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., stage_id: _Optional[str] = ..., account_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., expected_close_date: _Optional[str] = ..., status: _Optional[str] = ..., owner_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., forecast_category: _Optional[str] = ..., lost_reason: _Optional[str] = ..., description: _Optional[str] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stage_entered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., custom_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DealStageChange(_message.Message):
    __slots__ = ("id", "deal_id", "pipeline_id", "from_stage_id", "from_stage_name", "to_stage_id", "to_stage_name", "from_status", "to_status", "changed_by", "changed_at", "time_in_stage_seconds", "from_pipeline_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEAL_ID_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_STAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FROM_PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    deal_id: str
    pipeline_id: str
    from_stage_id: str
    from_stage_name: str
    to_stage_id: str
    to_stage_name: str
    from_status: str
    to_status: str
    changed_by: str
    changed_at: _timestamp_pb2.Timestamp
    time_in_stage_seconds: int
    from_pipeline_id: str
    def __init__(self, id: _Optional[str] = ..., deal_id: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., from_stage_id: _Optional[str] = ..., from_stage_name: _Optional[str] = ..., to_stage_id: _Optional[str] = ..., to_stage_name: _Optional[str] = ..., from_status: _Optional[str] = ..., to_status: _Optional[str] = ..., changed_by: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_in_stage_seconds: _Optional[int] = ..., from_pipeline_id: _Optional[str] = ...) -> None: ...
