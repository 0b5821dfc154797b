"""Readiness (/healthz), upstream outages and rate limiting, each on an Envoy of its own."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from edge_fakes import FakeUpstream
from edge_harness import Envoy, Signer, envelope, error, free_port

from tests.polling import until

pytestmark = pytest.mark.envoy


def _wait_status(url: str, status: int, timeout: float = 20.0) -> httpx.Response:
    return until(lambda: httpx.get(url, timeout=5), lambda r: r.status_code == status, timeout=timeout, interval=0.2)


def test_healthz_is_200_in_the_envelope_when_upstreams_are_up(client: httpx.Client) -> None:
    body = envelope(client.get("/healthz"), 200, success=True)
    assert body["data"] == {"status": "ok"}


def test_upstream_going_down_turns_healthz_and_calls_into_503(
    tmp_path: Path, jwks_file: Path, signer: Signer
) -> None:
    up = FakeUpstream().start()
    proxy = Envoy(tmp_path, up.address, jwks_file).start()
    try:
        auth = {"authorization": f"Bearer {signer.token()}"}
        envelope(httpx.get(f"{proxy.url}/v1/contacts/abc", headers=auth), 200, success=True)
        up.stop()
        resp = _wait_status(f"{proxy.url}/healthz", 503)
        error(resp, 503, "UNAVAILABLE")
        assert resp.headers["retry-after"] == "1"
        resp = httpx.get(f"{proxy.url}/v1/contacts/abc", headers=auth, timeout=10)
        err = error(resp, 503, "UNAVAILABLE")
        assert err["message"] == "Service unavailable"  # not Envoy's "upstream connect error ..."
        assert resp.headers["retry-after"] == "1"
    finally:
        proxy.stop()
        up.stop()


def test_healthz_is_503_while_an_upstream_never_came_up(tmp_path: Path, jwks_file: Path) -> None:
    proxy = Envoy(tmp_path, f"127.0.0.1:{free_port()}", jwks_file).start(wait_healthy=False)
    try:
        resp = httpx.get(f"{proxy.url}/healthz", timeout=5)
        error(resp, 503, "UNAVAILABLE")
        # Public calls fail the same way, in the envelope.
        error(httpx.post(f"{proxy.url}/v1/auth/login", json={"email": "a"}, timeout=10), 503, "UNAVAILABLE")
    finally:
        proxy.stop()


def test_local_rate_limit_answers_429_in_the_envelope(
    tmp_path: Path, upstream: FakeUpstream, jwks_file: Path, signer: Signer
) -> None:
    proxy = Envoy(tmp_path, upstream.address, jwks_file, local_rate_limit=(3, 60)).start()
    try:
        auth = {"authorization": f"Bearer {signer.token()}"}
        statuses = [httpx.get(f"{proxy.url}/v1/contacts/abc", headers=auth).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        resp = httpx.get(f"{proxy.url}/v1/contacts/abc", headers=auth)
        error(resp, 429, "RATE_LIMITED")
        assert resp.headers["retry-after"] == "60"
        # Readiness probes are answered before the limiter.
        assert httpx.get(f"{proxy.url}/healthz").status_code == 200
    finally:
        proxy.stop()


def test_admin_listens_on_loopback_only(envoy: Envoy) -> None:
    assert f"address: 127.0.0.1\n      port_value: {envoy.admin_port}" in envoy.config.read_text()
    assert httpx.get(f"http://127.0.0.1:{envoy.admin_port}/ready", timeout=5).status_code == 200


def test_one_healthy_process_per_service_is_enough(
    tmp_path: Path, upstream: FakeUpstream, jwks_file: Path, signer: Signer
) -> None:
    # Two processes for every service, one of them never up: ready, and calls still succeed
    # (health checks eject the dead one, retries cover the connect failures before that).
    proxy = Envoy(tmp_path, f"{upstream.address},127.0.0.1:{free_port()}", jwks_file).start()
    try:
        envelope(httpx.get(f"{proxy.url}/healthz"), 200, success=True)
        auth = {"authorization": f"Bearer {signer.token()}"}
        for _ in range(6):
            envelope(httpx.get(f"{proxy.url}/v1/contacts/abc", headers=auth), 200, success=True)
    finally:
        proxy.stop()
