"""Reading every record of a type from the service that owns it, over gRPC (for reindexing).

Each owning service offers `List<Name>s` with a keyset `page_token` and answers
`{<names>: [...], pagination: {nextPageToken}}` (the contracts' convention). The messages are
found by name in the generated contract, so a type whose service is not part of this build or
not deployed is reported as skipped instead of failing the reindex.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from services.kernel.clients import ServiceClients
from services.kernel.errors import Unavailable
from services.search.records import RecordType

SEARCH_SERVICE = "crm.search.v1.SearchService"
PAGE_SIZE = 100
CALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Source:
    rtype: RecordType
    request: type[Message]
    response: type[Message]


def resolve(rtype: RecordType, clients: ServiceClients) -> Source | str:
    """The list rpc of a type's service, or why it cannot be read (the type is then skipped)."""
    try:
        module = importlib.import_module(rtype.contract_module)
    except ImportError:
        return f"{rtype.service} service: its contract is not part of this build"
    service = module.DESCRIPTOR.services_by_name.get(rtype.grpc_service.rsplit(".", 1)[1])
    method = service.methods_by_name.get(rtype.list_method) if service is not None else None
    if method is None:
        return f"{rtype.service} service: no {rtype.list_method} rpc in its contract"
    if not clients.deployed(rtype.grpc_service):
        return f"{rtype.service} service is not deployed"
    return Source(rtype, message_factory.GetMessageClass(method.input_type),
                  message_factory.GetMessageClass(method.output_type))


async def pages(source: Source, clients: ServiceClients, tenant_id: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every record of the tenant, a page at a time, as JSON dicts with the API's field names."""
    rtype = source.rtype
    call = clients.stub(rtype.grpc_service, lambda channel: channel.unary_unary(
        f"/{rtype.grpc_service}/{rtype.list_method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=source.response.FromString,
    ))
    token = ""
    while True:
        # Generic messages found by name: their fields are set by name (no static type knows them).
        request: Any = source.request()
        request.limit, request.page_token = PAGE_SIZE, token
        # A fresh short-lived token per page: a long reindex outlives one.
        metadata = clients.as_service(SEARCH_SERVICE, tenant_id, [rtype.read_permission])
        try:
            answer = await call(request, metadata=metadata, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"{rtype.service} service failed while listing: {exc.code().name} {exc.details()}",
                              reason="SOURCE_FAILED") from None
        yield [json_format.MessageToDict(m) for m in getattr(answer, rtype.list_field)]
        token = answer.pagination.next_page_token
        if not token:
            return
