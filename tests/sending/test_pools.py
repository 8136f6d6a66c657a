"""Pools against a real Redis: per-domain windows, a server's gradual penalty, turns and down marks."""
import uuid

import pytest
import redis

from newsletter.sending import pools
from newsletter.sending.errors import Kind, classify
from newsletter.sending.smtp import SmtpSettings


@pytest.fixture
def shared(platform_env):
    return pools.PoolState(redis.Redis.from_url(platform_env["REDIS_URL"]))


def server(name: str, **limits) -> pools.Server:
    return pools.Server(name, "p", SmtpSettings("127.0.0.1", 25), **limits)


def test_throttles_parse_with_precise_errors():
    assert pools.parse_throttles(" Gmail.com=20/s, outlook.com=600/h; gmail.com=1000/d ") == {
        "gmail.com": ((20, 1), (1000, 86400)), "outlook.com": ((600, 3600),)}
    assert pools.format_throttles(pools.parse_throttles("a.org=5/m")) == "a.org=5/m"
    assert pools.parse_throttles("") == {}
    for bad in ("gmail.com=20", "gmail.com=20/week", "gmail=20/s", "gmail.com=0/s", "=5/s"):
        with pytest.raises(ValueError, match="gmail|=5/s|count"):
            pools.parse_throttles(bad)


def test_454_and_4_7_x_are_throttling_replies():
    assert classify(454, "4.7.0 TLS not available due to temporary reason") == Kind.THROTTLED
    assert classify(451, "4.7.1 Rate limited") == Kind.THROTTLED
    assert classify(451, "4.3.0 Try later") == Kind.TRANSIENT


def test_a_domain_window_admits_its_limit_then_says_how_long_to_wait(shared):
    domain = f"{uuid.uuid4().hex[:8]}.example"
    throttles = pools.parse_throttles(f"{domain}=3/h")
    waits = shared.admit_domains([f"a{i}@{domain}" for i in range(5)] + ["x@other.example"], throttles)
    assert waits[:3] == [0, 0, 0] and waits[5] == 0  # the other domain has no throttle
    assert all(0 < wait <= 3600 for wait in waits[3:5])
    assert sum(shared.domain_counts(domain).values()) == 3  # refused ones are not counted
    assert shared.domain_counts("other.example") == {}


def test_a_throttled_server_is_halved_then_recovers_gradually_and_alone(shared):
    slow, other = server(f"slow-{uuid.uuid4().hex[:6]}"), server(f"other-{uuid.uuid4().hex[:6]}")
    shared.throttled(slow, 100, seconds=100)
    first = shared.limiter(slow, 100).penalty()
    assert 0.49 < first <= 0.51
    shared.throttled(slow, 100, seconds=100)
    assert shared.limiter(slow, 100).penalty() < first  # a second refusal halves it again
    limiter = shared.limiter(slow, 100)
    at_half_way = limiter.penalty(now=int(shared.client.time()[0]) * 1_000_000 + 50_000_000)
    assert first / 2 < at_half_way < 1  # linear recovery over the cooling period
    assert shared.limiter(other, 100).penalty() == 1.0


def test_a_route_takes_servers_in_turn_and_skips_those_marked_down(shared):
    names = [f"t{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    route = pools.Route([server(n) for n in names], shared, ceiling=10_000)
    picked = [route.pick(1)[0].name for _ in range(6)]
    assert set(picked) == set(names) and all(picked.count(n) == 2 for n in names)
    route.failed(route.servers[0], "refused")
    assert shared.down(names) == {names[0]: "refused"} and shared.failures(names[0]) == 1
    assert {route.pick(1)[0].name for _ in range(4)} == set(names[1:])
    fresh = pools.Route([server(n) for n in names], shared, ceiling=10_000)  # another worker sees the mark
    assert fresh.up() == fresh.servers[1:]


def test_a_server_at_its_own_limit_leaves_the_round_to_the_other(shared):
    capped, free = server(f"cap-{uuid.uuid4().hex[:6]}", per_hour=2), server(f"free-{uuid.uuid4().hex[:6]}")
    route = pools.Route([capped, free], shared, ceiling=10_000)
    picked = [route.pick(1)[0].name for _ in range(8)]
    assert picked.count(capped.name) == 2 and picked.count(free.name) == 6
    alone = pools.Route([capped], shared, ceiling=10_000)
    assert alone.pick(1) is None and alone.refused_wait > 1000  # the next slot is ~30 minutes away


def test_the_only_server_up_reserves_a_chunk_at_once_and_its_rounds_take_from_it(shared, monkeypatch):
    calls = []
    reserve = pools.RateLimiter.reserve
    monkeypatch.setattr(pools.RateLimiter, "reserve", lambda self, n=1, max_wait=1.0: (
        calls.append(n), reserve(self, n, max_wait))[1])  # the real bucket, its calls counted
    alone = server(f"one-{uuid.uuid4().hex[:6]}", per_hour=50)
    route = pools.Route([alone], shared, ceiling=10_000)
    assert route.pick(16, ahead=24) == (alone, 0.0)  # 40 slots charged on its bucket at once
    assert route.pick(16) == (alone, 0.0) and route.pick(8) == (alone, 0.0)  # from the credit
    assert calls == [40] and route.credit is None
    assert route.pick(16, ahead=16) is None  # 40 + 32 > 50 an hour: refused, then round by round
    assert route.ahead_refused and route.pick(10) == (alone, 0.0)  # the cap's last 10
    assert route.pick(1) is None
    # Two servers take turns: no reservation ahead; a server marked down loses its credit.
    names = [server(f"t{i}-{uuid.uuid4().hex[:6]}") for i in range(2)]
    pair = pools.Route(names, shared, ceiling=10_000)
    assert pair.pick(4, ahead=100) is not None and pair.credit is None
    solo = pools.Route([names[0]], shared, ceiling=10_000)
    assert solo.pick(4, ahead=8) is not None and solo.credit == (names[0], 8)
    solo.failed(names[0], "refused")
    assert solo.credit is None and solo.pick(4) is None
