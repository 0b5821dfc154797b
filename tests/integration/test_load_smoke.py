"""`make load` in small: a few seconds of the load test's mix, at a low open-loop rate, against the
session's stack. Every request must be answered as intended in the envelope (reps refused as
intended when they touch an admin's contact), at the rate asked, with each process's memory read."""

from __future__ import annotations

from bench import load
from services.devstack import DevStack


async def test_the_mix_runs_clean_through_envoy(stack: DevStack) -> None:
    cfg = load.Settings(rate=12, duration=5, warmup=1, tenants=2, seed=60, memory_every=1, random_seed=3,
                        mix=load.parse_mix("get=10,update_denied=4,rel_create=4,act_create=4,audit=4"))
    outcome, world = await load.drive(stack, cfg)
    failures = {k: dict(s.failures) | {"examples": s.examples} for k, s in outcome.ops.items() if s.errors}
    assert outcome.failed == 0 and not outcome.problems, (failures, dict(outcome.warmup_failures), outcome.problems)
    assert outcome.sent == 60  # 12 req/s for 5 s, due on schedule whatever the latency
    answered = {k: len(s.latencies_ns) for k, s in outcome.ops.items()}
    assert sum(answered.values()) == 60
    # The intended refusal was exercised, writes were part of it, and reps had records of their own.
    assert answered["update_denied"] > 0 and answered["create"] + answered["rel_create"] + answered["act_create"] > 0
    assert all(len(t.rep.contacts) >= 20 and len(t.contacts) >= 80 for t in world.tenants)
    # Deals are either driven or skipped with the reason.
    assert world.deals or "no deals service" in world.deals_note
    last = outcome.memory[-1][1]
    assert {"services", "envoy", "nats", "ratelimit", "postgres"} <= set(last) and min(last.values()) > 0
    text, _ = load.report(outcome, world, 0.0)
    assert "| all " in text and "postgres (" in text
