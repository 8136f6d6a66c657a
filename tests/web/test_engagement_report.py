"""The engagement report page in each tracking mode, the dashboard comparison, and both in a browser."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from newsletter.extensions import db
from newsletter.models import Campaign, Role, Tracking
from newsletter.services.accounts import users
from tests.engagement.test_report import BLOG, H0, SHOP, seed_counters
from tests.support.web import login, sign_in_page


def _stats(page: str) -> dict[str, str]:
    """The report's stat tiles: label -> value, for opens and clicks apart."""
    found = {}
    for block in ("opens", "clicks"):
        part = page.split(f'id="engagement-{block}"')[1].split("</article>")[0]
        for value, label in re.findall(r'stat-value">([^<]+)</span><span class="stat-label">([^<]+)', part):
            found[f"{block}: {label.strip()}"] = value
    return found


def _reasons(page: str) -> dict[str, tuple[str, str]]:
    return {reason: (opens, clicks) for reason, opens, clicks in re.findall(
        r'<tr data-reason="(\w+)">.*?<td class="num">([\d,]+)</td><td class="num">([\d,]+)</td>', page, re.S)}


def test_individual_report_page(app, admin_client):
    with app.app_context():
        campaign_id = seed_counters("individual")
    page = admin_client.get(f"/admin/campaigns/{campaign_id}/engagement").get_data(as_text=True)
    assert "Tracking: Individual" in page and "unique readers and mail domains are known" in page
    assert _stats(page) == {"opens: Human opens": "40", "opens: Unique openers": "20", "opens: Open rate": "10.0 %",
                            "opens: Machine · 38.5 % of all": "25", "clicks: Human clicks": "12",
                            "clicks: Unique clickers": "9", "clicks: Click rate": "4.5 %",
                            "clicks: Machine · 33.3 % of all": "6"}
    assert _reasons(page) == {"apple_mpp": ("20", "0"), "scanner": ("0", "4"), "bot": ("0", "0"),
                              "prefetch": ("0", "0"), "too_soon": ("5", "0"), "burst": ("0", "2")}
    assert "Opens per hour" in page and "Clicks per hour" in page
    assert "2026-05-04 10:00 UTC: 30 human" not in page  # one day: tooltips say the hour only
    assert "10:00 UTC: 30 human" in page and "10:00 UTC: 25 machine" in page and "11:00 UTC: 4 human" in page
    click_map = page.split('id="click-map"')[1].split("</article>")[0]
    assert click_map.index(SHOP) < click_map.index(BLOG)
    assert re.search(r"<strong>8</strong> clicks\s*· 6 unique\s*· "
                     r"<span class=\"muted\">6 machine</span>\s*· 67 % of clicks", click_map)
    domains = page.split('id="domains"')[1].split("</article>")[0]
    assert re.findall(r'<th scope="row" class="domain">([^<]+)</th>', domains)[:2] == ["gmail.com", "outlook.com"]
    assert "Other domains" in domains and "+5 machine" in domains


def test_anonymous_report_page_says_what_it_cannot_know(app, admin_client):
    with app.app_context():
        campaign_id = seed_counters("anonymous")
    page = admin_client.get(f"/admin/campaigns/{campaign_id}/engagement").get_data(as_text=True)
    assert "Tracking: Anonymous" in page and "nobody is named" in page
    stats = _stats(page)
    assert stats["opens: Unique openers"] == "—" and stats["opens: Open rate"] == "20.0 %"
    assert "(needs individual)" in page and "repeats included" in page
    domains = page.split('id="domains"')[1].split("</article>")[0]
    assert "Anonymous tracking keeps no subscriber" in domains and "<table" not in domains
    assert "· — unique" in page


def test_off_report_page_explains_there_is_nothing(app, admin_client):
    with app.app_context():
        campaign_id = seed_counters("off")
    page = admin_client.get(f"/admin/campaigns/{campaign_id}/engagement").get_data(as_text=True)
    assert "Tracking: Off" in page and "nothing about opens or clicks can be known" in page
    assert 'id="engagement-opens"' not in page and 'id="click-map"' not in page and "<svg" not in page


def test_report_pages_link_to_it_and_unknown_ids_404(app, admin_client):
    with app.app_context():
        campaign_id = seed_counters("anonymous")
    url = f"/admin/campaigns/{campaign_id}/engagement"
    assert f'href="{url}"' in admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'href="{url}"' in admin_client.get(f"/admin/campaigns/{campaign_id}/report").get_data(as_text=True)
    assert admin_client.get("/admin/campaigns/999999/engagement").status_code == 404


def test_viewers_read_it_and_signed_out_visitors_log_in(app, client):
    with app.app_context():
        campaign_id = seed_counters("individual")
    response = client.get(f"/admin/campaigns/{campaign_id}/engagement")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    with app.app_context():
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
    login(client, "viewer@example.com", "long enough password")
    assert client.get(f"/admin/campaigns/{campaign_id}/engagement").status_code == 200


def test_dashboard_compares_the_last_campaigns(app, admin_client):
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "Once a tracked campaign has gone out" in page
    with app.app_context():
        first = seed_counters("individual", name="April issue", started_at=H0)
        second = seed_counters("anonymous", name="May issue", sent=50, started_at=H0 + timedelta(days=1))
        seed_counters("off", name="Untracked", started_at=H0 + timedelta(days=2))
    page = admin_client.get("/admin/").get_data(as_text=True)
    compare = page.split('id="engagement-compare"')[1].split("</article>")[0]
    assert "Last campaigns: human open and click rates" in compare and "Untracked" not in compare
    assert "April issue: 10 open rate" in compare and "May issue: 80 open rate" in compare
    assert "May issue: 24 click rate" in compare
    rows = re.findall(r'<a href="/admin/campaigns/(\d+)/engagement" class="break">([^<]+)</a>', compare)
    assert rows == [(str(second), "May issue"), (str(first), "April issue")]  # newest first in the table
    # Two series side by side: four bars, none stacked on another.
    bars = re.findall(r'<rect class="bar chart-(\w+)" x="([\d.]+)%" y="([\d.]+)"', compare)
    assert len(bars) == 4 and len({x for _tone, x, _y in bars}) == 4


# In a real browser: a phone and a desktop ---------------------------------------------------

def test_engagement_report_and_dashboard_in_a_browser(app, live_server, admin):
    import os
    import shutil
    from pathlib import Path


    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium executable")
    from playwright.sync_api import sync_playwright

    with app.app_context():
        for i, (name, tracking) in enumerate((("March issue", "anonymous"), ("April issue", "individual"))):
            seed_counters(tracking, name=name, started_at=H0 - timedelta(days=30 - i))
        campaign_id = seed_counters("individual", name="Spring sale: last week of offers", sent=1200,
                                    started_at=H0 - timedelta(minutes=30))
        db.session.get(Campaign, campaign_id).tracking = Tracking.INDIVIDUAL
        db.session.commit()
    shots = Path(os.environ.get("SCREENSHOT_DIR") or Path(os.environ["INSTANCE_PATH"]) / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        viewports = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
        for device, viewport in viewports.items():
            page = browser.new_page(viewport=viewport)
            sign_in_page(page, live_server)
            page.locator("#engagement-compare").screenshot(path=shots / f"dashboard_engagement_{device}.png")
            assert page.locator("#engagement-compare rect.bar").count() == 6
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

            page.goto(f"{live_server}/admin/campaigns/{campaign_id}/engagement")
            page.screenshot(path=shots / f"campaign_engagement_report_{device}.png", full_page=True)
            assert page.locator(".chart-svg").count() == 2
            assert page.locator("#click-map li").count() == 2
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
            page.close()
        browser.close()
