"""deploy/prometheus/alerts.yml and deploy/grafana/newsletter.json: well formed, and every metric
they name is one the platform exports. With promtool (Debian's `prometheus` package, or PROMTOOL),
the rules also pass `promtool check rules`, their unit tests (alerts.test.yml) run, and a real
/metrics page passes `promtool check metrics`."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import Counter, Histogram

from newsletter.metrics import instruments
from tests.support.processes import ROOT

# one_pass (tests/conftest.py): it checks files (and a /metrics page's format, the same on every database).
pytestmark = pytest.mark.one_pass

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "newsletter.json"
PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool")
needs_promtool = pytest.mark.skipif(not PROMTOOL, reason="no promtool (apt-get install prometheus, or set PROMTOOL)")


def exported() -> set[str]:
    """Every sample name the platform can export."""
    names = set()
    for item in vars(instruments).values():
        if isinstance(item, Counter):
            names.add(item._name + "_total")  # noqa: SLF001  (prometheus_client keeps it there)
        elif isinstance(item, Histogram):
            names |= {item._name + suffix for suffix in ("_bucket", "_sum", "_count")}  # noqa: SLF001
        elif isinstance(item, tuple) and len(item) == 3 and str(item[0]).startswith(instruments.PREFIX):
            names.add(item[0])
    return names


def named(expr: str) -> set[str]:
    return set(re.findall(r"\bnewsletter_[a-z0-9_]+", expr))


def test_every_rule_is_complete_and_names_only_exported_metrics():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) >= 4
    assert {"NewsletterCampaignStuck", "NewsletterQueueBacklog", "NewsletterSendErrorBurst",
            "NewsletterComplaintRate"} <= set(names)
    known = exported()
    assert len(known) > 10
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert named(rule["expr"]) and named(rule["expr"]) <= known, (rule["alert"], named(rule["expr"]) - known)


def test_the_dashboard_queries_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    used = set().union(*(named(e) for e in exprs))
    assert used <= exported(), used - exported()
    assert {"newsletter_messages_total", "newsletter_smtp_round_seconds_bucket", "newsletter_ledger_rows",
            "newsletter_queue_depth"} <= used
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


@needs_promtool
def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([PROMTOOL, "test", "rules", "alerts.test.yml"], cwd=RULES.parent,
                            capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_promtool_accepts_a_real_metrics_page(client):
    page = client.get("/metrics").get_data()
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=page, capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
