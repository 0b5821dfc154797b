import datetime

from crm.activities.v1 import activity_pb2 as _activity_pb2
from crm.common.v1 import annotations_pb2 as _annotations_pb2
from crm.common.v1 import common_pb2 as _common_pb2
from crm.contacts.v1 import contact_pb2 as _contact_pb2
from crm.deals.v1 import deal_pb2 as _deal_pb2
from google.api import annotations_pb2 as _annotations_pb2_1
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateContactRequest(_message.Message):
    __slots__ = ("contact",)
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    contact: _contact_pb2.Contact
    def __init__(self, contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ...) -> None: ...

class GetContactRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateContactRequest(_message.Message):
    __slots__ = ("id", "contact", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    contact: _contact_pb2.Contact
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteContactRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListContactsRequest(_message.Message):
    __slots__ = ("page", "limit", "sort", "search", "page_token", "owner_id", "account_id", "email", "company", "lifecycle_stage", "source", "tag", "created_after", "created_before", "updated_after")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    COMPANY_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_STAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    page: int
    limit: int
    sort: str
    search: str
    page_token: str
    owner_id: str
    account_id: str
    email: str
    company: str
    lifecycle_stage: str
    source: str
    tag: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    updated_after: _timestamp_pb2.Timestamp
    def __init__(self, page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ..., search: _Optional[str] = ..., page_token: _Optional[str] = ..., owner_id: _Optional[str] = ..., account_id: _Optional[str] = ..., email: _Optional[str] = ..., company: _Optional[str] = ..., lifecycle_stage: _Optional[str] = ..., source: _Optional[str] = ..., tag: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListContactsResponse(_message.Message):
    __slots__ = ("contacts", "pagination")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[_contact_pb2.Contact]
    pagination: _common_pb2.PageInfo
    def __init__(self, contacts: _Optional[_Iterable[_Union[_contact_pb2.Contact, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class SearchContactsRequest(_message.Message):
    __slots__ = ("query", "filters", "sort", "page", "limit")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    query: str
    filters: _containers.RepeatedCompositeFieldContainer[_common_pb2.Filter]
    sort: str
    page: int
    limit: int
    def __init__(self, query: _Optional[str] = ..., filters: _Optional[_Iterable[_Union[_common_pb2.Filter, _Mapping]]] = ..., sort: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class BulkUpsertContactsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_contact_pb2.Contact]
    def __init__(self, items: _Optional[_Iterable[_Union[_contact_pb2.Contact, _Mapping]]] = ...) -> None: ...

class BulkContactResult(_message.Message):
    __slots__ = ("index", "success", "id", "created", "contact", "errors")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    index: int
    success: bool
    id: str
    created: bool
    contact: _contact_pb2.Contact
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ErrorDetail]
    def __init__(self, index: _Optional[int] = ..., success: _Optional[bool] = ..., id: _Optional[str] = ..., created: _Optional[bool] = ..., contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.ErrorDetail, _Mapping]]] = ...) -> None: ...

class BulkUpsertContactsResponse(_message.Message):
    __slots__ = ("results", "succeeded", "failed")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BulkContactResult]
    succeeded: int
    failed: int
    def __init__(self, results: _Optional[_Iterable[_Union[BulkContactResult, _Mapping]]] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class BulkDeleteContactsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BulkDeleteContactsResponse(_message.Message):
    __slots__ = ("results", "succeeded", "failed")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BulkContactResult]
    succeeded: int
    failed: int
    def __init__(self, results: _Optional[_Iterable[_Union[BulkContactResult, _Mapping]]] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class ListContactActivitiesRequest(_message.Message):
    __slots__ = ("id", "page", "limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListContactActivitiesResponse(_message.Message):
    __slots__ = ("activities", "pagination")
    ACTIVITIES_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    activities: _containers.RepeatedCompositeFieldContainer[_activity_pb2.Activity]
    pagination: _common_pb2.PageInfo
    def __init__(self, activities: _Optional[_Iterable[_Union[_activity_pb2.Activity, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class ListContactDealsRequest(_message.Message):
    __slots__ = ("id", "page", "limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListContactDealsResponse(_message.Message):
    __slots__ = ("deals", "pagination")
    DEALS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    deals: _containers.RepeatedCompositeFieldContainer[_deal_pb2.Deal]
    pagination: _common_pb2.PageInfo
    def __init__(self, deals: _Optional[_Iterable[_Union[_deal_pb2.Deal, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class ListRelationshipsRequest(_message.Message):
    __slots__ = ("id", "page", "limit", "type")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    type: str
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ..., type: _Optional[str] = ...) -> None: ...

class ListRelationshipsResponse(_message.Message):
    __slots__ = ("relationships", "pagination")
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    relationships: _containers.RepeatedCompositeFieldContainer[_contact_pb2.Relationship]
    pagination: _common_pb2.PageInfo
    def __init__(self, relationships: _Optional[_Iterable[_Union[_contact_pb2.Relationship, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CreateRelationshipRequest(_message.Message):
    __slots__ = ("id", "relationship")
    ID_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    id: str
    relationship: _contact_pb2.Relationship
    def __init__(self, id: _Optional[str] = ..., relationship: _Optional[_Union[_contact_pb2.Relationship, _Mapping]] = ...) -> None: ...

class UpdateRelationshipRequest(_message.Message):
    __slots__ = ("id", "rel_id", "relationship")
    ID_FIELD_NUMBER: _ClassVar[int]
    REL_ID_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    id: str
    rel_id: str
    relationship: _contact_pb2.Relationship
    def __init__(self, id: _Optional[str] = ..., rel_id: _Optional[str] = ..., relationship: _Optional[_Union[_contact_pb2.Relationship, _Mapping]] = ...) -> None: ...

class DeleteRelationshipRequest(_message.Message):
    __slots__ = ("id", "rel_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    REL_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    rel_id: str
    def __init__(self, id: _Optional[str] = ..., rel_id: _Optional[str] = ...) -> None: ...

class ImportContactsRequest(_message.Message):
    __slots__ = ("file", "format", "skip_duplicates")
    FILE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SKIP_DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    file: _httpbody_pb2.HttpBody
    format: str
    skip_duplicates: bool
    def __init__(self, file: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ..., format: _Optional[str] = ..., skip_duplicates: _Optional[bool] = ...) -> None: ...

class ExportContactsRequest(_message.Message):
    __slots__ = ("format", "sort", "search", "owner_id", "account_id", "lifecycle_stage", "source", "tag")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_STAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    format: str
    sort: str
    search: str
    owner_id: str
    account_id: str
    lifecycle_stage: str
    source: str
    tag: str
    def __init__(self, format: _Optional[str] = ..., sort: _Optional[str] = ..., search: _Optional[str] = ..., owner_id: _Optional[str] = ..., account_id: _Optional[str] = ..., lifecycle_stage: _Optional[str] = ..., source: _Optional[str] = ..., tag: _Optional[str] = ...) -> None: ...

class GetImportJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ValidateContactRequest(_message.Message):
    __slots__ = ("contact",)
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    contact: _contact_pb2.Contact
    def __init__(self, contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ...) -> None: ...

class ValidateContactResponse(_message.Message):
    __slots__ = ("valid", "errors", "normalized", "possible_duplicate_ids")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    POSSIBLE_DUPLICATE_IDS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ErrorDetail]
    normalized: _contact_pb2.Contact
    possible_duplicate_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.ErrorDetail, _Mapping]]] = ..., normalized: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ..., possible_duplicate_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeduplicateContactsRequest(_message.Message):
    __slots__ = ("dry_run", "match_on")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    MATCH_ON_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    match_on: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dry_run: _Optional[bool] = ..., match_on: _Optional[_Iterable[str]] = ...) -> None: ...

class DuplicateGroup(_message.Message):
    __slots__ = ("primary_id", "contact_ids", "reasons")
    PRIMARY_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_IDS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    primary_id: str
    contact_ids: _containers.RepeatedScalarFieldContainer[str]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, primary_id: _Optional[str] = ..., contact_ids: _Optional[_Iterable[str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class DeduplicateContactsResponse(_message.Message):
    __slots__ = ("groups", "merged", "merged_count")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    MERGED_FIELD_NUMBER: _ClassVar[int]
    MERGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[DuplicateGroup]
    merged: bool
    merged_count: int
    def __init__(self, groups: _Optional[_Iterable[_Union[DuplicateGroup, _Mapping]]] = ..., merged: _Optional[bool] = ..., merged_count: _Optional[int] = ...) -> None: ...

class ReassignAccountRequest(_message.Message):
    __slots__ = ("from_account_ids", "to_account_id")
    FROM_ACCOUNT_IDS_FIELD_NUMBER: _ClassVar[int]
    TO_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    from_account_ids: _containers.RepeatedScalarFieldContainer[str]
    to_account_id: str
    def __init__(self, from_account_ids: _Optional[_Iterable[str]] = ..., to_account_id: _Optional[str] = ...) -> None: ...

class ReassignAccountResponse(_message.Message):
    __slots__ = ("reassigned",)
    REASSIGNED_FIELD_NUMBER: _ClassVar[int]
    reassigned: int
    def __init__(self, reassigned: _Optional[int] = ...) -> None: ...
