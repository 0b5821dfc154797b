from crm.auth.v1 import auth_service_pb2 as _auth_service_pb2
from crm.common.v1 import annotations_pb2 as _annotations_pb2
from crm.common.v1 import common_pb2 as _common_pb2
from crm.tenants.v1 import tenant_pb2 as _tenant_pb2
from google.api import annotations_pb2 as _annotations_pb2_1
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateTenantRequest(_message.Message):
    __slots__ = ("name", "plan", "admin_email", "admin_password", "admin_first_name", "admin_last_name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ADMIN_EMAIL_FIELD_NUMBER: _ClassVar[int]
    ADMIN_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    plan: str
    admin_email: str
    admin_password: str
    admin_first_name: str
    admin_last_name: str
    def __init__(self, name: _Optional[str] = ..., plan: _Optional[str] = ..., admin_email: _Optional[str] = ..., admin_password: _Optional[str] = ..., admin_first_name: _Optional[str] = ..., admin_last_name: _Optional[str] = ...) -> None: ...

class CreateTenantResponse(_message.Message):
    __slots__ = ("tenant", "admin")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    admin: _auth_service_pb2.User
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ..., admin: _Optional[_Union[_auth_service_pb2.User, _Mapping]] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateTenantRequest(_message.Message):
    __slots__ = ("id", "tenant")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: _tenant_pb2.Tenant
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ...) -> None: ...

class DeleteTenantRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ("page", "limit", "sort", "search", "status", "plan")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    page: int
    limit: int
    sort: str
    search: str
    status: str
    plan: str
    def __init__(self, page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ..., search: _Optional[str] = ..., status: _Optional[str] = ..., plan: _Optional[str] = ...) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants", "pagination")
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[_tenant_pb2.Tenant]
    pagination: _common_pb2.PageInfo
    def __init__(self, tenants: _Optional[_Iterable[_Union[_tenant_pb2.Tenant, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class GetTenantConfigRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateTenantConfigRequest(_message.Message):
    __slots__ = ("id", "config")
    ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    id: str
    config: _tenant_pb2.TenantConfig
    def __init__(self, id: _Optional[str] = ..., config: _Optional[_Union[_tenant_pb2.TenantConfig, _Mapping]] = ...) -> None: ...

class GetTenantFeaturesRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateTenantFeaturesRequest(_message.Message):
    __slots__ = ("id", "features")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    id: str
    features: _containers.ScalarMap[str, bool]
    def __init__(self, id: _Optional[str] = ..., features: _Optional[_Mapping[str, bool]] = ...) -> None: ...

class GetTenantLimitsRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateTenantLimitsRequest(_message.Message):
    __slots__ = ("id", "limits")
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    id: str
    limits: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., limits: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetTenantUsageRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetBillingRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateBillingRequest(_message.Message):
    __slots__ = ("id", "billing")
    ID_FIELD_NUMBER: _ClassVar[int]
    BILLING_FIELD_NUMBER: _ClassVar[int]
    id: str
    billing: _tenant_pb2.BillingInfo
    def __init__(self, id: _Optional[str] = ..., billing: _Optional[_Union[_tenant_pb2.BillingInfo, _Mapping]] = ...) -> None: ...

class ListInvoicesRequest(_message.Message):
    __slots__ = ("id", "page", "limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListInvoicesResponse(_message.Message):
    __slots__ = ("invoices", "pagination")
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[_tenant_pb2.Invoice]
    pagination: _common_pb2.PageInfo
    def __init__(self, invoices: _Optional[_Iterable[_Union[_tenant_pb2.Invoice, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class UpgradePlanRequest(_message.Message):
    __slots__ = ("id", "plan")
    ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    id: str
    plan: str
    def __init__(self, id: _Optional[str] = ..., plan: _Optional[str] = ...) -> None: ...

class UpgradePlanResponse(_message.Message):
    __slots__ = ("tenant", "previous_plan", "proration", "invoice")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_PLAN_FIELD_NUMBER: _ClassVar[int]
    PRORATION_FIELD_NUMBER: _ClassVar[int]
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    tenant: _tenant_pb2.Tenant
    previous_plan: str
    proration: _tenant_pb2.InvoiceLine
    invoice: _tenant_pb2.Invoice
    def __init__(self, tenant: _Optional[_Union[_tenant_pb2.Tenant, _Mapping]] = ..., previous_plan: _Optional[str] = ..., proration: _Optional[_Union[_tenant_pb2.InvoiceLine, _Mapping]] = ..., invoice: _Optional[_Union[_tenant_pb2.Invoice, _Mapping]] = ...) -> None: ...
