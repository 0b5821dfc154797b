import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tenant(_message.Message):
    __slots__ = ("id", "name", "plan", "status", "tier", "platform", "created_at", "updated_at", "suspended_at", "deleted_at", "status_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SUSPENDED_AT_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    plan: str
    status: str
    tier: str
    platform: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    suspended_at: _timestamp_pb2.Timestamp
    deleted_at: _timestamp_pb2.Timestamp
    status_reason: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., plan: _Optional[str] = ..., status: _Optional[str] = ..., tier: _Optional[str] = ..., platform: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., suspended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_reason: _Optional[str] = ...) -> None: ...

class Branding(_message.Message):
    __slots__ = ("logo_url", "primary_color", "accent_color", "email_footer")
    LOGO_URL_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_COLOR_FIELD_NUMBER: _ClassVar[int]
    ACCENT_COLOR_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FOOTER_FIELD_NUMBER: _ClassVar[int]
    logo_url: str
    primary_color: str
    accent_color: str
    email_footer: str
    def __init__(self, logo_url: _Optional[str] = ..., primary_color: _Optional[str] = ..., accent_color: _Optional[str] = ..., email_footer: _Optional[str] = ...) -> None: ...

class TenantConfig(_message.Message):
    __slots__ = ("name", "timezone", "locale", "currency", "date_format", "time_format", "week_start", "fiscal_year_start_month", "branding", "updated_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    DATE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TIME_FORMAT_FIELD_NUMBER: _ClassVar[int]
    WEEK_START_FIELD_NUMBER: _ClassVar[int]
    FISCAL_YEAR_START_MONTH_FIELD_NUMBER: _ClassVar[int]
    BRANDING_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    timezone: str
    locale: str
    currency: str
    date_format: str
    time_format: str
    week_start: str
    fiscal_year_start_month: int
    branding: Branding
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., timezone: _Optional[str] = ..., locale: _Optional[str] = ..., currency: _Optional[str] = ..., date_format: _Optional[str] = ..., time_format: _Optional[str] = ..., week_start: _Optional[str] = ..., fiscal_year_start_month: _Optional[int] = ..., branding: _Optional[_Union[Branding, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Feature(_message.Message):
    __slots__ = ("key", "description", "included", "enabled")
    KEY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INCLUDED_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    key: str
    description: str
    included: bool
    enabled: bool
    def __init__(self, key: _Optional[str] = ..., description: _Optional[str] = ..., included: _Optional[bool] = ..., enabled: _Optional[bool] = ...) -> None: ...

class TenantFeatures(_message.Message):
    __slots__ = ("features", "plan")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedCompositeFieldContainer[Feature]
    plan: str
    def __init__(self, features: _Optional[_Iterable[_Union[Feature, _Mapping]]] = ..., plan: _Optional[str] = ...) -> None: ...

class Limit(_message.Message):
    __slots__ = ("key", "value", "plan_maximum", "used")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PLAN_MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: int
    plan_maximum: int
    used: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ..., plan_maximum: _Optional[int] = ..., used: _Optional[int] = ...) -> None: ...

class TenantLimits(_message.Message):
    __slots__ = ("limits", "plan")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    limits: _containers.RepeatedCompositeFieldContainer[Limit]
    plan: str
    def __init__(self, limits: _Optional[_Iterable[_Union[Limit, _Mapping]]] = ..., plan: _Optional[str] = ...) -> None: ...

class UsageMetric(_message.Message):
    __slots__ = ("used", "limit", "percent")
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    used: int
    limit: int
    percent: str
    def __init__(self, used: _Optional[int] = ..., limit: _Optional[int] = ..., percent: _Optional[str] = ...) -> None: ...

class StorageUsage(_message.Message):
    __slots__ = ("used_bytes", "limit_bytes", "percent")
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    used_bytes: int
    limit_bytes: int
    percent: str
    def __init__(self, used_bytes: _Optional[int] = ..., limit_bytes: _Optional[int] = ..., percent: _Optional[str] = ...) -> None: ...

class TenantUsage(_message.Message):
    __slots__ = ("period_start", "period_end", "users", "records", "records_by_type", "storage", "api_calls", "api_calls_today")
    class RecordsByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    API_CALLS_FIELD_NUMBER: _ClassVar[int]
    API_CALLS_TODAY_FIELD_NUMBER: _ClassVar[int]
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    users: UsageMetric
    records: UsageMetric
    records_by_type: _containers.ScalarMap[str, int]
    storage: StorageUsage
    api_calls: UsageMetric
    api_calls_today: int
    def __init__(self, period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., users: _Optional[_Union[UsageMetric, _Mapping]] = ..., records: _Optional[_Union[UsageMetric, _Mapping]] = ..., records_by_type: _Optional[_Mapping[str, int]] = ..., storage: _Optional[_Union[StorageUsage, _Mapping]] = ..., api_calls: _Optional[_Union[UsageMetric, _Mapping]] = ..., api_calls_today: _Optional[int] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("line1", "line2", "city", "postal_code", "region", "country")
    LINE1_FIELD_NUMBER: _ClassVar[int]
    LINE2_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    line1: str
    line2: str
    city: str
    postal_code: str
    region: str
    country: str
    def __init__(self, line1: _Optional[str] = ..., line2: _Optional[str] = ..., city: _Optional[str] = ..., postal_code: _Optional[str] = ..., region: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("key", "name", "price_per_seat", "currency", "features", "limits", "tier")
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_SEAT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    price_per_seat: str
    currency: str
    features: _containers.RepeatedScalarFieldContainer[str]
    limits: _containers.ScalarMap[str, int]
    tier: str
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., price_per_seat: _Optional[str] = ..., currency: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., limits: _Optional[_Mapping[str, int]] = ..., tier: _Optional[str] = ...) -> None: ...

class BillingInfo(_message.Message):
    __slots__ = ("company_name", "address", "tax_id", "billing_email", "plan", "seats", "period_start", "period_end", "current_period_total", "payment_method", "complete", "available_plans")
    COMPANY_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TAX_ID_FIELD_NUMBER: _ClassVar[int]
    BILLING_EMAIL_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    SEATS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_PLANS_FIELD_NUMBER: _ClassVar[int]
    company_name: str
    address: Address
    tax_id: str
    billing_email: str
    plan: Plan
    seats: int
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    current_period_total: str
    payment_method: str
    complete: bool
    available_plans: _containers.RepeatedCompositeFieldContainer[Plan]
    def __init__(self, company_name: _Optional[str] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., tax_id: _Optional[str] = ..., billing_email: _Optional[str] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ..., seats: _Optional[int] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_period_total: _Optional[str] = ..., payment_method: _Optional[str] = ..., complete: _Optional[bool] = ..., available_plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ...) -> None: ...

class InvoiceLine(_message.Message):
    __slots__ = ("kind", "description", "quantity", "unit_price", "period_fraction", "amount", "period_start", "period_end")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FRACTION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    kind: str
    description: str
    quantity: int
    unit_price: str
    period_fraction: str
    amount: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[str] = ..., description: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[str] = ..., period_fraction: _Optional[str] = ..., amount: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("id", "number", "status", "currency", "period_start", "period_end", "lines", "subtotal", "tax", "total", "issued_at", "bill_to")
    ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    BILL_TO_FIELD_NUMBER: _ClassVar[int]
    id: str
    number: str
    status: str
    currency: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    lines: _containers.RepeatedCompositeFieldContainer[InvoiceLine]
    subtotal: str
    tax: str
    total: str
    issued_at: _timestamp_pb2.Timestamp
    bill_to: str
    def __init__(self, id: _Optional[str] = ..., number: _Optional[str] = ..., status: _Optional[str] = ..., currency: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[InvoiceLine, _Mapping]]] = ..., subtotal: _Optional[str] = ..., tax: _Optional[str] = ..., total: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bill_to: _Optional[str] = ...) -> None: ...
