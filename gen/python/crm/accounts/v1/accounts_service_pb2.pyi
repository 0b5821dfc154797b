import datetime

from crm.accounts.v1 import account_pb2 as _account_pb2
from crm.common.v1 import annotations_pb2 as _annotations_pb2
from crm.common.v1 import common_pb2 as _common_pb2
from crm.contacts.v1 import contact_pb2 as _contact_pb2
from crm.deals.v1 import deal_pb2 as _deal_pb2
from google.api import annotations_pb2 as _annotations_pb2_1
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateAccountRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: _account_pb2.Account
    def __init__(self, account: _Optional[_Union[_account_pb2.Account, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateAccountRequest(_message.Message):
    __slots__ = ("id", "account", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    account: _account_pb2.Account
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., account: _Optional[_Union[_account_pb2.Account, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteAccountRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("page", "limit", "sort", "search", "page_token", "name", "domain", "industry", "territory", "parent_id", "owner_id", "tag", "created_after", "created_before", "updated_after")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    INDUSTRY_FIELD_NUMBER: _ClassVar[int]
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    page: int
    limit: int
    sort: str
    search: str
    page_token: str
    name: str
    domain: str
    industry: str
    territory: str
    parent_id: str
    owner_id: str
    tag: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    updated_after: _timestamp_pb2.Timestamp
    def __init__(self, page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ..., search: _Optional[str] = ..., page_token: _Optional[str] = ..., name: _Optional[str] = ..., domain: _Optional[str] = ..., industry: _Optional[str] = ..., territory: _Optional[str] = ..., parent_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., tag: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAccountsResponse(_message.Message):
    __slots__ = ("accounts", "pagination")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[_account_pb2.Account]
    pagination: _common_pb2.PageInfo
    def __init__(self, accounts: _Optional[_Iterable[_Union[_account_pb2.Account, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class GetAccountHierarchyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AddChildAccountRequest(_message.Message):
    __slots__ = ("id", "child_id", "account")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHILD_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    child_id: str
    account: _account_pb2.Account
    def __init__(self, id: _Optional[str] = ..., child_id: _Optional[str] = ..., account: _Optional[_Union[_account_pb2.Account, _Mapping]] = ...) -> None: ...

class ListChildAccountsRequest(_message.Message):
    __slots__ = ("id", "page", "limit", "sort")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    sort: str
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ...) -> None: ...

class GetParentAccountRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SetParentAccountRequest(_message.Message):
    __slots__ = ("id", "parent_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    parent_id: str
    def __init__(self, id: _Optional[str] = ..., parent_id: _Optional[str] = ...) -> None: ...

class ListAccountContactsRequest(_message.Message):
    __slots__ = ("id", "page", "limit", "sort")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    sort: str
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ...) -> None: ...

class ListAccountContactsResponse(_message.Message):
    __slots__ = ("contacts", "pagination")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[_contact_pb2.Contact]
    pagination: _common_pb2.PageInfo
    def __init__(self, contacts: _Optional[_Iterable[_Union[_contact_pb2.Contact, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class ListAccountDealsRequest(_message.Message):
    __slots__ = ("id", "page", "limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListAccountDealsResponse(_message.Message):
    __slots__ = ("deals", "pagination")
    DEALS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    deals: _containers.RepeatedCompositeFieldContainer[_deal_pb2.Deal]
    pagination: _common_pb2.PageInfo
    def __init__(self, deals: _Optional[_Iterable[_Union[_deal_pb2.Deal, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class MergeAccountsRequest(_message.Message):
    __slots__ = ("target_id", "source_ids")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    target_id: str
    source_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, target_id: _Optional[str] = ..., source_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetMergeJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetAccountTerritoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SetAccountTerritoryRequest(_message.Message):
    __slots__ = ("id", "territory")
    ID_FIELD_NUMBER: _ClassVar[int]
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    id: str
    territory: str
    def __init__(self, id: _Optional[str] = ..., territory: _Optional[str] = ...) -> None: ...

class ListTerritoriesRequest(_message.Message):
    __slots__ = ("page", "limit", "sort", "search")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    page: int
    limit: int
    sort: str
    search: str
    def __init__(self, page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ..., search: _Optional[str] = ...) -> None: ...

class ListTerritoriesResponse(_message.Message):
    __slots__ = ("territories", "pagination")
    TERRITORIES_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    territories: _containers.RepeatedCompositeFieldContainer[_account_pb2.Territory]
    pagination: _common_pb2.PageInfo
    def __init__(self, territories: _Optional[_Iterable[_Union[_account_pb2.Territory, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateTerritoryRequest(_message.Message):
    __slots__ = ("territory",)
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    territory: _account_pb2.Territory
    def __init__(self, territory: _Optional[_Union[_account_pb2.Territory, _Mapping]] = ...) -> None: ...

class GetTerritoryRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class UpdateTerritoryRequest(_message.Message):
    __slots__ = ("key", "territory")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TERRITORY_FIELD_NUMBER: _ClassVar[int]
    key: str
    territory: _account_pb2.Territory
    def __init__(self, key: _Optional[str] = ..., territory: _Optional[_Union[_account_pb2.Territory, _Mapping]] = ...) -> None: ...

class DeleteTerritoryRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...
