"""A worker host without a web process: the worker's own exporter on METRICS_PORT."""
from __future__ import annotations

import urllib.request

from tests.support.metrics import parse
from tests.support.net import free_port, wait_for
from tests.support.processes import celery_worker


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def test_a_worker_with_metrics_port_serves_this_hosts_groups(platform_env):
    port = free_port()
    env = {**platform_env, "METRICS_PORT": str(port), "METRICS_ADDR": "127.0.0.1"}
    with celery_worker(env, queues="metrics-exporter-test", concurrency=1, name="exporter"):
        wait_for(lambda: "newsletter_" in _get(f"http://127.0.0.1:{port}/metrics"), 30, 0.2, "the exporter")
        samples = parse(_get(f"http://127.0.0.1:{port}/metrics"), by_group=True)
    groups = {dict(labels).get("process_group", "") for _, labels in samples}
    assert any(group.startswith("worker-exporter-") for group in groups), groups
    # Only this host's counters and histograms: the scrape-time gauges are the web's.
    assert not any(name.startswith("newsletter_ledger_rows") for name, _ in samples)
