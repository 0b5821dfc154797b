"""The config generator on its own: what it reads from the descriptors and what it renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from crm.common.v1 import annotations_pb2 as crm_annotations
from edge_harness import DESCRIPTOR, ENVOY, Signer, write_jwks
from google.api import annotations_pb2 as http_annotations
from google.protobuf import descriptor_pb2

from edge import envoy_config

GOLDEN = Path(__file__).parent / "golden" / "envoy.yaml"
GOLDEN_ARGS: dict[str, Any] = {
    "listen": "0.0.0.0:8080",
    "upstreams": {"crm.auth.v1.AuthService": "127.0.0.1:50052"},
    "default_upstream": "127.0.0.1:50051",
    "jwks_file": "secrets/jwks.json",
    "admin_port": 9901,
    "transcoder_path": "envoy/transcoder.binpb",
}


def _filters(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return list(hcm["http_filters"])


def _filter(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f["typed_config"] for f in _filters(cfg) if f["name"] == name)


def _routes(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return list(hcm["route_config"]["virtual_hosts"][0]["routes"])


@pytest.fixture(scope="module")
def cfg() -> dict[str, Any]:
    return envoy_config.build(DESCRIPTOR, jwks_file="jwks.json")


def test_reads_rpcs_and_their_policy_from_the_descriptors() -> None:
    services = envoy_config.load_rpcs(DESCRIPTOR)
    assert {"crm.contacts.v1.ContactsService", "crm.auth.v1.AuthService"} <= set(services)
    rpcs = {r.grpc_path: r for rs in services.values() for r in rs}
    public = {p for p, r in rpcs.items() if r.public}
    assert public == {
        "/crm.auth.v1.AuthService/Register",
        "/crm.auth.v1.AuthService/Login",
        "/crm.auth.v1.AuthService/RefreshToken",
        "/crm.auth.v1.AuthService/GetJwks",
        "/crm.auth.v1.AuthService/Token",
        "/crm.auth.v1.AuthService/RevokeToken",
        "/crm.auth.v1.AuthService/RequestPasswordReset",
        "/crm.auth.v1.AuthService/ConfirmPasswordReset",
        "/crm.auth.v1.AuthService/VerifyEmail",
        "/crm.auth.v1.AuthService/VerifyMfa",
        "/crm.leads.v1.LeadsService/CaptureWebForm",
    }
    # A raw form body on a public rpc is no upload: unauthenticated callers keep the 1 MiB limit.
    assert not rpcs["/crm.auth.v1.AuthService/Token"].upload
    export = rpcs["/crm.contacts.v1.ContactsService/ExportContacts"]
    assert export.server_streaming and export.raw_output
    assert rpcs["/crm.contacts.v1.ContactsService/ImportContacts"].upload
    assert [r.name for r in services["crm.contacts.v1.ContactsService"] if r.upload] == ["ImportContacts"]
    listing = rpcs["/crm.contacts.v1.ContactsService/ListContacts"]
    assert (listing.response_body, listing.pagination) == ("contacts", "pagination")
    assert rpcs["/crm.contacts.v1.ContactsService/CreateContact"].success_status == 201
    jwks = rpcs["/crm.auth.v1.AuthService/GetJwks"]
    assert [b.path for b in jwks.bindings] == ["/v1/auth/jwks", "/.well-known/jwks.json"]
    bulk = {p for p, r in rpcs.items() if r.rate_class == "bulk"}
    assert bulk == {
        f"/crm.contacts.v1.ContactsService/{name}"
        for name in ("BulkUpsertContacts", "BulkDeleteContacts", "ImportContacts", "ExportContacts", "DeduplicateContacts")
    } | {f"/crm.leads.v1.LeadsService/{name}" for name in ("BulkQualifyLeads", "BulkConvertLeads")}
    assert {r.rate_class for p, r in rpcs.items() if p not in bulk} == {"standard"}


def test_an_unknown_rate_class_is_refused(tmp_path: Path) -> None:
    fds = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    method = next(m for f in fds.file for s in f.service if s.name == "ContactsService" for m in s.method)
    method.options.Extensions[crm_annotations.policy].rate_class = "huge"
    (tmp_path / "d.binpb").write_bytes(fds.SerializeToString())
    with pytest.raises(ValueError, match=f"ContactsService/{method.name}: rate_class 'huge'"):
        envoy_config.load_rpcs(tmp_path / "d.binpb")


def test_filter_order_puts_the_envelope_first_and_jwt_after_the_transcoder(cfg: dict[str, Any]) -> None:
    names = [f["name"] for f in _filters(cfg)]
    assert names == [
        "envoy.filters.http.lua",
        "envoy.filters.http.health_check",
        "envoy.filters.http.buffer",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.ratelimit",  # after jwt_authn: it keys on verified claims
        "envoy.filters.http.router",
    ]


def test_transcoder_options(cfg: dict[str, Any]) -> None:
    t = _filter(cfg, "envoy.filters.http.grpc_json_transcoder")
    assert t["print_options"] == {"always_print_primitive_fields": True}
    assert t["auto_mapping"] is False
    assert t["request_validation_options"]["reject_unknown_method"] is True
    assert t["request_validation_options"]["reject_unknown_query_parameters"] is True
    assert t["services"] == list(envoy_config.load_rpcs(DESCRIPTOR))


def test_jwt_rules_list_public_rpcs_then_fail_closed(cfg: dict[str, Any]) -> None:
    jwt_cfg = _filter(cfg, "envoy.filters.http.jwt_authn")
    provider = jwt_cfg["providers"]["crm"]
    assert provider["issuer"] == "crm-auth" and provider["audiences"] == ["crm-api"]
    assert provider["forward"] is True
    assert provider["local_jwks"] == {"filename": "jwks.json"}
    assert provider["claim_to_headers"] == [
        {"header_name": "x-jwt-tenant-id", "claim_name": "tid"},
        {"header_name": "x-jwt-user-id", "claim_name": "sub"},
        {"header_name": "x-jwt-tier", "claim_name": "tier"},
    ]
    rules = jwt_cfg["rules"]
    assert rules[-1] == {"match": {"prefix": "/"}, "requires": {"provider_name": "crm"}}
    assert all("requires" not in r and set(r["match"]) == {"path"} for r in rules[:-1])
    assert {r["match"]["path"] for r in rules[:-1]} == {
        "/crm.auth.v1.AuthService/Register",
        "/crm.auth.v1.AuthService/Login",
        "/crm.auth.v1.AuthService/RefreshToken",
        "/crm.auth.v1.AuthService/GetJwks",
        "/crm.auth.v1.AuthService/Token",
        "/crm.auth.v1.AuthService/RevokeToken",
        "/crm.auth.v1.AuthService/RequestPasswordReset",
        "/crm.auth.v1.AuthService/ConfirmPasswordReset",
        "/crm.auth.v1.AuthService/VerifyEmail",
        "/crm.auth.v1.AuthService/VerifyMfa",
        "/crm.leads.v1.LeadsService/CaptureWebForm",
    }


def test_without_a_jwks_file_protected_calls_fail_closed() -> None:
    provider = _filter(envoy_config.build(DESCRIPTOR), "envoy.filters.http.jwt_authn")["providers"]["crm"]
    assert "inline_string" in provider["local_jwks"]


def test_routes_per_service_with_special_rpcs_first(cfg: dict[str, Any]) -> None:
    routes = _routes(cfg)
    by_name = {r["name"]: r for r in routes}
    upload = by_name["upload POST /v1/contacts/import"]
    assert upload["typed_per_filter_config"]["envoy.filters.http.buffer"]["buffer"]["max_request_bytes"] == 64 * 1024 * 1024
    export = by_name["/crm.contacts.v1.ContactsService/ExportContacts"]
    assert export["route"]["timeout"] == "0s"
    assert export["metadata"]["filter_metadata"]["envoy.filters.http.lua"] == {"raw": True}
    create = by_name["/crm.contacts.v1.ContactsService/CreateContact"]
    assert create["metadata"]["filter_metadata"]["envoy.filters.http.lua"] == {"success_status": 201}
    prefix = by_name["/crm.contacts.v1.ContactsService/"]
    assert prefix["route"]["cluster"] == "crm.contacts.v1.ContactsService"
    assert routes.index(export) < routes.index(prefix)


def test_global_rate_limit_filter_fails_open_and_sends_headers(cfg: dict[str, Any]) -> None:
    rl = _filter(cfg, "envoy.filters.http.ratelimit")
    assert rl["domain"] == "crm"
    assert rl["failure_mode_deny"] is False
    assert rl["enable_x_ratelimit_headers"] == "DRAFT_VERSION_03"
    assert rl["rate_limited_as_resource_exhausted"] is True
    assert rl["rate_limit_service"] == {
        "grpc_service": {"envoy_grpc": {"cluster_name": "crm.edge.ratelimit"}}, "transport_api_version": "V3"
    }
    clusters = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    endpoint = clusters["crm.edge.ratelimit"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 8081}}
    # Not a readiness condition: the edge serves (fails open) while the service is away.
    health = _filter(cfg, "envoy.filters.http.health_check")
    assert "crm.edge.ratelimit" not in health["cluster_min_healthy_percentages"]


def test_every_rpc_route_counts_against_its_class(cfg: dict[str, Any]) -> None:
    user_actions: list[dict[str, Any]] = [
        {"request_headers": {"header_name": "x-jwt-tier", "descriptor_key": "tier", "skip_if_absent": True}},
        {"request_headers": {"header_name": "x-jwt-user-id", "descriptor_key": "user"}},
    ]

    def actions(rate_class: str, *rest: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"actions": [{"generic_key": {"descriptor_key": "class", "descriptor_value": rate_class}}, *rest]}]

    rpcs = {r.grpc_path: r for rs in envoy_config.load_rpcs(DESCRIPTOR).values() for r in rs}
    grpc_routes = [r for r in _routes(cfg) if "route" in r]
    assert grpc_routes and all("rate_limits" in r["route"] for r in grpc_routes)
    by_path = {r["match"].get("path", r["match"].get("prefix")): r["route"]["rate_limits"] for r in grpc_routes}
    for path, rpc in rpcs.items():
        limits = by_path.get(path, by_path[f"/{rpc.service}/"])  # plain rpcs share their service's route
        if rpc.public:
            assert limits == actions("standard", {"remote_address": {}}), path
        else:
            assert limits == actions(rpc.rate_class, *user_actions), path
    assert by_path["/crm.contacts.v1.ContactsService/BulkDeleteContacts"] == actions("bulk", *user_actions)
    assert by_path["/crm.auth.v1.AuthService/Login"] == actions("standard", {"remote_address": {}})


def test_without_a_rate_limit_service_there_are_no_global_limits() -> None:
    cfg = envoy_config.build(DESCRIPTOR, rate_limit_service=None)
    assert "envoy.filters.http.ratelimit" not in [f["name"] for f in _filters(cfg)]
    assert not [r for r in _routes(cfg) if "rate_limits" in r.get("route", {})]
    assert "crm.edge.ratelimit" not in {c["name"] for c in cfg["static_resources"]["clusters"]}
    claims = _filter(cfg, "envoy.filters.http.jwt_authn")["providers"]["crm"]["claim_to_headers"]
    assert claims == [{"header_name": "x-jwt-tenant-id", "claim_name": "tid"}]


def test_clusters_are_http2_with_grpc_health_checks() -> None:
    cfg = envoy_config.build(
        DESCRIPTOR,
        upstreams={"crm.auth.v1.AuthService": "auth.internal:50052,auth2.internal:50052"},
        default_upstream="unix:/run/crm/contacts.sock",
    )
    clusters = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    auth, contacts = clusters["crm.auth.v1.AuthService"], clusters["crm.contacts.v1.ContactsService"]
    for c in (auth, contacts):
        opts = c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in opts["explicit_http_config"]
        assert c["health_checks"][0]["grpc_health_check"] == {"service_name": ""}
        assert c["circuit_breakers"]["thresholds"][0]["max_requests"] > 0
    assert auth["type"] == "STRICT_DNS"
    assert len(auth["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 2
    assert contacts["type"] == "STATIC"
    assert contacts["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "pipe": {"path": "/run/crm/contacts.sock"}
    }


def test_unknown_upstream_service_is_an_error() -> None:
    with pytest.raises(ValueError, match="crm.nope.v1.Nope"):
        envoy_config.build(DESCRIPTOR, upstreams={"crm.nope.v1.Nope": "127.0.0.1:1"})


@pytest.mark.parametrize(
    ("template", "matches", "misses"),
    [
        ("/v1/contacts/import", ["/v1/contacts/import"], ["/v1/contacts/importx", "/v1/contacts/import/1"]),
        ("/v1/contacts/{id}/avatar", ["/v1/contacts/abc/avatar"], ["/v1/contacts/a/b/avatar", "/v1/contacts//avatar"]),
        ("/v1/files/{path=**}", ["/v1/files/a/b/c"], ["/v1/files/"]),
        ("/v1/jobs/{id}:cancel", ["/v1/jobs/7:cancel"], ["/v1/jobs/7", "/v1/jobs/7xcancel"]),
    ],
)
def test_template_regex(template: str, matches: list[str], misses: list[str]) -> None:
    rx = re.compile(envoy_config.template_regex(template))
    assert all(rx.match(p) for p in matches)
    assert not any(rx.match(p) for p in misses)


def test_transcoder_descriptor_drops_response_body_and_comments() -> None:
    fds = descriptor_pb2.FileDescriptorSet.FromString(envoy_config.transcoder_descriptor(DESCRIPTOR))
    assert not any(f.HasField("source_code_info") for f in fds.file)
    for f in fds.file:
        for svc in f.service:
            for m in svc.method:
                rule = m.options.Extensions[http_annotations.http]
                if m.output_type != ".google.api.HttpBody":
                    assert rule.response_body == "", m.name
    # Still every file the transcoder needs (the rpcs and their imports).
    assert {f.name for f in fds.file} == {
        f.name for f in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes()).file
    }


def _render_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # Relative paths, so the golden file is the same on every machine.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gen").mkdir()
    shutil.copy(DESCRIPTOR, tmp_path / "gen" / "descriptor.binpb")
    return envoy_config.render("gen/descriptor.binpb", **GOLDEN_ARGS)


def test_render_matches_the_golden_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render_golden(tmp_path, monkeypatch)
    assert text == envoy_config.render("gen/descriptor.binpb", **GOLDEN_ARGS), "render() is not deterministic"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), "no golden file: run UPDATE_GOLDEN=1 pytest tests/edge/test_edge_config.py"
    assert text == GOLDEN.read_text(), (
        "rendered config differs from tests/edge/golden/envoy.yaml; if the change is intended "
        "(new rpcs in the protos, a generator change) run UPDATE_GOLDEN=1 pytest tests/edge/test_edge_config.py "
        "and review the diff"
    )


@pytest.mark.envoy
def test_golden_config_is_accepted_by_envoy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not ENVOY.exists():
        pytest.skip(f"no Envoy at {ENVOY}")
    text = _render_golden(tmp_path, monkeypatch)
    (tmp_path / "secrets").mkdir()
    write_jwks(tmp_path / "secrets" / "jwks.json", Signer.new())
    (tmp_path / "envoy.yaml").write_text(text)
    out = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", "envoy.yaml", "--disable-hot-restart"],
        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_cli_writes_config_and_transcoder_descriptor(tmp_path: Path) -> None:
    out = tmp_path / "envoy" / "envoy.yaml"
    assert envoy_config.main([
        "--descriptor", str(DESCRIPTOR), "--out", str(out), "--listen", "127.0.0.1:18080",
        "--upstream", "crm.auth.v1.AuthService=127.0.0.1:50052", "--jwks-file", "jwks.json", "--admin-port", "19901",
    ]) == 0
    cfg = yaml.safe_load(out.read_text())
    assert cfg["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 19901}
    assert _filter(cfg, "envoy.filters.http.grpc_json_transcoder")["proto_descriptor"] == str(
        tmp_path / "envoy" / "transcoder.binpb"
    )
    assert (tmp_path / "envoy" / "transcoder.binpb").read_bytes() == envoy_config.transcoder_descriptor(DESCRIPTOR)
    assert "crm.edge.ratelimit" in {c["name"] for c in cfg["static_resources"]["clusters"]}
    assert envoy_config.main(["--descriptor", str(DESCRIPTOR), "--out", str(out), "--rate-limit-service", "none"]) == 0
    assert "envoy.filters.http.ratelimit" not in out.read_text()
    envoy_config.main(["--descriptor", str(DESCRIPTOR), "--out", str(out), "--rate-limit-service", "rls.internal:8081"])
    clusters = {c["name"]: c for c in yaml.safe_load(out.read_text())["static_resources"]["clusters"]}
    assert clusters["crm.edge.ratelimit"]["type"] == "STRICT_DNS"
    with pytest.raises(SystemExit):
        envoy_config.main(["--descriptor", str(DESCRIPTOR), "--out", str(out), "--upstream", "nonsense"])
