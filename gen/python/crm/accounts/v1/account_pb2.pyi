import datetime

from crm.common.v1 import common_pb2 as _common_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Address(_message.Message):
    __slots__ = ("street", "city", "region", "postal_code", "country")
    STREET_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    street: str
    city: str
    region: str
    postal_code: str
    country: str
    def __init__(self, street: _Optional[str] = ..., city: _Optional[str] = ..., region: _Optional[str] = ..., postal_code: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("id", "name", "domain", "industry", "parent_id", "territory", "owner_id", "website", "phone", "description", "employee_count", "annual_revenue", "currency", "tags", "address", "custom_fields", "created_at", "updated_at", "created_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    INDUSTRY_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    WEBSITE_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EMPLOYEE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANNUAL_REVENUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    domain: str
    industry: str
    parent_id: str
    territory: str
    owner_id: str
    website: str
    phone: str
    description: str
    employee_count: int
    annual_revenue: str
    currency: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    address: Address
    custom_fields: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., domain: _Optional[str] = ..., industry: _Optional[str] = ..., parent_id: _Optional[str] = ..., territory: _Optional[str] = ..., owner_id: _Optional[str] = ..., website: _Optional[str] = ..., phone: _Optional[str] = ..., description: _Optional[str] = ..., employee_count: _Optional[int] = ..., annual_revenue: _Optional[str] = ..., currency: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., custom_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

class Territory(_message.Message):
    __slots__ = ("key", "name", "description", "account_count", "created_at", "updated_at")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    description: str
    account_count: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., account_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AccountNode(_message.Message):
    __slots__ = ("account", "depth", "children")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    account: Account
    depth: int
    children: _containers.RepeatedCompositeFieldContainer[AccountNode]
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., depth: _Optional[int] = ..., children: _Optional[_Iterable[_Union[AccountNode, _Mapping]]] = ...) -> None: ...

class AccountHierarchy(_message.Message):
    __slots__ = ("account_id", "root_id", "root", "node_count", "depth", "truncated")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ROOT_ID_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    root_id: str
    root: AccountNode
    node_count: int
    depth: int
    truncated: bool
    def __init__(self, account_id: _Optional[str] = ..., root_id: _Optional[str] = ..., root: _Optional[_Union[AccountNode, _Mapping]] = ..., node_count: _Optional[int] = ..., depth: _Optional[int] = ..., truncated: _Optional[bool] = ...) -> None: ...

class AccountParent(_message.Message):
    __slots__ = ("account_id", "parent_id", "parent")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    parent_id: str
    parent: Account
    def __init__(self, account_id: _Optional[str] = ..., parent_id: _Optional[str] = ..., parent: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class AccountTerritory(_message.Message):
    __slots__ = ("account_id", "territory", "details")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    territory: str
    details: Territory
    def __init__(self, account_id: _Optional[str] = ..., territory: _Optional[str] = ..., details: _Optional[_Union[Territory, _Mapping]] = ...) -> None: ...

class MergeStep(_message.Message):
    __slots__ = ("name", "status", "moved", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MOVED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    moved: int
    note: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., moved: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class MergeJob(_message.Message):
    __slots__ = ("job_id", "status", "progress", "counts", "errors", "failure_reason", "target_id", "source_ids", "steps", "created_at", "updated_at", "finished_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: str
    progress: int
    counts: _common_pb2.JobCounts
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.JobItemError]
    failure_reason: str
    target_id: str
    source_ids: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedCompositeFieldContainer[MergeStep]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[str] = ..., progress: _Optional[int] = ..., counts: _Optional[_Union[_common_pb2.JobCounts, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.JobItemError, _Mapping]]] = ..., failure_reason: _Optional[str] = ..., target_id: _Optional[str] = ..., source_ids: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[_Union[MergeStep, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
