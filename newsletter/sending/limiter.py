"""The global send rate: one GCRA bucket in Redis shared by every worker process and machine.

Celery's `rate_limit` is per worker node; this is per cluster. Each call reserves `n`
messages atomically (a Lua script using Redis' own clock) and says how long to wait before
sending them. A reservation that would wait longer than `max_wait` is not taken, so a worker
never sleeps for long holding its slot. Each sending server has a bucket of the same kind
(sending/pools.py); a throttling reply (421, 454, 4.7.x) lowers that server's bucket for a
while (`penalise`), never this global ceiling.
"""
from __future__ import annotations

import time

import redis

KEY = "newsletter:send-rate"  # + ":penalty" (throttling factor), ":setting" (rate set at run time)
NOTIFY_KEY = "newsletter:notify-rate"  # the transactional lane's own bucket (services/notifications)

# KEYS: per-second tat, penalty, runtime rate, per-hour tat, per-day tat.
# ARGV: interval (µs/message), tolerance (µs of burst), n, max_wait (µs), hour interval, day interval (0: no cap).
# Every bucket must admit the n messages; then all are charged together, or none is. A bucket's
# tolerance includes the message's own slot: a per-hour cap of H admits H at once, then one per 3600/H s.
# A penalty is "factor" (until its key expires), or "factor:set_at:cooling" (µs): back to 1 linearly.
PENALTY = """
local function penalty(raw, now)
  if not raw then return 1 end
  local f, at, cool = string.match(raw, '^([^:]+):(%d+):(%d+)$')
  if not f then return tonumber(raw) or 1 end
  f, at, cool = tonumber(f), tonumber(at), tonumber(cool)
  return math.min(1, f + (1 - f) * math.max(0, now - at) / cool)
end
"""
GCRA = PENALTY + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local factor = penalty(redis.call('GET', KEYS[2]), now)
local interval = tonumber(ARGV[1])
local setting = tonumber(redis.call('GET', KEYS[3]) or '0')
if setting and setting > 0 then interval = 1000000 / setting end
local buckets = {{KEYS[1], interval / factor, tonumber(ARGV[2])}}
local hour, day = tonumber(ARGV[5]), tonumber(ARGV[6])
if hour > 0 then table.insert(buckets, {KEYS[4], hour, 3600000000}) end
if day > 0 then table.insert(buckets, {KEYS[5], day, 86400000000}) end
local n = tonumber(ARGV[3])
local worst, tats = 0, {}
for i, b in ipairs(buckets) do
  local tat = tonumber(redis.call('GET', b[1]) or '0')
  if tat < now then tat = now end
  tats[i] = tat + b[2] * n
  local wait = tats[i] - b[3] - now
  if wait > worst then worst = wait end
end
if worst > tonumber(ARGV[4]) then return {0, worst} end
for i, b in ipairs(buckets) do
  redis.call('SET', b[1], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1000)
end
return {1, worst}
"""


class RateLimiter:
    def __init__(self, client: redis.Redis, rate: float, burst_seconds: float = 0.1, prefix: str = KEY,
                 per_hour: int = 0, per_day: int = 0) -> None:
        self.client = client
        self.keys = [prefix, f"{prefix}:penalty", f"{prefix}:setting", f"{prefix}:hour", f"{prefix}:day"]
        self.hour_us = 3600e6 / per_hour if per_hour else 0
        self.day_us = 86400e6 / per_day if per_day else 0
        self.refused_wait = 0.0  # seconds the last refused reservation would have had to wait
        self.rate = max(0.01, float(rate))
        self.interval_us = 1_000_000 / self.rate
        self.tolerance_us = max(self.interval_us, burst_seconds * 1_000_000)
        self.script = client.register_script(GCRA)

    def reserve(self, n: int = 1, max_wait: float = 1.0) -> float | None:
        """Reserve `n` sends: the seconds to wait before sending them, or None (not reserved)."""
        ok, wait_us = self.script(keys=self.keys, args=[self.interval_us, self.tolerance_us, n, max_wait * 1_000_000,
                                                        self.hour_us, self.day_us])
        if not ok:
            self.refused_wait = float(wait_us) / 1_000_000
            return None
        return float(wait_us) / 1_000_000

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

    def penalise(self, factor: float = 0.5, seconds: int = 60, gradual: bool = False) -> None:
        """The server is throttling us: slow every caller of this bucket down by `factor` for
        `seconds` (`gradual`: coming back to the full rate linearly over those seconds)."""
        if not gradual:
            current = float(self.client.get(self.keys[1]) or 1.0)
            self.client.set(self.keys[1], max(0.05, current * factor), ex=seconds)
            return
        now = _redis_now(self.client)
        lowered = max(0.05, self.penalty(now) * factor)
        self.client.set(self.keys[1], f"{lowered:.4f}:{now}:{seconds * 1_000_000}", ex=seconds)

    def penalty(self, now: int | None = None) -> float:
        """The factor the rate is multiplied by now (1: no penalty)."""
        raw = self.client.get(self.keys[1])
        if raw is None:
            return 1.0
        parts = (raw.decode() if isinstance(raw, bytes) else str(raw)).split(":")
        if len(parts) != 3:
            return float(parts[0])
        factor, at, cooling = float(parts[0]), int(parts[1]), int(parts[2])
        now = _redis_now(self.client) if now is None else now
        return min(1.0, factor + (1 - factor) * max(0, now - at) / cooling)

    def chunk(self, remaining: int, rate: float | None = None) -> int:
        """Messages to reserve at once: ~20 ms worth at this rate, at least one."""
        return max(1, min(remaining, int((rate or self.rate) * 0.02)))


def _redis_now(client: redis.Redis) -> int:
    """Redis' clock in µs: the one the script uses, the same for every machine."""
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


_clients: dict[tuple, RateLimiter] = {}


def thread_limiter(redis_url: str, rate: float, prefix: str = KEY, per_hour: int = 0,
                   per_day: int = 0) -> RateLimiter:
    """This thread's client of one cluster-wide bucket (redis-py clients are not shared
    across threads), made once per settings."""
    import threading

    key = (redis_url, float(rate), prefix, per_hour, per_day, threading.get_ident())
    if key not in _clients:
        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=4)
        _clients[key] = RateLimiter(client, rate, prefix=prefix, per_hour=per_hour, per_day=per_day)
    return _clients[key]
