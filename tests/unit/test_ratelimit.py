"""The rate-limit service's counting and decisions, without Envoy (a fake clock drives time)."""

from __future__ import annotations

import pytest

from edge.ratelimit.descriptors import budget_of, rate_class_of
from edge.ratelimit.limits import Limit, Limits
from edge.ratelimit.proto import ratelimit_pb2, rls_pb2
from edge.ratelimit.server import RateLimiter
from edge.ratelimit.windows import FixedWindows

Response = rls_pb2.RateLimitResponse


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request(*descriptors: dict[str, str], domain: str = "crm", hits: int = 0) -> rls_pb2.RateLimitRequest:
    return rls_pb2.RateLimitRequest(
        domain=domain,
        hits_addend=hits,
        descriptors=[
            ratelimit_pb2.RateLimitDescriptor(
                entries=[ratelimit_pb2.RateLimitDescriptor.Entry(key=k, value=v) for k, v in d.items()]
            )
            for d in descriptors
        ],
    )


def user(sub: str, tier: str | None = None, rate_class: str = "standard") -> dict[str, str]:
    d = {"class": rate_class}
    if tier is not None:
        d["tier"] = tier
    d["user"] = sub
    return d


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> RateLimiter:
    limits = Limits.parse("standard=3/m,premium=5/m,api_integration=7/m,bulk=2/h")
    return RateLimiter(limits, FixedWindows(clock))


def codes(limiter: RateLimiter, n: int, *descriptors: dict[str, str]) -> list[int]:
    return [limiter.decide(request(*descriptors)).overall_code for _ in range(n)]


def test_default_limits_are_the_seed_tiers() -> None:
    limits = Limits.parse()
    assert limits.for_call("standard", "standard") == Limit(1000, 3600, "standard")
    assert limits.for_call("standard", "premium") == Limit(5000, 3600, "premium")
    assert limits.for_call("standard", "api_integration") == Limit(10000, 3600, "api_integration")
    for tier in ("standard", "premium", "api_integration"):
        assert limits.for_call("bulk", tier) == Limit(100, 3600, "bulk")  # bulk ignores the tier
    assert limits.for_call("standard", "gold") == Limit(1000, 3600, "standard")  # unknown tier: standard


def test_a_partial_spec_overrides_only_what_it_names() -> None:
    limits = Limits.parse(" premium = 7/2s , bulk=5/d")
    assert limits.for_call("standard", "premium") == Limit(7, 2, "premium")
    assert limits.for_call("bulk", "standard") == Limit(5, 86400, "bulk")
    assert limits.for_call("standard", "standard") == Limit(1000, 3600, "standard")


@pytest.mark.parametrize(
    ("spec", "says"),
    [("gold=1/h", "'gold' is not a tier"), ("standard", "NAME=COUNT/WINDOW"), ("standard=10", "COUNT/[N]UNIT"),
     ("standard=0/h", "at least one call"), ("bulk=5/0s", "at least one call"), ("premium=5/w", "COUNT/[N]UNIT")],
)
def test_bad_specs_are_refused_with_the_reason(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("[", r"\[")):
        Limits.parse(spec)


def test_a_window_counts_then_refuses_then_resets(clock: Clock) -> None:
    windows, limit = FixedWindows(clock), Limit(3, 60, "standard")
    verdicts = [windows.hit("k", limit) for _ in range(3)]
    assert [(v.allowed, v.remaining) for v in verdicts] == [(True, 2), (True, 1), (True, 0)]
    clock.now += 20.5
    refused = windows.hit("k", limit)
    assert (refused.allowed, refused.remaining, refused.reset_after) == (False, 0, 40)  # 39.5 rounded up
    clock.now += 39.5  # the window (opened by the first call) has closed
    fresh = windows.hit("k", limit)
    assert (fresh.allowed, fresh.remaining, fresh.reset_after) == (True, 2, 60)


def test_refused_calls_are_not_counted(clock: Clock) -> None:
    windows, limit = FixedWindows(clock), Limit(2, 60)
    for _ in range(2):
        windows.hit("k", limit)
    for _ in range(5):
        assert not windows.hit("k", limit).allowed
    clock.now += 60
    assert [windows.hit("k", limit).allowed for _ in range(3)] == [True, True, False]


def test_keys_are_counted_apart_and_closed_windows_are_swept(clock: Clock) -> None:
    windows, limit = FixedWindows(clock), Limit(1, 10)
    assert windows.hit("a", limit).allowed and windows.hit("b", limit).allowed
    assert not windows.hit("a", limit).allowed
    clock.now += 5
    windows.hit("c", limit)
    clock.now += 5
    windows.sweep()
    assert len(windows) == 1  # a and b closed; c still open


def test_each_tier_gets_its_own_size(limiter: RateLimiter) -> None:
    assert codes(limiter, 4, user("s", "standard")) == [Response.OK] * 3 + [Response.OVER_LIMIT]
    assert codes(limiter, 6, user("p", "premium")) == [Response.OK] * 5 + [Response.OVER_LIMIT]
    assert codes(limiter, 8, user("a", "api_integration")) == [Response.OK] * 7 + [Response.OVER_LIMIT]
    # No tier claim, or an unknown one: the standard tier.
    assert codes(limiter, 4, user("n")) == [Response.OK] * 3 + [Response.OVER_LIMIT]
    assert codes(limiter, 4, user("g", "gold")) == [Response.OK] * 3 + [Response.OVER_LIMIT]


def test_users_and_classes_are_counted_apart(limiter: RateLimiter) -> None:
    assert codes(limiter, 4, user("u1", "standard")) == [Response.OK] * 3 + [Response.OVER_LIMIT]
    assert codes(limiter, 1, user("u2", "standard")) == [Response.OK]
    # u1's bulk budget is untouched by its standard calls, and the other way round.
    assert codes(limiter, 3, user("u1", "premium", "bulk")) == [Response.OK, Response.OK, Response.OVER_LIMIT]
    assert codes(limiter, 1, user("u2", "standard")) == [Response.OK]


def test_public_calls_are_counted_per_address_with_the_standard_tier(limiter: RateLimiter) -> None:
    addr = {"class": "standard", "remote_address": "10.1.2.3"}
    assert codes(limiter, 4, addr) == [Response.OK] * 3 + [Response.OVER_LIMIT]
    assert codes(limiter, 1, {"class": "standard", "remote_address": "10.1.2.4"}) == [Response.OK]
    # A user whose id happens to equal an address has its own budget.
    assert codes(limiter, 1, user("10.1.2.3")) == [Response.OK]


def test_response_carries_limit_remaining_reset_and_retry_after(limiter: RateLimiter, clock: Clock) -> None:
    ok = limiter.decide(request(user("r", "premium")))
    assert ok.overall_code == Response.OK and not ok.response_headers_to_add
    (status,) = ok.statuses
    assert status.code == Response.OK
    assert (status.current_limit.requests_per_unit, status.current_limit.unit) == (5, Response.RateLimit.MINUTE)
    assert status.current_limit.name == "premium"
    assert status.limit_remaining == 4 and status.duration_until_reset.seconds == 60
    for _ in range(4):
        limiter.decide(request(user("r", "premium")))
    clock.now += 15.2
    over = limiter.decide(request(user("r", "premium")))
    assert over.overall_code == Response.OVER_LIMIT
    assert over.statuses[0].code == Response.OVER_LIMIT and over.statuses[0].limit_remaining == 0
    assert over.statuses[0].duration_until_reset.seconds == 45
    assert [(h.key, h.value) for h in over.response_headers_to_add] == [("retry-after", "45")]


def test_windows_that_are_not_a_whole_unit_report_no_unit(clock: Clock) -> None:
    limiter = RateLimiter(Limits.parse("standard=2/5s"), FixedWindows(clock))
    status = limiter.decide(request(user("x"))).statuses[0]
    assert status.current_limit.unit == Response.RateLimit.UNKNOWN  # Envoy then writes no `w=`
    assert status.duration_until_reset.seconds == 5


def test_a_refused_request_counts_against_none_of_its_descriptors(clock: Clock) -> None:
    limiter = RateLimiter(Limits.parse("standard=5/m,bulk=1/m"), FixedWindows(clock))
    both = (user("m"), user("m", rate_class="bulk"))
    first = limiter.decide(request(*both))
    assert first.overall_code == Response.OK and [s.limit_remaining for s in first.statuses] == [4, 0]
    second = limiter.decide(request(*both))
    assert [s.code for s in second.statuses] == [Response.OK, Response.OVER_LIMIT]
    assert second.statuses[0].limit_remaining == 4  # not spent: the request was refused
    assert limiter.decide(request(user("m"))).statuses[0].limit_remaining == 3


def test_hits_addend_counts_several_calls(limiter: RateLimiter) -> None:
    assert limiter.decide(request(user("h"), hits=2)).statuses[0].limit_remaining == 1
    assert limiter.decide(request(user("h"), hits=2)).overall_code == Response.OVER_LIMIT
    assert limiter.decide(request(user("h"))).overall_code == Response.OK


def test_descriptors_it_does_not_know_and_other_domains_are_not_limited(limiter: RateLimiter) -> None:
    unknown = limiter.decide(request({"class": "standard"}, {"path": "/x"}))
    assert unknown.overall_code == Response.OK
    assert [s.HasField("current_limit") for s in unknown.statuses] == [False, False]
    for _ in range(10):
        other = limiter.decide(request(user("d"), domain="other"))
        assert other.overall_code == Response.OK and not other.statuses[0].HasField("current_limit")


def test_descriptor_budgets_and_policy_classes() -> None:
    b = budget_of([("class", "bulk"), ("tier", "premium"), ("user", "u")])
    assert b is not None and (b.rate_class, b.tier, b.key) == ("bulk", "premium", "bulk|user:u")
    b = budget_of([("class", "nonsense"), ("remote_address", "::1")])
    assert b is not None and (b.rate_class, b.tier, b.key) == ("standard", "standard", "standard|addr:::1")
    assert budget_of([("class", "standard")]) is None
    assert rate_class_of("", "x") == "standard" and rate_class_of("bulk", "x") == "bulk"
    with pytest.raises(ValueError, match="crm.x.v1.S/M: rate_class 'huge'"):
        rate_class_of("huge", "crm.x.v1.S/M")


def test_the_command_refuses_bad_limits_before_listening(capsys: pytest.CaptureFixture[str]) -> None:
    from edge.ratelimit.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--listen", "127.0.0.1:0", "--limits", "standard=1000/fortnight"])
    assert exc.value.code == 2
    assert "standard: '1000/fortnight' is not COUNT/[N]UNIT" in capsys.readouterr().err
