"""A flusher killed mid-flush loses nothing and counts nothing twice.

The flush runs in a real separate process that dies (os._exit, no cleanup, like a SIGKILL)
at a named point: right after moving events into its batch, or right after committing the
counts but before deleting the batch. Another flusher then takes the batch over once its
lease has run out.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from newsletter.services.engagement import events, flush, stats

from .conftest import make_campaign

N = 1200  # events: more than one Lua chunk (1,000) per batch


def _crashing_flush(point: str, prefix: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        from newsletter import create_app
        from newsletter.services.engagement import flush
        app = create_app({{"ENGAGEMENT_FLUSH_CRASH_AT": {point!r}, "ENGAGEMENT_FLUSH_LEASE": 3,
                          "ENGAGEMENT_KEY_PREFIX": {prefix!r}}})
        with app.app_context():
            flush.run()
        raise SystemExit(0)  # not reached: the crash point ends the process
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("point", ["after_take", "after_commit"])
def test_a_flusher_killed_mid_flush_loses_nothing_and_counts_nothing_twice(app, audience, point):
    list_id, _ = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "anonymous")
        client = events.client()
        client.rpush(events.key("events"), *[json.dumps(["open", campaign_id, 0, 0, i % 3 == 0, "", 1_800_000_000 + i])
                                          for i in range(N)])
    crashed = _crashing_flush(point, app.config["ENGAGEMENT_KEY_PREFIX"])  # this test's keys
    assert crashed.returncode == 70, crashed.stderr
    with app.app_context():
        counted = stats.campaign_stats(campaign_id)["opens"]
        # Killed before its transaction: nothing counted; after it: counted, batch still left behind.
        assert counted["total"] + counted["machine"] == (N if point == "after_commit" else 0)
        assert client.llen(events.key("events")) == 0 and client.zcard(events.key("batches")) == 1
        time.sleep(3.2)  # the dead flusher's lease runs out
        flush.run()
        flush.run()  # and once more: nothing left, nothing added
        report = stats.campaign_stats(campaign_id)["opens"]
        assert client.llen(events.key("events")) == 0 and client.zcard(events.key("batches")) == 0
    assert report == {"total": N - N // 3, "unique": None, "machine": N // 3}


def test_a_malformed_event_is_skipped_not_a_poisoned_batch(app, audience):
    list_id, _ = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "anonymous")
        client = events.client()
        client.rpush(events.key("events"), b"not json", json.dumps(["open", "x"]),
                     json.dumps(["peek", 1, 0, 0, 0, "", 1]),
                     json.dumps(["open", campaign_id, 0, 0, 0, "", 1_800_000_000]))
        flush.run()
        assert client.llen(events.key("events")) == 0 and client.zcard(events.key("batches")) == 0
        assert stats.campaign_stats(campaign_id)["opens"]["total"] == 1
