"""The GCRA limiter against a real Redis: reservations, refusal past max_wait, runtime rate, penalty."""
import uuid

import pytest
import redis

from newsletter.sending.limiter import RateLimiter


@pytest.fixture
def limiter(platform_env):
    client = redis.Redis.from_url(platform_env["REDIS_URL"])
    prefix = f"test-rate:{uuid.uuid4().hex}"
    yield RateLimiter(client, rate=10, burst_seconds=0.1, prefix=prefix)
    client.delete(prefix, f"{prefix}:penalty", f"{prefix}:setting")


def test_reservations_are_spaced_by_the_rate_and_long_waits_are_refused(limiter):
    waits = [limiter.reserve(1, max_wait=5) for _ in range(6)]
    assert waits[0] == 0.0
    # each further message is due 0.1 s after the previous one (10/s); the calls take far less
    for n, wait in enumerate(waits[1:], start=1):
        assert abs(wait - n * 0.1) < 0.03, waits
    assert limiter.reserve(20, max_wait=0.5) is None  # would wait ~2.5 s: not taken
    assert limiter.reserve(1, max_wait=5) is not None  # and nothing was consumed by the refusal


def test_runtime_rate_and_throttling_penalty_apply_to_every_caller(limiter):
    limiter.set_rate(1000)
    assert limiter.effective_rate() == 1000
    assert limiter.reserve(50, max_wait=1) < 0.06
    limiter.penalise(0.5)
    limiter.reserve(1, max_wait=1)
    wait_then = limiter.reserve(100, max_wait=5)
    assert wait_then > 0.1  # 100 messages at 500/s, not 1000/s (that would be ~0.05 s)
    limiter.set_rate(None)
    assert limiter.effective_rate() == 10


def test_an_hourly_cap_admits_its_quota_then_refuses_with_the_wait(platform_env):
    client = redis.Redis.from_url(platform_env["REDIS_URL"])
    prefix = f"test-rate:{uuid.uuid4().hex}"
    capped = RateLimiter(client, rate=100000, prefix=prefix, per_hour=30)
    try:
        assert capped.reserve(30, max_wait=1) is not None  # the hour's quota, at once
        assert capped.reserve(1, max_wait=1) is None
        assert 100 < capped.refused_wait <= 121  # the next one frees up after 3600/30 s
    finally:
        client.delete(*capped.keys)
