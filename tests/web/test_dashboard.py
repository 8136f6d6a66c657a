"""The dashboard: charts as SVG, the page for each role, and the status JSON with the session's real workers."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest

from newsletter.config import QUEUES
from newsletter.models import Role
from newsletter.services import health
from newsletter.services.accounts import users
from newsletter.web.admin import charts
from tests.services.test_reports import seed_campaign
from tests.support.web import login

SVG = "{http://www.w3.org/2000/svg}"


def _svg(markup) -> ET.Element:
    figure = ET.fromstring(str(markup))  # the whole figure is well-formed XML, not just the SVG
    svg = figure.find(f"{SVG}svg")
    assert svg is not None and svg.get("role") == "img" and svg.get("width") == "100%"
    title = svg.find(f"{SVG}title")
    assert title is not None and svg.get("aria-labelledby") == title.get("id")
    return svg


# Charts ---------------------------------------------------------------------------------------

def test_bar_chart_draws_a_bar_per_non_zero_value_stacked_and_a_table_of_every_number():
    labels = [f"{h:02d}:00" for h in range(24)]
    sent = [0] * 24
    sent[3], sent[10], sent[23] = 5, 120, 1
    failed = [0] * 24
    failed[10] = 7
    markup = charts.bar_chart(labels, [charts.Series("Sent", sent), charts.Series("Failed", failed, "danger")],
                              title="Emails & more")
    svg = _svg(markup)
    bars = svg.findall(f"{SVG}rect")
    assert len(bars) == 4
    assert sorted(b.find(f"{SVG}title").text for b in bars) == [
        "03:00: 5 sent", "10:00: 120 sent", "10:00: 7 failed", "23:00: 1 sent"]
    failed_bar, sent_bar = (next(b for b in bars if b.find(f"{SVG}title").text == f"10:00: {t}")
                            for t in ("7 failed", "120 sent"))
    # Stacked: the failures sit right on top of the sends in the same column.
    assert failed_bar.get("x") == sent_bar.get("x")
    bottom_of_failed = float(failed_bar.get("y")) + float(failed_bar.get("height"))
    assert bottom_of_failed == pytest.approx(float(sent_bar.get("y")), abs=0.02)
    assert "Emails &amp; more. Sent: 126 in total, most 120 at 10:00" in str(markup)
    ticks = [t.text for t in svg.findall(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["50", "100", "150"]
    labels_shown = [t.text for t in svg.findall(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels_shown == ["00:00", "06:00", "12:00", "17:00", "23:00"]  # first, last, evenly between
    table_rows = ET.fromstring(str(markup)).findall(".//tbody/tr")
    assert len(table_rows) == 24 and [c.text for c in table_rows[10]] == ["10:00", "120", "7"]


def test_line_chart_has_a_point_per_label_and_empty_charts_say_what_to_do():
    values = list(range(0, 90 * 3, 3))
    svg = _svg(charts.line_chart([str(i) for i in range(90)], [charts.Series("Subscribers", values, "success")],
                                 title="Growth"))
    line = svg.find(f".//{SVG}polyline")
    assert len(line.get("points").split()) == 90 and line.get("vector-effect") == "non-scaling-stroke"
    assert svg.findall(f"{SVG}circle") == []  # too many points for dots
    few = _svg(charts.line_chart(["a", "b", "c"], [charts.Series("n", [1, 4, 2])], title="Few"))
    assert len(few.findall(f"{SVG}circle")) == 3

    empty = str(charts.bar_chart(["a", "b"], [charts.Series("Sent", [0, 0])], title="Sends", empty="Send a campaign."))
    assert "<svg" not in empty and "Send a campaign." in empty


@pytest.mark.parametrize("peak, expected", [(7, [0, 5, 10]), (3, [0, 1, 2, 3]), (120, [0, 50, 100, 150]),
                                            (2500, [0, 1000, 2000, 3000])])
def test_ticks_are_round_numbers(peak, expected):
    assert charts.nice_ticks(peak) == expected


# The page for each role -----------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.ADMIN, Role.MARKETER, Role.VIEWER])
def test_dashboard_for_each_role(app, client, role):
    with app.app_context():
        campaign_id = seed_campaign()
        users.create_user(f"{role.value}@example.com", "long enough password", role)
    login(client, f"{role.value}@example.com", "long enough password")
    page = client.get("/admin/").get_data(as_text=True)
    assert "May news" in page and f'href="/admin/campaigns/{campaign_id}/report"' in page
    assert 'value="93.3"' in page and "14 / 15" in page  # its progress bar: sent, failed and cancelled are done
    # The seeded send is from 2024 and nobody subscribed: three charts, each an empty state.
    assert page.count('<figure class="chart') == page.count("chart-empty") == 3
    assert "No campaign email in the last 24 hours" in page and 'id="queue-warning"' in page
    assert ("Send test email" in page) == (role is Role.ADMIN)
    assert ("New campaign" in page) == (role is not Role.VIEWER)


def test_dashboard_empty_states(admin_client):
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "No campaigns yet." in page and "Write your first one" in page
    assert "No subscribers yet. Import a CSV" in page


# Status JSON: real workers, real broker ---------------------------------------------------------

def test_status_lists_the_live_workers_their_queues_and_the_depths(admin_client, worker, transactional_worker):
    data = admin_client.get("/admin/status.json").get_json()
    assert data["checks"] == {"database": None, "broker": None, "redis": None}
    bulk = [w for w in data["workers"] if w.startswith("bulk-")]
    tx = [w for w in data["workers"] if w.startswith("tx-")]
    assert len(bulk) == 1 and len(tx) == 1
    assert data["worker_queues"][bulk[0]] == ["bulk", "default"] and data["worker_queues"][tx[0]] == ["transactional"]
    by_name = {q["name"]: q for q in data["queues"]}
    assert set(by_name) == set(QUEUES)
    assert by_name["transactional"]["consumers"] == tx and by_name["bulk"]["consumers"] == bulk
    assert all(isinstance(q["depth"], int) for q in data["queues"])
    assert data["warnings"] == []


def test_a_queue_nobody_consumes_is_counted_and_warned_about(app, worker, transactional_worker):
    lonely = f"nobody-{uuid.uuid4().hex[:6]}"
    with app.app_context():
        celery_app = app.extensions["celery"]
        assert health.queue_depths([lonely]) == {lonely: 0}  # never declared: nothing waits
        for _ in range(2):
            celery_app.send_task("newsletter.tasks.nothing", queue=lonely)
        try:
            depths = health.queue_depths([*QUEUES, lonely])
            assert depths[lonely] == 2
            rows, warnings = health.queue_status([*QUEUES, lonely], depths, health.active_queues())
        finally:
            with celery_app.connection_for_write() as connection:
                connection.default_channel.queue_purge(lonely)
    assert [r["consumers"] for r in rows if r["name"] == lonely] == [[]]
    assert len(warnings) == 1 and str(warnings[0]).startswith(f"No worker consumes the {lonely} queue (2 waiting)")
