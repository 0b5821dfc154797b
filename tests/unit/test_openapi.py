"""The OpenAPI document describes what Envoy's transcoder and the edge envelope really expose.

Most facts are checked on the project's own descriptor set; the mapping rules that no current
service exercises yet (maps, int64, wrappers, nested path variables, custom verbs ...) are checked
on a small proto compiled here, so new services are covered before they arrive.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # edge/ without an installed package

from edge.openapi import build, main, render

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "gen" / "descriptor.binpb"
ERROR_STATUSES = ("400", "401", "403", "404", "409", "422", "429", "500", "503")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build(str(DESCRIPTOR))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def query_params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation["parameters"] if p.get("in") == "query"}


def success_schema(operation: dict[str, Any], status: str) -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema


# -- the real contracts -------------------------------------------------------------------------


def test_list_contacts_query_parameters(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts"]["get"]
    params = query_params(operation)
    assert {"page", "limit", "sort", "search", "ownerId", "createdAfter"} <= params.keys()
    assert params["page"]["schema"]["type"] == "integer"
    assert params["createdAfter"]["schema"] == {"type": "string", "format": "date-time"}
    assert "owner_id" not in params
    assert operation["operationId"] == "ContactsService_ListContacts"
    assert operation["tags"] == ["ContactsService"]
    assert operation["summary"].startswith("Lists contacts a page at a time")


def test_create_contact_answers_201_with_the_contact(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts"]["post"]
    assert "200" not in operation["responses"]
    envelope = success_schema(operation, "201")
    assert envelope["properties"]["data"] == {
        "$ref": "#/components/schemas/crm.contacts.v1.Contact"
    }
    assert envelope["properties"]["success"]["const"] is True
    assert envelope["properties"]["meta"] == {"$ref": "#/components/schemas/Meta"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/crm.contacts.v1.Contact"}
    assert operation["requestBody"]["required"] is True


def test_operations_name_their_rate_limit_class_and_429_its_headers(doc: dict[str, Any]) -> None:
    classes = {(path, method): op["x-rate-limit-class"] for path, method, op in operations(doc)}
    assert classes[("/v1/contacts/bulk", "delete")] == "bulk"
    assert classes[("/v1/contacts/import", "post")] == "bulk"
    assert classes[("/v1/contacts/export", "get")] == "bulk"
    assert classes[("/v1/contacts", "get")] == "standard"
    assert classes[("/v1/auth/login", "post")] == "standard"
    headers = doc["components"]["responses"]["TooManyRequests"]["headers"]
    assert set(headers) == {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    # A dependency down (or a service not deployed) answers 503 with Retry-After.
    assert set(doc["components"]["responses"]["ServiceUnavailable"]["headers"]) == {"Retry-After"}


def test_contact_schema_follows_the_json_mapping(doc: dict[str, Any]) -> None:
    contact = doc["components"]["schemas"]["crm.contacts.v1.Contact"]
    props = contact["properties"]
    assert "firstName" in props
    assert "first_name" not in props
    assert props["id"]["readOnly"] is True
    assert props["createdAt"] == {
        "type": "string",
        "format": "date-time",
        "readOnly": True,
        "description": "Creation time.",
    }
    assert props["tags"]["type"] == "array"
    assert props["customFields"]["type"] == "object"
    assert props["address"]["$ref"] == "#/components/schemas/crm.contacts.v1.Address"
    register = doc["components"]["schemas"]["crm.auth.v1.RegisterRequest"]
    assert register["required"] == ["email", "password", "tenantName"]


def test_relationships_list_is_an_array_with_pagination(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts/{id}/relationships"]["get"]
    data = success_schema(operation, "200")["properties"]["data"]
    assert data == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/crm.contacts.v1.Relationship"},
    }
    meta = success_schema(operation, "200")["properties"]["meta"]["$ref"].rsplit("/", 1)[-1]
    assert "pagination" in doc["components"]["schemas"][meta]["required"]
    params = {p.get("name"): p for p in operation["parameters"]}
    assert params["id"]["in"] == "path"
    assert params["id"]["required"] is True
    assert {"page", "limit", "type"} <= query_params(operation).keys()


def test_path_keeps_the_rule_variable_names(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts/{id}/relationships/{rel_id}"]["put"]
    names = [p["name"] for p in operation["parameters"] if p.get("in") == "path"]
    assert names == ["id", "rel_id"]
    assert query_params(operation) == {}


def test_update_takes_the_body_field_and_the_rest_as_query(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts/{id}"]["put"]
    assert set(query_params(operation)) == {"updateMask"}
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/crm.contacts.v1.Contact"
    }


def test_import_takes_the_raw_file_or_multipart(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts/import"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"text/csv", XLSX, "multipart/form-data"}
    multipart = content["multipart/form-data"]["schema"]
    assert multipart["properties"]["file"] == {"type": "string", "format": "binary"}
    assert set(query_params(operation)) == {"format", "skipDuplicates"}
    data = success_schema(operation, "202")["properties"]["data"]
    assert data == {"$ref": "#/components/schemas/crm.common.v1.Job"}


def test_token_endpoint_takes_its_fields_form_encoded_or_as_json(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/auth/token"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
    fields = content["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert {"grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret"} <= set(fields)
    assert "form" not in fields and query_params(operation) == {}
    assert "302" in doc["paths"]["/v1/auth/authorize"]["get"]["responses"]


def test_export_is_a_file_not_an_envelope(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts/export"]["get"]
    content = operation["responses"]["200"]["content"]
    assert set(content) == {"text/csv", XLSX}
    assert content["text/csv"]["schema"] == {"type": "string", "format": "binary"}
    assert {"format", "search", "ownerId"} <= query_params(operation).keys()
    # Errors of a download are still enveloped JSON.
    assert operation["responses"]["400"] == {"$ref": "#/components/responses/BadRequest"}


def test_jwks_is_public_json_on_both_bindings(doc: dict[str, Any]) -> None:
    for path, operation_id in (
        ("/v1/auth/jwks", "AuthService_GetJwks"),
        ("/.well-known/jwks.json", "AuthService_GetJwks_1"),
    ):
        operation = doc["paths"][path]["get"]
        assert operation["operationId"] == operation_id
        assert operation["security"] == []
        assert set(operation["responses"]["200"]["content"]) == {"application/jwk-set+json"}


def test_login_is_public(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/auth/login"]["post"]
    assert operation["security"] == []
    # Public, yet it answers 401 for wrong credentials.
    assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
    refs = [p.get("$ref", "") for p in operation["parameters"]]
    assert not any(ref.endswith("/X-Tenant-ID") for ref in refs)
    data = success_schema(operation, "200")["properties"]["data"]
    assert data == {"$ref": "#/components/schemas/crm.auth.v1.TokenResponse"}
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"


def test_delete_answers_an_empty_object(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/contacts/{id}"]["delete"]
    assert success_schema(operation, "200")["properties"]["data"] == {"type": "object"}


def test_every_operation_documents_the_errors(doc: dict[str, Any]) -> None:
    ops = list(operations(doc))
    assert len(ops) >= 26
    for _path, _method, operation in ops:
        public = operation.get("security") == []
        for status in ERROR_STATUSES:
            assert operation["responses"][status]["$ref"].startswith("#/components/responses/")
        refs = [p.get("$ref", "") for p in operation["parameters"]]
        assert ("#/components/parameters/X-Tenant-ID" in refs) is not public
        assert "#/components/parameters/X-Request-ID" in refs
    error = doc["components"]["schemas"]["ErrorEnvelope"]
    assert error["properties"]["data"] == {"type": "null"}
    assert error["properties"]["success"] == {"const": False}


def test_path_parameters_match_their_templates(doc: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(doc)]
    assert len(ids) == len(set(ids))
    for path, _method, operation in operations(doc):
        declared = [p["name"] for p in operation["parameters"] if p.get("in") == "path"]
        assert declared == re.findall(r"\{([^}]+)\}", path)


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = render(build(str(DESCRIPTOR)))
    second = render(build(str(DESCRIPTOR)))
    assert first == second
    assert first.endswith("}\n")
    assert (
        first == json.dumps(json.loads(first), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
    out = tmp_path / "openapi" / "crm.openapi.json"
    assert main(["--descriptor", str(DESCRIPTOR), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == first
    assert main(["--descriptor", str(DESCRIPTOR), "--out", str(out), "--check"]) == 0
    out.write_text("{}\n", encoding="utf-8")
    assert main(["--descriptor", str(DESCRIPTOR), "--out", str(out), "--check"]) == 1


def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    out = tmp_path / "crm.openapi.json"
    subprocess.run(
        [sys.executable, "-m", "edge.openapi", "--descriptor", str(DESCRIPTOR), "--out", str(out)],
        cwd=ROOT,
        check=True,
    )
    assert out.read_text(encoding="utf-8") == render(build(str(DESCRIPTOR)))


def test_document_passes_the_validator(doc: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    assert doc["openapi"].startswith("3.1")
    validator.validate(doc)


# -- mapping rules on a synthetic contract ------------------------------------------------------

SAMPLE_PROTO = """
syntax = "proto3";

package crm.sample.v1;

import "crm/common/v1/annotations.proto";
import "google/api/annotations.proto";
import "google/api/field_behavior.proto";
import "google/api/httpbody.proto";
import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/field_mask.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

// Things.
service ThingsService {
  // Creates a thing.
  //
  // More words.
  rpc UpdateThing(UpdateThingRequest) returns (Thing) {
    option (google.api.http) = {
      patch: "/v1/things/{thing.id=things/*}"
      body: "thing"
    };
  }
  // Archives a thing.
  rpc ArchiveThing(ArchiveThingRequest) returns (Thing) {
    option (google.api.http) = {post: "/v1/things/{id}:archive"};
    option (crm.common.v1.policy) = {success_status: 202};
  }
  // Lists things.
  rpc ListThings(ListThingsRequest) returns (Thing) {
    option (google.api.http) = {get: "/v1/things"};
  }
  // Uploads a picture.
  rpc UploadPicture(google.api.HttpBody) returns (Thing) {
    option (google.api.http) = {post: "/v1/things/picture" body: "*"};
  }
  // Downloads a picture.
  rpc DownloadPicture(ListThingsRequest) returns (google.api.HttpBody) {
    option (google.api.http) = {get: "/v1/things/picture"};
  }
  // Not on REST.
  rpc Internal(ListThingsRequest) returns (Thing);
}

// A thing.
message Thing {
  // Kinds of things.
  enum Kind {
    // Not set.
    KIND_UNSPECIFIED = 0;
    // Big.
    BIG = 1;
  }
  string id = 1 [(google.api.field_behavior) = OUTPUT_ONLY];
  string name = 2 [(google.api.field_behavior) = REQUIRED];
  int64 size = 3;
  uint32 count = 4;
  fixed64 weight = 5;
  double ratio = 6;
  float share = 7;
  bool active = 8;
  bytes blob = 9;
  Kind kind = 10;
  map<string, int32> scores = 11;
  map<string, Thing> children = 12;
  repeated Thing parts = 13;
  google.protobuf.Int32Value maybe_count = 14;
  google.protobuf.StringValue maybe_name = 15;
  google.protobuf.Duration ttl = 16;
  google.protobuf.FieldMask mask = 17;
  google.protobuf.Value anything = 18;
  google.protobuf.ListValue list = 19;
  google.protobuf.Any detail = 20;
  google.protobuf.Struct attrs = 21;
  string secret = 22 [(google.api.field_behavior) = INPUT_ONLY];
}

message UpdateThingRequest {
  Thing thing = 1 [(google.api.field_behavior) = REQUIRED];
  google.protobuf.FieldMask update_mask = 2;
}

message ArchiveThingRequest {
  string id = 1;
  string reason = 2;
}

message Window {
  google.protobuf.Timestamp start = 1;
  int32 days = 2;
  Window next = 3;
}

message ListThingsRequest {
  repeated string tags = 1;
  repeated Thing.Kind kinds = 2;
  Window window = 3;
  repeated Window windows = 4;
  map<string, string> labels = 5;
  google.protobuf.Struct attrs = 6;
  int64 min_size = 7;
  google.protobuf.BoolValue active = 8;
}
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    grpc_tools = pytest.importorskip("grpc_tools.protoc")
    from google.api import http_pb2  # type: ignore[import-untyped, unused-ignore]

    workdir = tmp_path_factory.mktemp("sample")
    source = workdir / "crm" / "sample" / "v1" / "sample.proto"
    source.parent.mkdir(parents=True)
    source.write_text(SAMPLE_PROTO, encoding="utf-8")
    descriptor = workdir / "sample.binpb"
    googleapis = Path(http_pb2.__file__).resolve().parents[2]
    well_known = resources.files("grpc_tools") / "_proto"
    status = grpc_tools.main(
        [
            "protoc",
            f"-I{workdir}",
            f"-I{ROOT / 'proto'}",
            f"-I{googleapis}",
            f"-I{well_known}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={descriptor}",
            str(source.relative_to(workdir)),
        ]
    )
    assert status == 0
    return build(str(descriptor))


def test_sample_scalar_and_well_known_types(sample: dict[str, Any]) -> None:
    props = sample["components"]["schemas"]["crm.sample.v1.Thing"]["properties"]
    assert props["size"]["type"] == "string"
    assert props["size"]["format"] == "int64"
    assert props["weight"]["type"] == "string"
    assert props["count"]["type"] == "integer"
    assert props["count"]["minimum"] == 0
    assert props["ratio"] == {"type": "number", "format": "double"}
    assert props["share"]["type"] == "number"
    assert props["share"]["format"] == "float"
    assert props["active"] == {"type": "boolean"}
    assert props["blob"] == {"type": "string", "format": "byte"}
    assert props["kind"] == {"$ref": "#/components/schemas/crm.sample.v1.Thing.Kind"}
    kind = sample["components"]["schemas"]["crm.sample.v1.Thing.Kind"]
    assert kind["type"] == "string"
    assert kind["enum"] == ["KIND_UNSPECIFIED", "BIG"]
    assert props["scores"]["additionalProperties"]["type"] == "integer"
    assert props["children"]["additionalProperties"] == {
        "$ref": "#/components/schemas/crm.sample.v1.Thing"
    }
    assert props["parts"]["items"] == {"$ref": "#/components/schemas/crm.sample.v1.Thing"}
    assert props["maybeCount"]["type"] == ["integer", "null"]
    assert props["maybeName"]["type"] == ["string", "null"]
    assert props["ttl"]["type"] == "string"
    assert props["mask"]["type"] == "string"
    assert props["anything"] == {}
    assert props["list"]["type"] == "array"
    assert "@type" in props["detail"]["properties"]
    assert props["attrs"] == {"type": "object"}
    # Not writeOnly: the transcoder prints it (empty) in answers too.
    assert "writeOnly" not in props["secret"]
    assert props["secret"]["description"].endswith("Input only: answers carry it empty.")
    assert props["id"]["readOnly"] is True
    assert sample["components"]["schemas"]["crm.sample.v1.Thing"]["required"] == ["name"]
    assert not any(name.startswith("google.") for name in sample["components"]["schemas"])


def test_sample_nested_path_variable_and_body_field(sample: dict[str, Any]) -> None:
    operation = sample["paths"]["/v1/things/{thing.id}"]["patch"]
    (path_param,) = [p for p in operation["parameters"] if p.get("in") == "path"]
    assert path_param["name"] == "thing.id"
    assert "things/*" in path_param["description"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "id" not in body["properties"]
    assert "name" in body["properties"]
    assert operation["requestBody"]["required"] is True
    assert set(query_params(operation)) == {"updateMask"}
    assert operation["summary"] == "Creates a thing."
    assert operation["description"] == "Creates a thing.\n\nMore words."


def test_sample_custom_verb_without_body(sample: dict[str, Any]) -> None:
    operation = sample["paths"]["/v1/things/{id}:archive"]["post"]
    assert "requestBody" not in operation
    assert set(query_params(operation)) == {"reason"}
    assert "202" in operation["responses"]


def test_sample_query_parameters_flatten_messages(sample: dict[str, Any]) -> None:
    params = query_params(sample["paths"]["/v1/things"]["get"])
    assert set(params) == {
        "tags",
        "kinds",
        "window.start",
        "window.days",
        "minSize",
        "active",
    }
    assert params["tags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert params["window.start"]["schema"]["format"] == "date-time"
    assert params["minSize"]["schema"]["type"] == "string"
    assert params["active"]["schema"]["type"] == ["boolean", "null"]


def test_sample_binary_bodies_and_rest_less_rpcs(sample: dict[str, Any]) -> None:
    upload = sample["paths"]["/v1/things/picture"]["post"]["requestBody"]["content"]
    assert set(upload) == {"application/octet-stream", "multipart/form-data"}
    download = sample["paths"]["/v1/things/picture"]["get"]["responses"]["200"]["content"]
    assert set(download) == {"*/*"}
    ids = {operation["operationId"] for _, _, operation in operations(sample)}
    assert "ThingsService_Internal" not in ids
    assert [tag["name"] for tag in sample["tags"]] == ["ThingsService"]


def test_sample_passes_the_validator(sample: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(sample)
