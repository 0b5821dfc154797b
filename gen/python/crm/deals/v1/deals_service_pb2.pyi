import datetime

from crm.common.v1 import annotations_pb2 as _annotations_pb2
from crm.common.v1 import common_pb2 as _common_pb2
from crm.deals.v1 import deal_pb2 as _deal_pb2
from google.api import annotations_pb2 as _annotations_pb2_1
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateDealRequest(_message.Message):
    __slots__ = ("deal",)
    DEAL_FIELD_NUMBER: _ClassVar[int]
    deal: _deal_pb2.Deal
    def __init__(self, deal: _Optional[_Union[_deal_pb2.Deal, _Mapping]] = ...) -> None: ...

class GetDealRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateDealRequest(_message.Message):
    __slots__ = ("id", "deal", "update_mask", "validate_only")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEAL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    id: str
    deal: _deal_pb2.Deal
    update_mask: _field_mask_pb2.FieldMask
    validate_only: bool
    def __init__(self, id: _Optional[str] = ..., deal: _Optional[_Union[_deal_pb2.Deal, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class DeleteDealRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListDealsRequest(_message.Message):
    __slots__ = ("page", "limit", "sort", "search", "page_token", "pipeline_id", "stage_id", "status", "owner_id", "account_id", "contact_id", "expected_close_from", "expected_close_to", "amount_min", "amount_max", "currency", "forecast_category", "stage_entered_before", "created_after", "created_before", "stage_entered_after")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CLOSE_FROM_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CLOSE_TO_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MIN_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MAX_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FORECAST_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    STAGE_ENTERED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    STAGE_ENTERED_AFTER_FIELD_NUMBER: _ClassVar[int]
    page: int
    limit: int
    sort: str
    search: str
    page_token: str
    pipeline_id: str
    stage_id: str
    status: str
    owner_id: str
    account_id: str
    contact_id: str
    expected_close_from: str
    expected_close_to: str
    amount_min: str
    amount_max: str
    currency: str
    forecast_category: str
    stage_entered_before: _timestamp_pb2.Timestamp
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    stage_entered_after: _timestamp_pb2.Timestamp
    def __init__(self, page: _Optional[int] = ..., limit: _Optional[int] = ..., sort: _Optional[str] = ..., search: _Optional[str] = ..., page_token: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., stage_id: _Optional[str] = ..., status: _Optional[str] = ..., owner_id: _Optional[str] = ..., account_id: _Optional[str] = ..., contact_id: _Optional[str] = ..., expected_close_from: _Optional[str] = ..., expected_close_to: _Optional[str] = ..., amount_min: _Optional[str] = ..., amount_max: _Optional[str] = ..., currency: _Optional[str] = ..., forecast_category: _Optional[str] = ..., stage_entered_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stage_entered_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDealsResponse(_message.Message):
    __slots__ = ("deals", "pagination")
    DEALS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    deals: _containers.RepeatedCompositeFieldContainer[_deal_pb2.Deal]
    pagination: _common_pb2.PageInfo
    def __init__(self, deals: _Optional[_Iterable[_Union[_deal_pb2.Deal, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class MoveDealStageRequest(_message.Message):
    __slots__ = ("id", "stage_id", "lost_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    LOST_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    stage_id: str
    lost_reason: str
    def __init__(self, id: _Optional[str] = ..., stage_id: _Optional[str] = ..., lost_reason: _Optional[str] = ...) -> None: ...

class ListDealHistoryRequest(_message.Message):
    __slots__ = ("id", "page", "limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    page: int
    limit: int
    def __init__(self, id: _Optional[str] = ..., page: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListDealHistoryResponse(_message.Message):
    __slots__ = ("history", "pagination")
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    history: _containers.RepeatedCompositeFieldContainer[_deal_pb2.DealStageChange]
    pagination: _common_pb2.PageInfo
    def __init__(self, history: _Optional[_Iterable[_Union[_deal_pb2.DealStageChange, _Mapping]]] = ..., pagination: _Optional[_Union[_common_pb2.PageInfo, _Mapping]] = ...) -> None: ...

class CloneDealRequest(_message.Message):
    __slots__ = ("id", "name", "stage_id", "owner_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    stage_id: str
    owner_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., stage_id: _Optional[str] = ..., owner_id: _Optional[str] = ...) -> None: ...

class GetForecastRequest(_message.Message):
    __slots__ = ("to", "period", "pipeline_id", "owner_id", "currency")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    to: str
    period: str
    pipeline_id: str
    owner_id: str
    currency: str
    def __init__(self, to: _Optional[str] = ..., period: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., currency: _Optional[str] = ..., **kwargs) -> None: ...

class ForecastAmounts(_message.Message):
    __slots__ = ("currency", "open_deals", "pipeline", "weighted", "commit", "best_case", "won", "won_deals")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    OPEN_DEALS_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    BEST_CASE_FIELD_NUMBER: _ClassVar[int]
    WON_FIELD_NUMBER: _ClassVar[int]
    WON_DEALS_FIELD_NUMBER: _ClassVar[int]
    currency: str
    open_deals: int
    pipeline: str
    weighted: str
    commit: str
    best_case: str
    won: str
    won_deals: int
    def __init__(self, currency: _Optional[str] = ..., open_deals: _Optional[int] = ..., pipeline: _Optional[str] = ..., weighted: _Optional[str] = ..., commit: _Optional[str] = ..., best_case: _Optional[str] = ..., won: _Optional[str] = ..., won_deals: _Optional[int] = ...) -> None: ...

class ForecastPeriod(_message.Message):
    __slots__ = ("period", "start", "end", "amounts")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    period: str
    start: str
    end: str
    amounts: _containers.RepeatedCompositeFieldContainer[ForecastAmounts]
    def __init__(self, period: _Optional[str] = ..., start: _Optional[str] = ..., end: _Optional[str] = ..., amounts: _Optional[_Iterable[_Union[ForecastAmounts, _Mapping]]] = ...) -> None: ...

class Forecast(_message.Message):
    __slots__ = ("period", "to", "periods", "totals")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    period: str
    to: str
    periods: _containers.RepeatedCompositeFieldContainer[ForecastPeriod]
    totals: _containers.RepeatedCompositeFieldContainer[ForecastAmounts]
    def __init__(self, period: _Optional[str] = ..., to: _Optional[str] = ..., periods: _Optional[_Iterable[_Union[ForecastPeriod, _Mapping]]] = ..., totals: _Optional[_Iterable[_Union[ForecastAmounts, _Mapping]]] = ..., **kwargs) -> None: ...

class GetPipelineBoardRequest(_message.Message):
    __slots__ = ("pipeline_id", "limit_per_stage", "owner_id")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PER_STAGE_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    limit_per_stage: int
    owner_id: str
    def __init__(self, pipeline_id: _Optional[str] = ..., limit_per_stage: _Optional[int] = ..., owner_id: _Optional[str] = ...) -> None: ...

class MoneyTotal(_message.Message):
    __slots__ = ("currency", "amount", "count")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    currency: str
    amount: str
    count: int
    def __init__(self, currency: _Optional[str] = ..., amount: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class BoardColumn(_message.Message):
    __slots__ = ("stage_id", "name", "position", "kind", "probability", "deal_count", "totals", "deals", "has_more")
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    DEAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    DEALS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    stage_id: str
    name: str
    position: int
    kind: str
    probability: int
    deal_count: int
    totals: _containers.RepeatedCompositeFieldContainer[MoneyTotal]
    deals: _containers.RepeatedCompositeFieldContainer[_deal_pb2.Deal]
    has_more: bool
    def __init__(self, stage_id: _Optional[str] = ..., name: _Optional[str] = ..., position: _Optional[int] = ..., kind: _Optional[str] = ..., probability: _Optional[int] = ..., deal_count: _Optional[int] = ..., totals: _Optional[_Iterable[_Union[MoneyTotal, _Mapping]]] = ..., deals: _Optional[_Iterable[_Union[_deal_pb2.Deal, _Mapping]]] = ..., has_more: _Optional[bool] = ...) -> None: ...

class PipelineBoard(_message.Message):
    __slots__ = ("pipeline_id", "name", "stages", "limit_per_stage")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PER_STAGE_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    name: str
    stages: _containers.RepeatedCompositeFieldContainer[BoardColumn]
    limit_per_stage: int
    def __init__(self, pipeline_id: _Optional[str] = ..., name: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[BoardColumn, _Mapping]]] = ..., limit_per_stage: _Optional[int] = ...) -> None: ...

class BulkUpdateDealsRequest(_message.Message):
    __slots__ = ("ids", "changes")
    IDS_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    changes: _struct_pb2.Struct
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., changes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class BulkDealResult(_message.Message):
    __slots__ = ("index", "success", "id", "deal", "errors")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DEAL_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    index: int
    success: bool
    id: str
    deal: _deal_pb2.Deal
    errors: _containers.RepeatedCompositeFieldContainer[_common_pb2.ErrorDetail]
    def __init__(self, index: _Optional[int] = ..., success: _Optional[bool] = ..., id: _Optional[str] = ..., deal: _Optional[_Union[_deal_pb2.Deal, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[_common_pb2.ErrorDetail, _Mapping]]] = ...) -> None: ...

class BulkUpdateDealsResponse(_message.Message):
    __slots__ = ("results", "succeeded", "failed")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BulkDealResult]
    succeeded: int
    failed: int
    def __init__(self, results: _Optional[_Iterable[_Union[BulkDealResult, _Mapping]]] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class GetConversionAnalyticsRequest(_message.Message):
    __slots__ = ("pipeline_id", "to", "owner_id")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    to: str
    owner_id: str
    def __init__(self, pipeline_id: _Optional[str] = ..., to: _Optional[str] = ..., owner_id: _Optional[str] = ..., **kwargs) -> None: ...

class StageConversion(_message.Message):
    __slots__ = ("stage_id", "name", "position", "reached", "advanced", "conversion_rate")
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    ADVANCED_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    stage_id: str
    name: str
    position: int
    reached: int
    advanced: int
    conversion_rate: float
    def __init__(self, stage_id: _Optional[str] = ..., name: _Optional[str] = ..., position: _Optional[int] = ..., reached: _Optional[int] = ..., advanced: _Optional[int] = ..., conversion_rate: _Optional[float] = ...) -> None: ...

class ConversionAnalytics(_message.Message):
    __slots__ = ("pipeline_id", "to", "total_deals", "stages", "won", "lost", "win_rate")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DEALS_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    WON_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    to: str
    total_deals: int
    stages: _containers.RepeatedCompositeFieldContainer[StageConversion]
    won: int
    lost: int
    win_rate: float
    def __init__(self, pipeline_id: _Optional[str] = ..., to: _Optional[str] = ..., total_deals: _Optional[int] = ..., stages: _Optional[_Iterable[_Union[StageConversion, _Mapping]]] = ..., won: _Optional[int] = ..., lost: _Optional[int] = ..., win_rate: _Optional[float] = ..., **kwargs) -> None: ...

class GetVelocityAnalyticsRequest(_message.Message):
    __slots__ = ("pipeline_id", "to", "owner_id")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    to: str
    owner_id: str
    def __init__(self, pipeline_id: _Optional[str] = ..., to: _Optional[str] = ..., owner_id: _Optional[str] = ..., **kwargs) -> None: ...

class StageVelocity(_message.Message):
    __slots__ = ("stage_id", "name", "exits", "avg_hours", "median_hours")
    STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXITS_FIELD_NUMBER: _ClassVar[int]
    AVG_HOURS_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_HOURS_FIELD_NUMBER: _ClassVar[int]
    stage_id: str
    name: str
    exits: int
    avg_hours: float
    median_hours: float
    def __init__(self, stage_id: _Optional[str] = ..., name: _Optional[str] = ..., exits: _Optional[int] = ..., avg_hours: _Optional[float] = ..., median_hours: _Optional[float] = ...) -> None: ...

class CycleLength(_message.Message):
    __slots__ = ("deals", "avg_days", "median_days")
    DEALS_FIELD_NUMBER: _ClassVar[int]
    AVG_DAYS_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_DAYS_FIELD_NUMBER: _ClassVar[int]
    deals: int
    avg_days: float
    median_days: float
    def __init__(self, deals: _Optional[int] = ..., avg_days: _Optional[float] = ..., median_days: _Optional[float] = ...) -> None: ...

class VelocityAnalytics(_message.Message):
    __slots__ = ("pipeline_id", "to", "stages", "won", "lost")
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    WON_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    pipeline_id: str
    to: str
    stages: _containers.RepeatedCompositeFieldContainer[StageVelocity]
    won: CycleLength
    lost: CycleLength
    def __init__(self, pipeline_id: _Optional[str] = ..., to: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[StageVelocity, _Mapping]]] = ..., won: _Optional[_Union[CycleLength, _Mapping]] = ..., lost: _Optional[_Union[CycleLength, _Mapping]] = ..., **kwargs) -> None: ...

class GetWinLossAnalyticsRequest(_message.Message):
    __slots__ = ("to", "pipeline_id", "owner_id")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    to: str
    pipeline_id: str
    owner_id: str
    def __init__(self, to: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., **kwargs) -> None: ...

class WinLossAmounts(_message.Message):
    __slots__ = ("currency", "won_amount", "lost_amount", "avg_won_amount")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    WON_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    LOST_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AVG_WON_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    currency: str
    won_amount: str
    lost_amount: str
    avg_won_amount: str
    def __init__(self, currency: _Optional[str] = ..., won_amount: _Optional[str] = ..., lost_amount: _Optional[str] = ..., avg_won_amount: _Optional[str] = ...) -> None: ...

class LostReason(_message.Message):
    __slots__ = ("reason", "count", "amounts")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    count: int
    amounts: _containers.RepeatedCompositeFieldContainer[MoneyTotal]
    def __init__(self, reason: _Optional[str] = ..., count: _Optional[int] = ..., amounts: _Optional[_Iterable[_Union[MoneyTotal, _Mapping]]] = ...) -> None: ...

class WinLossAnalytics(_message.Message):
    __slots__ = ("to", "won", "lost", "win_rate", "amounts", "lost_reasons")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    WON_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    LOST_REASONS_FIELD_NUMBER: _ClassVar[int]
    to: str
    won: int
    lost: int
    win_rate: float
    amounts: _containers.RepeatedCompositeFieldContainer[WinLossAmounts]
    lost_reasons: _containers.RepeatedCompositeFieldContainer[LostReason]
    def __init__(self, to: _Optional[str] = ..., won: _Optional[int] = ..., lost: _Optional[int] = ..., win_rate: _Optional[float] = ..., amounts: _Optional[_Iterable[_Union[WinLossAmounts, _Mapping]]] = ..., lost_reasons: _Optional[_Iterable[_Union[LostReason, _Mapping]]] = ..., **kwargs) -> None: ...

class GetForecastAnalyticsRequest(_message.Message):
    __slots__ = ("to", "period", "pipeline_id", "owner_id")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    to: str
    period: str
    pipeline_id: str
    owner_id: str
    def __init__(self, to: _Optional[str] = ..., period: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., **kwargs) -> None: ...

class ForecastAccuracyAmounts(_message.Message):
    __slots__ = ("currency", "forecast_weighted", "forecast_commit", "forecast_best_case", "actual_won", "variance", "accuracy_percent")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FORECAST_WEIGHTED_FIELD_NUMBER: _ClassVar[int]
    FORECAST_COMMIT_FIELD_NUMBER: _ClassVar[int]
    FORECAST_BEST_CASE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_WON_FIELD_NUMBER: _ClassVar[int]
    VARIANCE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    currency: str
    forecast_weighted: str
    forecast_commit: str
    forecast_best_case: str
    actual_won: str
    variance: str
    accuracy_percent: float
    def __init__(self, currency: _Optional[str] = ..., forecast_weighted: _Optional[str] = ..., forecast_commit: _Optional[str] = ..., forecast_best_case: _Optional[str] = ..., actual_won: _Optional[str] = ..., variance: _Optional[str] = ..., accuracy_percent: _Optional[float] = ...) -> None: ...

class ForecastAccuracyPeriod(_message.Message):
    __slots__ = ("period", "start", "end", "snapshot_date", "snapshot_late", "amounts")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_DATE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_LATE_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    period: str
    start: str
    end: str
    snapshot_date: str
    snapshot_late: bool
    amounts: _containers.RepeatedCompositeFieldContainer[ForecastAccuracyAmounts]
    def __init__(self, period: _Optional[str] = ..., start: _Optional[str] = ..., end: _Optional[str] = ..., snapshot_date: _Optional[str] = ..., snapshot_late: _Optional[bool] = ..., amounts: _Optional[_Iterable[_Union[ForecastAccuracyAmounts, _Mapping]]] = ...) -> None: ...

class ForecastAnalytics(_message.Message):
    __slots__ = ("period", "to", "periods")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    period: str
    to: str
    periods: _containers.RepeatedCompositeFieldContainer[ForecastAccuracyPeriod]
    def __init__(self, period: _Optional[str] = ..., to: _Optional[str] = ..., periods: _Optional[_Iterable[_Union[ForecastAccuracyPeriod, _Mapping]]] = ..., **kwargs) -> None: ...

class GetPerformanceAnalyticsRequest(_message.Message):
    __slots__ = ("to", "pipeline_id")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_ID_FIELD_NUMBER: _ClassVar[int]
    to: str
    pipeline_id: str
    def __init__(self, to: _Optional[str] = ..., pipeline_id: _Optional[str] = ..., **kwargs) -> None: ...

class PerformanceAmounts(_message.Message):
    __slots__ = ("currency", "won_amount", "lost_amount", "open_amount")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    WON_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    LOST_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    OPEN_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    currency: str
    won_amount: str
    lost_amount: str
    open_amount: str
    def __init__(self, currency: _Optional[str] = ..., won_amount: _Optional[str] = ..., lost_amount: _Optional[str] = ..., open_amount: _Optional[str] = ...) -> None: ...

class Performance(_message.Message):
    __slots__ = ("id", "name", "member_ids", "open_deals", "won_deals", "lost_deals", "win_rate", "avg_cycle_days", "amounts")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    OPEN_DEALS_FIELD_NUMBER: _ClassVar[int]
    WON_DEALS_FIELD_NUMBER: _ClassVar[int]
    LOST_DEALS_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    AVG_CYCLE_DAYS_FIELD_NUMBER: _ClassVar[int]
    AMOUNTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    open_deals: int
    won_deals: int
    lost_deals: int
    win_rate: float
    avg_cycle_days: float
    amounts: _containers.RepeatedCompositeFieldContainer[PerformanceAmounts]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ..., open_deals: _Optional[int] = ..., won_deals: _Optional[int] = ..., lost_deals: _Optional[int] = ..., win_rate: _Optional[float] = ..., avg_cycle_days: _Optional[float] = ..., amounts: _Optional[_Iterable[_Union[PerformanceAmounts, _Mapping]]] = ...) -> None: ...

class PerformanceAnalytics(_message.Message):
    __slots__ = ("to", "owners", "teams", "teams_available", "note")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    TEAMS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    to: str
    owners: _containers.RepeatedCompositeFieldContainer[Performance]
    teams: _containers.RepeatedCompositeFieldContainer[Performance]
    teams_available: bool
    note: str
    def __init__(self, to: _Optional[str] = ..., owners: _Optional[_Iterable[_Union[Performance, _Mapping]]] = ..., teams: _Optional[_Iterable[_Union[Performance, _Mapping]]] = ..., teams_available: _Optional[bool] = ..., note: _Optional[str] = ..., **kwargs) -> None: ...

class MoveStageDealsRequest(_message.Message):
    __slots__ = ("from_stage_id", "to_stage_id")
    FROM_STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_ID_FIELD_NUMBER: _ClassVar[int]
    from_stage_id: str
    to_stage_id: str
    def __init__(self, from_stage_id: _Optional[str] = ..., to_stage_id: _Optional[str] = ...) -> None: ...

class MoveStageDealsResponse(_message.Message):
    __slots__ = ("moved",)
    MOVED_FIELD_NUMBER: _ClassVar[int]
    moved: int
    def __init__(self, moved: _Optional[int] = ...) -> None: ...

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
