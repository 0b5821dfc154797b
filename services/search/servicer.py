"""gRPC adapter of the search service: decode, call the domain, encode."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import grpc
from crm.common.v1 import common_pb2
from crm.search.v1 import search_service_pb2 as pb
from crm.search.v1 import search_service_pb2_grpc as pb_grpc
from google.protobuf import timestamp_pb2

from services.kernel import jobs, listing
from services.search import config as search_config
from services.search.domain import Hit, Results, SearchDomain, SearchInput

Ctx = grpc.aio.ServicerContext[Any, Any]


class _TypeSearch(Protocol):
    """The fields every per-type search request shares."""

    query: str
    sort: str
    page: int
    limit: int

    @property
    def filters(self) -> Any: ...


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _ts(value: dt.datetime) -> timestamp_pb2.Timestamp:
    # Integer arithmetic, exact, and several times cheaper than Timestamp.FromDatetime (a result
    # list builds one per hit). Times from the database are timezone-aware.
    delta = value - _EPOCH if value.tzinfo is not None else value - _EPOCH.replace(tzinfo=None)
    return timestamp_pb2.Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


def _maybe_ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if value is None else _ts(value)


def _result(hit: Hit) -> pb.SearchResult:
    return pb.SearchResult(type=hit.type, id=hit.id, title=hit.title, subtitle=hit.subtitle, score=hit.score,
                           owner_id=hit.owner_id, updated_at=_ts(hit.updated_at),
                           highlights=[pb.Highlight(field=f, snippet=s) for f, s in hit.highlights])


def _page_info(results: Results) -> common_pb2.PageInfo:
    if results.page is not None:
        return results.page.info()
    n = len(results.hits)
    return common_pb2.PageInfo(page=1, limit=n, total=n, has_next=False, has_prev=False)


def _response(results: Results) -> pb.SearchResponse:
    return pb.SearchResponse(results=[_result(h) for h in results.hits], pagination=_page_info(results))


def _input(request: _TypeSearch, types: list[str]) -> SearchInput:
    return SearchInput(query=request.query, types=types, conditions=listing.conditions_from_filters(request.filters),
                       page=request.page, limit=request.limit, sort=request.sort)


def _config(cfg: search_config.Config, updated_at: dt.datetime | None, job_id: str = "") -> pb.SearchConfig:
    out = pb.SearchConfig(
        types=[pb.TypeConfig(type=t, fields=[pb.FieldWeight(field=f, weight=w) for f, w in cfg.weighted(t)])
               for t in cfg.fields],
        synonyms=[pb.SynonymGroup(terms=g) for g in cfg.synonyms],
        fuzzy=cfg.fuzzy, fuzzy_threshold=cfg.fuzzy_threshold, reweigh_job_id=job_id,
    )
    if updated_at is not None:
        out.updated_at.CopyFrom(_ts(updated_at))
    return out


class SearchServicer(pb_grpc.SearchServiceServicer):
    def __init__(self, domain: SearchDomain) -> None:
        self.domain = domain

    async def _typed(self, request: _TypeSearch, record_type: str) -> pb.SearchResponse:
        return _response(await self.domain.search(_input(request, [record_type]), require_query=True))

    async def GlobalSearch(self, request: pb.GlobalSearchRequest, context: Ctx) -> pb.SearchResponse:
        return _response(await self.domain.search(_input(request, list(request.types)), require_query=True))

    async def SearchContacts(self, request: pb.SearchContactsRequest, context: Ctx) -> pb.SearchResponse:
        return await self._typed(request, "contact")

    async def SearchDeals(self, request: pb.SearchDealsRequest, context: Ctx) -> pb.SearchResponse:
        return await self._typed(request, "deal")

    async def SearchLeads(self, request: pb.SearchLeadsRequest, context: Ctx) -> pb.SearchResponse:
        return await self._typed(request, "lead")

    async def SearchAccounts(self, request: pb.SearchAccountsRequest, context: Ctx) -> pb.SearchResponse:
        return await self._typed(request, "account")

    async def SearchActivities(self, request: pb.SearchActivitiesRequest, context: Ctx) -> pb.SearchResponse:
        return await self._typed(request, "activity")

    async def AdvancedSearch(self, request: pb.AdvancedSearchRequest, context: Ctx) -> pb.SearchResponse:
        return _response(await self.domain.search(_input(request, list(request.types)), require_query=False))

    async def FacetedSearch(self, request: pb.FacetedSearchRequest, context: Ctx) -> pb.FacetedSearchResponse:
        results, facets = await self.domain.faceted(_input(request, list(request.types)), list(request.facets),
                                                    request.facet_limit)
        return pb.FacetedSearchResponse(
            results=[_result(h) for h in results.hits], pagination=_page_info(results),
            facets=[pb.Facet(field=f.field, values=[pb.FacetValue(value=v, count=n) for v, n in f.values])
                    for f in facets],
        )

    async def GetSuggestions(self, request: pb.GetSuggestionsRequest, context: Ctx) -> pb.GetSuggestionsResponse:
        found = await self.domain.suggestions(request.query, list(request.types), request.limit)
        return pb.GetSuggestionsResponse(
            query=found.query,
            suggestions=[pb.Suggestion(text=t, score=s, matches=n) for t, s, n in found.suggestions],
            terms=[pb.TermCorrection(term=t, known=k, alternatives=a) for t, k, a in found.terms],
        )

    async def Autocomplete(self, request: pb.AutocompleteRequest, context: Ctx) -> pb.SearchResponse:
        return _response(await self.domain.autocomplete(request.query, list(request.types), request.limit))

    async def GetSearchConfig(self, request: pb.GetSearchConfigRequest, context: Ctx) -> pb.SearchConfig:
        cfg, updated_at = await self.domain.get_config()
        return _config(cfg, updated_at)

    async def UpdateSearchConfig(self, request: pb.UpdateSearchConfigRequest, context: Ctx) -> pb.SearchConfig:
        c = request.config
        types = [(t.type, [(f.field, f.weight) for f in t.fields]) for t in c.types]
        cfg, updated_at, job_id = await self.domain.update_config(
            types, [list(g.terms) for g in c.synonyms], c.fuzzy if c.HasField("fuzzy") else None, c.fuzzy_threshold)
        return _config(cfg, updated_at, job_id)

    async def Reindex(self, request: pb.ReindexRequest, context: Ctx) -> common_pb2.Job:
        return jobs.to_proto(await self.domain.start_reindex(list(request.types)))

    async def GetReindexJob(self, request: pb.GetReindexJobRequest, context: Ctx) -> common_pb2.Job:
        return jobs.to_proto(await self.domain.get_job(request.job_id))

    async def GetSearchStatus(self, request: pb.GetSearchStatusRequest, context: Ctx) -> pb.SearchStatus:
        s = await self.domain.status()
        out = pb.SearchStatus(
            types=[pb.TypeStatus(type=t.type, documents=t.documents, source=t.source, deployed=t.deployed,
                                 last_indexed_at=_maybe_ts(t.last_indexed_at)) for t in s.types],
            documents=sum(t.documents for t in s.types), pending_events=s.pending_events,
            events_applied=min(s.events_applied, 2**31 - 1), skipped_types=s.skipped,
        )
        if s.last_event_at is not None:
            out.last_event_at.CopyFrom(_ts(s.last_event_at))
            out.event_lag_seconds = round(max(0.0, (dt.datetime.now(dt.UTC) - s.last_event_at).total_seconds()), 3)
        if s.last_applied_at is not None:
            out.last_indexed_at.CopyFrom(_ts(s.last_applied_at))
        if s.last_reindex is not None:
            out.last_reindex.CopyFrom(jobs.to_proto(s.last_reindex))
        return out
