"""The request side of tracking: check the token, classify the hit, buffer it in Redis.

No database row is written per hit: the event is RPUSHed as a compact JSON array to key("events")
and counted later, in batches, by `flush`. The only database read is a click's URL, once per
link per process (links.url_of). A Redis outage loses events but never breaks a link: the
redirect still answers.

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
    _push(data, classify.Hit("open", user_agent, ip, time.time(), data.built_at, 1, accept, referer), head)


def record_click(token: str, user_agent: str, ip: str, accept: str = "", referer: str = "",
                 head: bool = False) -> str:
    """Count a click and return where it goes; TokenInvalid, or NotFound for a link that is gone."""
    data = tokens.load("click", token)
    assert data.link_id is not None  # tokens.load guarantees it for clicks
    url = links.url_of(data.campaign_id, data.link_id)
    if url is None:
        raise NotFound("link", data.link_id)
    burst = _burst_links(data, user_agent, ip)
    _push(data, classify.Hit("click", user_agent, ip, time.time(), data.built_at, burst, accept, referer), head)
    return url


def _burst_links(data: tokens.Token, user_agent: str, ip: str) -> int:
    """Distinct links of this campaign this client hit within BURST_WINDOW (this one included).

    The client is the subscriber when the token names one, else a hash of address and user
    agent (never stored beyond the window, and never the address itself)."""
    who = str(data.subscriber_id) if data.subscriber_id is not None else \
        hashlib.sha256(f"{ip}\0{user_agent}".encode()).hexdigest()[:20]
    burst = key(f"burst:{data.campaign_id}:{who}")
    try:
        return int(_burst_script()(keys=[burst], args=[data.link_id, int(classify.BURST_WINDOW) + 1]))
    except redis.RedisError as exc:
        log.warning("engagement: burst check skipped (%s)", exc)
        return 1


# One round trip (EVALSHA) instead of a three-command pipeline: half the click's Redis time.
_BURST = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SCARD', KEYS[1])
"""
_scripts: dict[int, Any] = {}


def _burst_script() -> Any:
    redis_client = client()
    script = _scripts.get(id(redis_client))
    if script is None:
        script = _scripts[id(redis_client)] = redis_client.register_script(_BURST)
    return script


def _push(data: tokens.Token, hit: classify.Hit, head: bool = False) -> None:
    # A HEAD request only checks that the link works: link checkers and scanners, never a reader.
    verdict = HEAD_VERDICT if head else classify.classify(hit)
    event = [hit.kind, data.campaign_id, data.link_id or 0, data.subscriber_id or 0, int(verdict.machine),
             verdict.reason, int(hit.at)]
    try:
        client().rpush(key("events"), json.dumps(event, separators=(",", ":")))
    except redis.RedisError as exc:  # the visitor still gets the image or the redirect
        log.warning("engagement: event lost, Redis refused it (%s)", exc)
