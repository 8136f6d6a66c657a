"""The pixel and the redirect skip Flask's request machinery (web/public/tracking.py FastPath):
no cookie, their own headers, no app-wide hook, the real client behind a proxy, a capped buffer."""
from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import select

from newsletter import create_app
from newsletter.extensions import db
from newsletter.models import CampaignLink
from newsletter.services.engagement import events, links, tokens

from .conftest import make_campaign
from .test_engagement import message, tracked

BROWSER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                         "(KHTML, like Gecko) Version/17.0 Safari/605.1.15", "Accept": "text/html,*/*"}


def _tokens(app, audience) -> tuple[list[str], list[str]]:
    list_id, people = audience
    with app.app_context():
        return tracked(message(make_campaign(list_id, "anonymous"), people[0])[0])


def _buffered(app) -> list[list]:
    with app.app_context():
        return [json.loads(e) for e in events.client().lrange(events.key("events"), 0, -1)]


def _assert_tracking_headers(response) -> None:
    headers = response.headers
    assert headers["Cache-Control"] == "no-store, private" and headers["Pragma"] == "no-cache"
    assert headers["Referrer-Policy"] == "no-referrer"  # the token never reaches the link's site
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Set-Cookie" not in headers and "Vary" not in headers
    assert "Strict-Transport-Security" not in headers  # plain http


def test_no_cookie_is_read_or_set_even_for_a_signed_in_admin(app, admin_client, audience):
    clicks, pixels = _tokens(app, audience)
    pixel = admin_client.get(f"/o/{pixels[0]}", headers=BROWSER)
    click = admin_client.get(f"/c/{clicks[0]}", headers=BROWSER)
    assert (pixel.status_code, click.status_code) == (200, 302)
    assert click.headers["Location"] == "https://shop.example.com/spring?a=1&b=2" and click.data == b""
    assert pixel.mimetype == "image/gif" and pixel.headers["Content-Length"] == "43"
    for response in (pixel, click):
        _assert_tracking_headers(response)
    assert admin_client.get("/admin/").status_code == 200  # the session itself is untouched


def test_app_wide_hooks_do_not_run_for_a_hit_but_still_for_a_bad_token(app, client, audience):
    """A good hit never enters Flask's request context: no session, login, limiter, CSRF or guard
    hook runs for it. A token we did not sign goes on to Flask, for the app's own 404 page."""
    clicks, pixels = _tokens(app, audience)
    seen: list[str] = []

    def spy() -> None:
        from flask import request

        seen.append(request.path)

    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(0, spy)
    try:
        assert client.get(f"/o/{pixels[0]}", headers=BROWSER).status_code == 200
        assert client.head(f"/c/{clicks[1]}", headers=BROWSER).status_code == 302
        assert seen == []
        bad = client.get(f"/c/{clicks[0][:-2]}AA", headers=BROWSER)
        assert bad.status_code == 404 and "Location" not in bad.headers and b"<html" in bad.data
        assert client.post(f"/c/{clicks[0]}").status_code in (400, 405)  # never a redirect, never counted
        assert seen[0] == f"/c/{clicks[0][:-2]}AA"
    finally:
        hooks.remove(spy)
    assert [e[0] for e in _buffered(app)] == ["open", "click"]
    assert _buffered(app)[1][4:6] == [1, "bot"]  # HEAD: a machine


def test_behind_a_trusted_proxy_the_hit_sees_the_real_client_and_gets_hsts(app, audience):
    """ProxyFix runs before the fast path: the classifier gets X-Forwarded-For's address (here
    Apple's network: an MPP open) and HTTPS from X-Forwarded-Proto."""
    _, pixels = _tokens(app, audience)
    proxied = create_app({"TRUSTED_PROXIES": 1, "ENGAGEMENT_KEY_PREFIX": app.config["ENGAGEMENT_KEY_PREFIX"]})
    response = proxied.test_client().get(f"/o/{pixels[0]}", headers={
        **BROWSER, "X-Forwarded-For": "17.58.100.1", "X-Forwarded-Proto": "https"})
    assert response.status_code == 200 and "max-age=" in response.headers["Strict-Transport-Security"]
    assert [(e[0], e[4], e[5]) for e in _buffered(app)] == [("open", 1, "apple_mpp")]


def test_a_full_buffer_drops_hits_but_the_visitor_still_gets_there(app, client, audience):
    """The cheap abuse bound: past ENGAGEMENT_BUFFER_MAX events nothing more is queued in the
    broker's Redis, and the link still works."""
    clicks, pixels = _tokens(app, audience)
    app.config["ENGAGEMENT_BUFFER_MAX"] = 2
    try:
        answers = [client.get(f"/c/{clicks[0]}", headers=BROWSER).status_code for _ in range(3)]
        answers.append(client.get(f"/o/{pixels[0]}", headers=BROWSER).status_code)
    finally:
        app.config.pop("ENGAGEMENT_BUFFER_MAX")
    assert answers == [302, 302, 302, 200]
    assert len(_buffered(app)) == 2


def test_one_client_clicking_every_link_is_a_burst_in_one_round_trip(app, client, audience):
    """The burst count and the push are one script: the third distinct link within the window
    is a machine, the clicks before it stay human."""
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "anonymous")
        message(campaign_id, people[0])  # registers the campaign's links
        link_ids = db.session.scalars(select(CampaignLink.id).where(CampaignLink.campaign_id == campaign_id)
                                      .order_by(CampaignLink.id)).all()
        built = int(time.time()) - 60  # read a minute after it came: not "too soon"
        first, second = (tokens.make("click", campaign_id, link_id, None, built) for link_id in link_ids)
    assert len(link_ids) == 2  # the shop and the blog (twice), see conftest.HTML
    with app.app_context():
        third = links.register(campaign_id, ["https://third.example.com/"])[0]
        last = tokens.make("click", campaign_id, third, None, built)
    for token in (first, second, first, last):
        assert client.get(f"/c/{token}", headers=BROWSER).status_code == 302
    assert [(e[2], e[4], e[5]) for e in _buffered(app)] == [
        (link_ids[0], 0, ""), (link_ids[1], 0, ""), (link_ids[0], 0, ""), (third, 1, "burst")]


def test_an_unexpected_error_is_flasks_500_and_logs_no_token(app, client, audience, monkeypatch, caplog):
    clicks, _ = _tokens(app, audience)

    def broken(campaign_id: int, link_id: int) -> str:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(links, "url_of", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    with caplog.at_level("ERROR"):
        response = client.get(f"/c/{clicks[0]}", headers=BROWSER)
    assert response.status_code == 500 and "Location" not in response.headers
    assert "/c/<redacted>" in caplog.text and clicks[0] not in caplog.text
    assert _buffered(app) == []


def test_the_prefix_alone_or_a_deeper_path_is_no_hit(app, client):
    for path in ("/c/", "/o/", f"/c/{uuid.uuid4().hex}/more", "/c"):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 404 and "Location" not in response.headers, path
    assert _buffered(app) == []
