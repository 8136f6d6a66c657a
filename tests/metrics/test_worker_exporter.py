"""A worker host without a web process: the worker's own exporter on METRICS_PORT."""
from __future__ import annotations

import urllib.request

from newsletter.models import NotificationKind
from newsletter.services.notifications import one_off
from tests.support.metrics import groups, parse
from tests.support.net import free_port, wait_for
from tests.support.processes import celery_worker

QUEUE = "metrics-exporter-test"  # only this test's worker consumes it


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def test_a_worker_with_metrics_port_serves_what_its_pool_counted(app, platform_env, smtp_server):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env = {**platform_env, "METRICS_PORT": str(port), "METRICS_ADDR": "127.0.0.1"}
    with celery_worker(env, queues=QUEUE, concurrency=1, name="exporter"):
        with app.app_context():  # queued only now: the session's sweeper republishes rows left waiting
            notification_id = one_off.queue(NotificationKind.TEST_EMAIL, "exported@example.com", "Hi", "<p>Hi</p>",
                                            "Hi")
        app.extensions["celery"].send_task("newsletter.tasks.notifications.send_notification",
                                           args=[notification_id], queue=QUEUE)

        wait_for(lambda: any(g.startswith("worker-exporter-") for g in sent_in(parse(_get(url), by_group=True))),
                 30, 0.2, "the exporter to show the notification the pool sent")
        samples = parse(_get(url), by_group=True)
    assert [n for g, n in sent_in(samples).items() if g.startswith("worker-exporter-")] == [1]
    # Only this host's counters and histograms: the scrape-time gauges are the web's.
    assert not any(name.startswith("newsletter_ledger_rows") for name, _ in samples)
    assert smtp_server.received.get("exported@example.com")


def sent_in(samples: dict) -> dict[str, float]:
    return groups(samples, "newsletter_messages_total", lane="notification", outcome="sent", reply="2xx")
