"""Every page of the app through axe-core in Chromium: no "serious" or "critical" violation.

axe-core is pinned in package.json and injected from node_modules by the test only (it is never
served). The pages are found in the URL map, so a page added later is checked too (or must be
named below with the reason it is not). Signed in as an admin; public pages with real tokens.
"""
from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AutomationStep, Delivery, Notification, WebhookDelivery
from newsletter.services import outbox
from newsletter.services.accounts import api_keys
from newsletter.services.audience import imports, lists, subscribers, tokens
from newsletter.services.audience.segments import segments
from newsletter.services.automations import automations
from newsletter.services.campaigns import layouts
from newsletter.services.delivery import servers
from newsletter.services.notifications import system_mail
from newsletter.services.webhooks import webhook_deliveries, webhooks
from tests.conftest import ADMIN_EMAIL
from tests.pipeline.conftest import make_campaign, start, wait_until_status
from tests.support.input_walk import url_for_rule
from tests.support.net import wait_for
from tests.support.web import sign_in_page
from tests.web.test_browser import CHROMIUM, VIEWPORTS

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# one_pass (tests/conftest.py): pages' layout, scripts and accessibility in a browser; what they
# show from each database is checked by the client tests in tests/web, in both passes.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)"),
              pytest.mark.skipif(not AXE.is_file(), reason="axe-core not installed (make static)")]

# GET endpoints that are not pages people read, or not ours to fix.
NOT_PAGES = {
    "static": "files", "health.healthz": "probe", "health.readyz": "probe", "metrics.metrics": "Prometheus text",
    "tracking.click": "a redirect", "tracking.pixel": "an image", "tracking.automation_click": "a redirect",
    "tracking.automation_pixel": "an image", "auth.index": "a redirect to the dashboard",
    "public.manage_link": "a redirect to the preferences page (checked)",
    "admin.status": "JSON", "campaigns.progress": "JSON", "campaigns.resend_reach": "JSON",
    "campaigns.test_status": "JSON", "campaigns.estimate": "JSON", "campaigns.missing_fields": "JSON",
    "campaigns.subscriber_options": "JSON", "campaign_editors.fields": "JSON", "imports.status": "JSON",
    "imports.invalid_rows": "CSV", "send_log.export_csv": "CSV", "subscribers.export_csv": "CSV",
    "subscribers.export_json": "JSON",
    "api_docs.openapi_swagger_ui": "third-party Swagger UI (swagger-ui-dist), not our markup",
}
SERIOUS = ("serious", "critical")


@pytest.fixture
def everything(app, worker, smtp_server, outbox_dir):
    """One of each thing a page can show, and a campaign really sent by the worker (its deliveries,
    report and outbox message)."""
    with app.app_context():
        news = lists.create("Readers", "double", public=True, description="Monthly news")
        ada = subscribers.create("ada@example.com", name="Ada", attributes={"city": "Paris"}, list_ids=[news.id])
        bob = subscribers.create("bob@example.com", name="Bob", list_ids=[news.id], status="unconfirmed")
        sent = make_campaign([news.id], name="Sent news", subject="A11y sent {{ subscriber.name }}")
        start(app, sent)
        wait_until_status(sent, "sent")
        draft = make_campaign([news.id], name="Draft news")
        layout = layouts.create("Plain", "<html><body>{{ content }}</body></html>")
        segment = segments.create("Parisians", {"match": "all", "rules": [
            {"type": "attribute", "key": "city", "op": "equals", "value": "Paris"}]})
        welcome = automations.create("Welcome", "subscribed", str(news.id), [
            {"kind": "wait", "params": {"minutes": 60}},
            {"kind": "send", "params": {"subject": "Welcome {{ subscriber.name }}", "html": "<p>Hello!</p>"}}])
        step = db.session.scalar(select(AutomationStep.id).where(AutomationStep.automation_id == welcome.id)
                                 .order_by(AutomationStep.position))
        key, _ = api_keys.create_api_key("CRM")
        hook = webhooks.create("https://hooks.example.com/in", "CRM sync", ["subscriber.created"])
        webhook_deliveries.send_test(hook.id)
        hook_delivery = db.session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == hook.id))
        server = servers.save({"name": "relay-2", "pool": "bulk", "host": "127.0.0.1", "port": "2525", "tls": "none",
                               "username": "", "password": "", "per_second": "20", "per_hour": "0",
                               "per_day": "50000", "enabled": "y"})
        job = imports.start(io.BytesIO(b"email,name\ncy@example.com,Cy\n"), "people.csv", list_ids=[news.id])
        system_mail.queue_test_email("check@example.org")
        notification = db.session.scalar(select(Notification.id).order_by(Notification.id.desc()))
        delivery = db.session.scalar(select(Delivery.id).where(Delivery.campaign_id == sent))
        message = wait_for(lambda: next((m for m in outbox.list_messages(outbox_dir)
                                         if "A11y sent" in (m.subject or "")), None), 30, message="the sent email")
        values = {
            "campaign_id": [sent, draft], "job_id": [job.id], "layout_id": [layout.id], "list_id": [news.id],
            "key": [message.key], "segment_id": [segment.id], "notification_id": [notification],
            "server_id": [server.id], "subscriber_id": [ada.id], "user_id": [_admin_id()], "webhook_id": [hook.id],
            "key_id": [key.id], "delivery_id": [delivery],
            "automation_id": [welcome.id], "step_id": [step], "kind": ["send", "wait", "branch"],
        }
        webhook_values = {**values, "delivery_id": [hook_delivery]}
        public_tokens = {
            "public.confirm": tokens.confirm_token(bob.id, [news.id]),
            "public.unsubscribe": tokens.unsubscribe_token(ada.id, [news.id], sent),
            "public.preferences": tokens.preferences_token(ada.id),
            "public.web_view": tokens.view_token(sent, ada.id),
        }
    return values, webhook_values, public_tokens


def _admin_id() -> int:
    from newsletter.services.accounts import users

    return users.find_by_email(ADMIN_EMAIL).id


def _pages(app, values, webhook_values, public_tokens) -> tuple[list[tuple[str, str]], list[str]]:
    """(endpoint, url) for every GET page; and the endpoints no value was found for."""
    pages, unfilled = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or rule.rule.startswith("/api/"):
            continue
        if rule.endpoint.startswith(("static", "api_docs.")):
            continue
        if "token" in rule.arguments:
            if rule.endpoint not in public_tokens:
                unfilled.append(rule.endpoint)
                continue
            pages.append((rule.endpoint, url_for_rule(rule, {"token": public_tokens[rule.endpoint]})))
            continue
        source = webhook_values if rule.endpoint.startswith("webhooks.") else values
        if any(arg not in source for arg in rule.arguments):
            unfilled.append(rule.endpoint)
            continue
        args = sorted(rule.arguments)
        for combo in itertools.product(*(source[arg] for arg in args)):
            pages.append((rule.endpoint, url_for_rule(rule, dict(zip(args, combo, strict=True)))))
    return pages, unfilled


def _violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    # The email previews are sandboxed frames of user-written HTML, not our pages: iframes off.
    result = page.evaluate("""async () => {
      const r = await axe.run(document, { iframes: false, resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary.split('\\n')[1]) }));
    }""")
    return [f"{v['impact']} {v['id']} ({v['help']}): {v['nodes']}" for v in result if v["impact"] in SERIOUS]


@pytest.mark.parametrize("device", VIEWPORTS)
def test_no_page_has_a_serious_accessibility_violation(app, browser, live_server, admin, everything, device):
    pages, unfilled = _pages(app, *everything)
    assert not unfilled, f"pages without a value to visit them with (seed one, or name them in NOT_PAGES): {unfilled}"
    # bypass_csp: axe is added as an inline script; the pages' own CSP is tested elsewhere.
    context = browser.new_context(viewport=VIEWPORTS[device], bypass_csp=True)
    page = context.new_page()
    # Public pages first, signed out (as their visitors see them), then every page as the admin.
    public = [(e, u) for e, u in pages if not u.startswith("/admin")]
    found: dict[str, list[str]] = {}
    visited = 0
    # The check itself: a page with a known critical and serious fault is caught.
    page.set_content('<html><head><title>t</title></head><body><main><h1>x</h1><img src="x.png"></main></body></html>')
    assert [p.split()[1] for p in _violations(page)] == ["html-has-lang", "image-alt"]
    for _, url in public:
        response = page.goto(live_server + url)
        if response is not None and "text/html" in (response.headers.get("content-type") or ""):
            visited += 1
            if problems := _violations(page):
                found[f"{url} (signed out)"] = problems
    sign_in_page(page, live_server)
    for endpoint, url in pages:
        if endpoint in ("public.confirm", "public.unsubscribe"):
            continue  # done signed out; a second visit would act again
        response = page.goto(live_server + url)
        assert response is not None
        assert response.status < 500, f"{url} answered {response.status}"
        if "text/html" not in (response.headers.get("content-type") or ""):
            continue
        visited += 1
        if problems := _violations(page):
            found[url] = problems
    context.close()
    assert visited >= 60, f"only {visited} pages checked"
    assert not found, "\n".join(f"{url}:\n  " + "\n  ".join(problems) for url, problems in found.items())
