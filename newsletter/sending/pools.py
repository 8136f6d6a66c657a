"""Pools of sending servers: which server a round of messages goes out through, and the
state every worker shares about each server in Redis.

A server has its own GCRA bucket (limiter.RateLimiter under `newsletter:server:<name>`):
its per-second rate (the global SEND_RATE when it has none of its own, so a penalty still
slows it), and optional per-hour and per-day caps. The global bucket stays the ceiling: a
message takes a slot in both. A throttling reply (421, 454, 4.7.x) halves the server's rate,
which then comes back linearly over THROTTLE_SECONDS; a server that cannot be reached (no
connection, a 4xx greeting, a failed TLS) is marked down for a while (the first retry delay,
at most DOWN_SECONDS) and the pool's other servers take its messages.

Per-domain throttles (`gmail.com=20/s, outlook.com=600/h`) count messages per recipient
domain in fixed windows (`newsletter:domain:<domain>:<window>:<start>`), whichever server
sends them: the counters are what the receiving provider sees.
"""
from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass

import redis

from .limiter import RateLimiter
from .smtp import SmtpSettings

SERVER_KEY = "newsletter:server:"  # + name, then ":down", ":penalty", ":hour", ":day"
DOMAIN_KEY = "newsletter:domain:"
DOWN_SECONDS = 30
THROTTLE_SECONDS = 120
DEFAULT = "default"  # the pool, and the server of the Settings page within it


@dataclass(frozen=True)
class Server:
    name: str
    pool: str
    smtp: SmtpSettings
    per_second: float = 0  # 0: none of its own
    per_hour: int = 0
    per_day: int = 0


# Per-domain throttles ---------------------------------------------------------------------------

WINDOWS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE = re.compile(r"^([a-z0-9.-]+\.[a-z]{2,})\s*=\s*(\d+)\s*/\s*(s|m|h|d)$")
Throttles = dict[str, tuple[tuple[int, int], ...]]  # domain -> ((limit, window seconds), ...)


def parse_throttles(text: str | None) -> Throttles:
    """`gmail.com=20/s, outlook.com=600/h` (a domain may have several); ValueError naming the bad part."""
    rules: dict[str, list[tuple[int, int]]] = {}
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip().lower()
        if not part:
            continue
        found = _RULE.match(part)
        if found is None:
            raise ValueError(f"{part!r} is not domain=count/unit, such as gmail.com=20/s (units: s, m, h, d).")
        limit = int(found.group(2))
        if limit < 1:
            raise ValueError(f"{part!r}: the count must be at least 1.")
        rules.setdefault(found.group(1), []).append((limit, WINDOWS[found.group(3)]))
    return {domain: tuple(sorted(set(pairs), key=lambda p: p[1])) for domain, pairs in rules.items()}


def format_throttles(throttles: Throttles) -> str:
    units = {seconds: unit for unit, seconds in WINDOWS.items()}
    return ", ".join(f"{domain}={limit}/{units[window]}" for domain, pairs in throttles.items()
                     for limit, window in pairs)


# ARGV: key prefix, then per message: domain, rule count, (limit, window) pairs.
# A message is admitted only if every window of its domain has room; then all are counted.
# Returns per message 0 (admitted) or the seconds until the fullest window starts again.
DOMAINS = """
local t = redis.call('TIME')
local now = tonumber(t[1])
local out, i = {}, 2
while i <= #ARGV do
  local domain, count = ARGV[i], tonumber(ARGV[i + 1])
  local keys, wait = {}, 0
  for r = 0, count - 1 do
    local limit, window = tonumber(ARGV[i + 2 + 2 * r]), tonumber(ARGV[i + 3 + 2 * r])
    local start = now - now % window
    local key = ARGV[1] .. domain .. ':' .. window .. ':' .. start
    keys[#keys + 1] = {key, window}
    if tonumber(redis.call('GET', key) or '0') >= limit then
      wait = math.max(wait, start + window - now)
    end
  end
  if wait == 0 then
    for _, k in ipairs(keys) do
      redis.call('INCR', k[1])
      redis.call('EXPIRE', k[1], 2 * k[2] + 60)
    end
  end
  out[#out + 1] = wait
  i = i + 2 + 2 * count
end
return out
"""


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


# The shared state ---------------------------------------------------------------------------------

class PoolState:
    """One thread's view of the servers' shared state (a redis-py client is not shared across threads)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._limiters: dict[tuple, RateLimiter] = {}
        self._domains = client.register_script(DOMAINS)

    def limiter(self, server: Server, ceiling: float) -> RateLimiter:
        """The server's bucket; without a rate of its own it runs at the global rate (`ceiling`)."""
        rate = server.per_second or ceiling
        key = (server.name, float(rate), server.per_hour, server.per_day)
        if key not in self._limiters:
            self._limiters[key] = RateLimiter(self.client, rate, prefix=SERVER_KEY + server.name,
                                              per_hour=server.per_hour, per_day=server.per_day)
        return self._limiters[key]

    def down(self, names: list[str]) -> dict[str, str]:
        """name -> why, for the servers among `names` that are marked down."""
        if not names:
            return {}
        found = self.client.mget([f"{SERVER_KEY}{name}:down" for name in names])
        return {name: why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
                for name, why in zip(names, found, strict=True) if why}

    def mark_down(self, server: Server, why: str, seconds: int = DOWN_SECONDS) -> None:
        pipe = self.client.pipeline()
        pipe.set(f"{SERVER_KEY}{server.name}:down", why[:300] or "unreachable", ex=seconds)
        pipe.incr(f"{SERVER_KEY}{server.name}:failures")  # times found down (the admin page shows them)
        pipe.expire(f"{SERVER_KEY}{server.name}:failures", 86400)
        pipe.execute()

    def failures(self, name: str) -> int:
        """How often the server was found down (counted for a day after the last time)."""
        return int(self.client.get(f"{SERVER_KEY}{name}:failures") or 0)

    def mark_up(self, server: Server) -> None:
        self.client.delete(f"{SERVER_KEY}{server.name}:down")

    def throttled(self, server: Server, ceiling: float, seconds: int = THROTTLE_SECONDS) -> None:
        """The server said slow down: halve its rate, back to full over `seconds`."""
        self.limiter(server, ceiling).penalise(0.5, seconds, gradual=True)

    def admit_domains(self, addresses: list[str], throttles: Throttles) -> list[float]:
        """Per address: 0 (counted against its domain's windows) or the seconds until it may go."""
        args: list[str | int] = [DOMAIN_KEY]
        index = []
        for n, address in enumerate(addresses):
            rules = throttles.get(domain_of(address))
            if rules:
                index.append(n)
                args += [domain_of(address), len(rules)]
                for limit, window in rules:
                    args += [limit, window]
        waits = [0.0] * len(addresses)
        if index:
            for n, wait in zip(index, self._domains(args=args), strict=True):
                waits[n] = float(wait)
        return waits

    def domain_counts(self, domain: str) -> dict[str, int]:
        """The domain's live window counters (key -> messages counted): what the throttle enforced."""
        keys = list(self.client.scan_iter(f"{DOMAIN_KEY}{domain}:*", count=1000))
        values = self.client.mget(keys) if keys else []
        return {key.decode() if isinstance(key, bytes) else str(key): int(value)
                for key, value in zip(keys, values, strict=True) if value is not None}


_states: dict[tuple[str, int], PoolState] = {}


def state(redis_url: str) -> PoolState:
    """This thread's PoolState."""
    key = (redis_url, threading.get_ident())
    if key not in _states:
        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=4)
        _states[key] = PoolState(client)
    return _states[key]


# Choosing a server -------------------------------------------------------------------------------

_turns = itertools.count()


class Route:
    """The servers of one pool for one batch (or one notification), taken in turn.

    `pick(n)` gives the next server that is up and whose bucket admits `n` messages: first
    one that admits them at once, in turn from where the last pick stopped (which spreads
    the messages), else the one that admits them soonest within `max_wait`. A server marked
    down is skipped until its mark expires.
    """

    def __init__(self, servers: list[Server], shared: PoolState, ceiling: float,
                 down_seconds: int = DOWN_SECONDS) -> None:
        self.servers, self.shared, self.ceiling = servers, shared, ceiling
        self.down_seconds = down_seconds
        self.down = shared.down([s.name for s in servers])
        self.turn = next(_turns)  # workers start on different servers
        self.refused_wait = 0.0  # when nothing was picked: seconds until a server has room
        self.last_failure = ""  # why the last server marked down was
        # Slots reserved ahead on the pool's only server up (`pick`'s `ahead`), and whether its
        # bucket refused such a reservation once (then this route asks round by round).
        self.credit: tuple[Server, int] | None = None
        self.ahead_refused = False

    def up(self) -> list[Server]:
        return [s for s in self.servers if s.name not in self.down]

    def in_turn(self) -> list[Server]:
        """The servers up, starting with the next one's turn."""
        servers = self.up()
        if not servers:
            return []
        start = self.turn % len(servers)
        self.turn += 1
        return servers[start:] + servers[:start]

    def pick(self, n: int, max_wait: float = 1.0, ahead: int = 0) -> tuple[Server, float] | None:
        """(server, seconds to wait before sending) with `n` slots reserved on it, or None.

        `ahead`: messages the caller sends after these (the rest of its chunk). With a single
        server up (there is no turn to take), `n + ahead` slots are reserved at once if its
        bucket admits them now, and the next picks take theirs from that credit without a
        Redis call. Slots left over when the caller stops early stay spent, as the global
        bucket's chunk does (the bucket can only be slower for it, never faster).
        """
        if self.credit is not None:
            server, left = self.credit
            if n <= left and server.name not in self.down:
                self.credit = (server, left - n) if left > n else None
                return server, 0.0
            self.credit = None
        ordered = self.in_turn()
        if not ordered:
            return None
        if ahead > 0 and len(ordered) == 1 and not self.ahead_refused:
            server = ordered[0]
            if self.shared.limiter(server, self.ceiling).reserve(n + ahead, max_wait=0) is not None:
                self.credit = (server, ahead)
                return server, 0.0
            self.ahead_refused = True
        waits = {}
        for server in ordered:
            limiter = self.shared.limiter(server, self.ceiling)
            if limiter.reserve(n, max_wait=0) is not None:
                return server, 0.0
            waits[server.name] = limiter.refused_wait
        for server in sorted(ordered, key=lambda s: waits[s.name]):
            limiter = self.shared.limiter(server, self.ceiling)
            wait = limiter.reserve(n, max_wait=max_wait)
            if wait is not None:
                return server, wait
            waits[server.name] = limiter.refused_wait
        self.refused_wait = min(waits.values())
        return None

    def failed(self, server: Server, why: str) -> None:
        """The server could not be reached: every worker leaves it alone for a while."""
        self.credit = None
        self.shared.mark_down(server, why, self.down_seconds)
        self.down[server.name] = why
        self.last_failure = why

    def throttled(self, server: Server) -> None:
        self.credit = None  # its lowered rate applies from the next round on
        self.shared.throttled(server, self.ceiling)
