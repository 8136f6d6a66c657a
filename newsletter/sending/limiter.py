"""The global send rate: one GCRA bucket in Redis shared by every worker process and machine.

Celery's `rate_limit` is per worker node; this is per cluster. Each call reserves `n`
messages atomically (a Lua script using Redis' own clock) and says how long to wait before
sending them. A reservation that would wait longer than `max_wait` is not taken, so a worker
never sleeps for long holding its slot. A throttling reply from the SMTP server (421, 4.7.x)
slows the whole cluster down for a while (`penalise`).
"""
from __future__ import annotations

import time

import redis

KEY = "newsletter:send-rate"  # + ":penalty" (throttling factor), ":setting" (rate set at run time)

# KEYS: tat, penalty, override. ARGV: interval (µs per message), tolerance (µs of burst), n, max_wait (µs).
GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local factor = tonumber(redis.call('GET', KEYS[2]) or '1')
local interval = tonumber(ARGV[1])
local setting = tonumber(redis.call('GET', KEYS[3]) or '0')
if setting and setting > 0 then interval = 1000000 / setting end
interval = interval / factor
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * tonumber(ARGV[3])
local wait = new_tat - tonumber(ARGV[2]) - now
if wait > tonumber(ARGV[4]) then return {0, wait} end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
if wait < 0 then wait = 0 end
return {1, wait}
"""


class RateLimiter:
    def __init__(self, client: redis.Redis, rate: float, burst_seconds: float = 0.1, prefix: str = KEY) -> None:
        self.client = client
        self.keys = [prefix, f"{prefix}:penalty", f"{prefix}:setting"]
        self.rate = max(0.01, float(rate))
        self.interval_us = 1_000_000 / self.rate
        self.tolerance_us = max(self.interval_us, burst_seconds * 1_000_000)
        self.script = client.register_script(GCRA)

    def reserve(self, n: int = 1, max_wait: float = 1.0) -> float | None:
        """Reserve `n` sends: the seconds to wait before sending them, or None (not reserved)."""
        ok, wait_us = self.script(keys=self.keys,
                                  args=[self.interval_us, self.tolerance_us, n, max_wait * 1_000_000])
        return float(wait_us) / 1_000_000 if ok else None

    def effective_rate(self) -> float:
        setting = float(self.client.get(self.keys[2]) or 0)
        return setting if setting > 0 else self.rate

    def set_rate(self, rate: float | None) -> None:
        """Change the cluster's rate now for every worker (None: back to SEND_RATE)."""
        if rate is None:
            self.client.delete(self.keys[2])
        else:
            self.client.set(self.keys[2], max(0.01, float(rate)))

    def acquire(self, n: int = 1, max_wait: float = 1.0) -> bool:
        """Reserve and sleep until the messages may go; False if the wait would exceed `max_wait`."""
        wait = self.reserve(n, max_wait)
        if wait is None:
            return False
        if wait > 0:
            time.sleep(wait)
        return True

    def retry_after(self) -> float:
        """Roughly when a deferred reservation could succeed."""
        tat = self.client.get(self.keys[0])
        if tat is None:
            return 0.0
        seconds, micros = self.client.time()
        return max(0.0, (float(tat) - (seconds * 1_000_000 + micros)) / 1_000_000)

    def penalise(self, factor: float = 0.5, seconds: int = 60) -> None:
        """The server is throttling us: slow every sender down by `factor` for `seconds`."""
        current = float(self.client.get(self.keys[1]) or 1.0)
        self.client.set(self.keys[1], max(0.05, current * factor), ex=seconds)

    def chunk(self, remaining: int, rate: float | None = None) -> int:
        """Messages to reserve at once: ~20 ms worth at this rate, at least one."""
        return max(1, min(remaining, int((rate or self.rate) * 0.02)))
