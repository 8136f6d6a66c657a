"""The request side of tracking: check the token, classify the hit, buffer it in Redis.

No database row is written per hit: the event is RPUSHed as a compact JSON array to key("events")
and counted later, in batches, by `flush`, in one Redis round trip per hit (a script that, for a
click, also counts the client's links for the burst rule). The only database read is a click's
URL, once per link per process (links.url_of). A Redis outage loses events but never breaks a
link: the redirect still answers.

Event layout (a JSON array, the order is the format): [kind, campaign id, link id or 0,
subscriber id or 0, machine 0/1, reason, unix time]. The subscriber id is there only when the
token carries it, which only an individually tracked campaign's tokens do.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import replace
from typing import Any

import redis
from flask import current_app

from ..errors import NotFound
from . import classify, links, tokens

log = logging.getLogger(__name__)

PREFIX = "newsletter:engagement"  # ENGAGEMENT_KEY_PREFIX overrides it (tests keep their own buffer)
_clients: dict[tuple[int, str], redis.Redis] = {}
HEAD_VERDICT = classify.Verdict(True, classify.BOT)


def client() -> redis.Redis:
    """This process's Redis client for engagement (a forked worker never shares its parent's)."""
    url = current_app.config["REDIS_URL"]
    slot = (os.getpid(), url)
    if slot not in _clients:
        _clients[slot] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return _clients[slot]


def key(name: str) -> str:
    """The Redis key `name` of the engagement buffer ("events", "batches", "batch:<id>", "burst:…")."""
    return f"{current_app.config.get('ENGAGEMENT_KEY_PREFIX') or PREFIX}:{name}"


def record_open(token: str, user_agent: str, ip: str, accept: str = "", referer: str = "", head: bool = False) -> None:
    """Count a pixel fetch; TokenInvalid for a token we did not sign."""
    data = tokens.load("open", token)
    hit = classify.Hit("open", user_agent, ip, time.time(), data.built_at, 1, accept, referer)
    _push(data, hit, head)


def record_click(token: str, user_agent: str, ip: str, accept: str = "", referer: str = "",
                 head: bool = False) -> str:
    """Count a click and return where it goes; TokenInvalid, or NotFound for a link that is gone."""
    data = tokens.load("click", token)
    assert data.link_id is not None  # tokens.load guarantees it for clicks
    url = links.url_of(data.campaign_id, data.link_id)
    if url is None:
        raise NotFound("link", data.link_id)
    hit = classify.Hit("click", user_agent, ip, time.time(), data.built_at, 1, accept, referer)
    _push(data, hit, head, burst=_burst_key(data, user_agent, ip))
    return url


def _burst_key(data: tokens.Token, user_agent: str, ip: str) -> str:
    """The set of links of this campaign this client hit within BURST_WINDOW.

    The client is the subscriber when the token names one, else a hash of address and user
    agent (never stored beyond the window, and never the address itself)."""
    who = str(data.subscriber_id) if data.subscriber_id is not None else \
        hashlib.sha256(f"{ip}\0{user_agent}".encode()).hexdigest()[:20]
    return key(f"burst:{data.campaign_id}:{who}")


# One round trip (EVALSHA) per hit: the burst count and the push together. The burst rule comes
# last in `classify`, so the hit is classified twice up front, as if alone and as if part of a
# burst; the script counts the client's distinct links and keeps the second event only if the
# count reaches BURST_LINKS (ARGV[5] is "" when an earlier rule already decided).
# KEYS: the events list, then (clicks) the client's burst set. ARGV: the event, the buffer's cap,
# then (clicks) the link id, the set's lifetime, BURST_LINKS, the event as part of a burst.
# Returns the distinct links counted (1 for an open), or -1 when the buffer was full.
_HIT = """
local event = ARGV[1]
local links = 1
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[3])
  if redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
  links = redis.call('SCARD', KEYS[2])
  if ARGV[6] ~= '' and links >= tonumber(ARGV[5]) then event = ARGV[6] end
end
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
redis.call('RPUSH', KEYS[1], event)
return links
"""
# The buffer's cap, in events (~50 bytes each): the flush drains thousands a second, so only a
# stopped flusher under a flood of hits gets here. Past it hits are dropped, not queued: the
# same Redis is the Celery broker (`noeviction`), and a full one would stop every send.
BUFFER_MAX = 2_000_000  # ENGAGEMENT_BUFFER_MAX overrides it
_scripts: dict[int, Any] = {}
_last_full_warning = 0.0


def _hit_script() -> Any:
    redis_client = client()
    script = _scripts.get(id(redis_client))
    if script is None:
        script = _scripts[id(redis_client)] = redis_client.register_script(_HIT)
    return script


def _event(data: tokens.Token, hit: classify.Hit, verdict: classify.Verdict) -> str:
    return json.dumps([hit.kind, data.campaign_id, data.link_id or 0, data.subscriber_id or 0, int(verdict.machine),
                       verdict.reason, int(hit.at)], separators=(",", ":"))


def _push(data: tokens.Token, hit: classify.Hit, head: bool = False, burst: str | None = None) -> int:
    """Buffer the hit, counting it in the client's `burst` set first (clicks); returns the
    distinct links counted there (1 without a set, or when Redis failed), -1 if the buffer was full."""
    # A HEAD request only checks that the link works: link checkers and scanners, never a reader.
    verdict = HEAD_VERDICT if head else classify.classify(hit)
    args: list[Any] = [_event(data, hit, verdict), current_app.config.get("ENGAGEMENT_BUFFER_MAX") or BUFFER_MAX]
    keys = [key("events")]
    if burst is not None:
        in_burst = verdict if head else classify.classify(replace(hit, burst_links=classify.BURST_LINKS))
        keys.append(burst)
        args += [data.link_id or 0, int(classify.BURST_WINDOW) + 1, classify.BURST_LINKS,
                 _event(data, hit, in_burst) if in_burst != verdict else ""]
    try:
        links_hit = int(_hit_script()(keys=keys, args=args))
    except redis.RedisError as exc:  # the visitor still gets the image or the redirect
        log.warning("engagement: event lost, Redis refused it (%s)", exc)
        return 1
    if links_hit < 0:
        _warn_full()
    return links_hit


def _warn_full() -> None:
    global _last_full_warning
    now = time.monotonic()
    if now - _last_full_warning > 60:  # once a minute per process: a flood must not flood the log too
        _last_full_warning = now
        log.warning("engagement: the event buffer is full (ENGAGEMENT_BUFFER_MAX); hits are dropped "
                    "until the flush catches up. Is beat's flush-engagement running?")
