"""/api/v1/campaigns/{id}/stats/links and /stats/timeline: shape, numbers from given counters, 404, OpenAPI."""
from __future__ import annotations

from tests.engagement.test_report import BLOG, SHOP, seed_counters


def test_links_are_the_stats_link_objects(app, api):
    with app.app_context():
        campaign_id = seed_counters("individual")
    body = api.get(f"/api/v1/campaigns/{campaign_id}/stats/links").get_json()
    assert body == {"links": [{"url": SHOP, "clicks": 8, "unique": 6, "machine": 6},
                              {"url": BLOG, "clicks": 4, "unique": 3, "machine": 0}]}
    assert body["links"] == api.get(f"/api/v1/campaigns/{campaign_id}/stats").get_json()["links"]


def test_links_of_an_anonymous_campaign_have_no_unique(app, api):
    with app.app_context():
        campaign_id = seed_counters("anonymous")
    links = api.get(f"/api/v1/campaigns/{campaign_id}/stats/links").get_json()["links"]
    assert [link["unique"] for link in links] == [None, None]


def test_timeline_is_hourly_human_and_machine(app, api):
    with app.app_context():
        campaign_id = seed_counters("anonymous")
    body = api.get(f"/api/v1/campaigns/{campaign_id}/stats/timeline").get_json()
    assert body == {"tracking": "anonymous", "buckets": [
        {"hour": "2026-05-04T10:00:00+00:00", "opens": {"total": 30, "machine": 25},
         "clicks": {"total": 8, "machine": 6}},
        {"hour": "2026-05-04T11:00:00+00:00", "opens": {"total": 0, "machine": 0},
         "clicks": {"total": 4, "machine": 0}},
        {"hour": "2026-05-04T12:00:00+00:00", "opens": {"total": 10, "machine": 0},
         "clicks": {"total": 0, "machine": 0}}]}


def test_unknown_campaign_is_404_on_both(api):
    for path in ("links", "timeline"):
        response = api.get(f"/api/v1/campaigns/999999/stats/{path}")
        assert response.status_code == 404, path
        assert response.is_json


def test_both_are_in_the_openapi_document(api):
    document = api.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    for path, schema in (("links", "LinkListOut"), ("timeline", "TimelineOut")):
        operation = document["paths"][f"/api/v1/campaigns/{{campaign_id}}/stats/{path}"]["get"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{schema}")
        assert "404" in operation["responses"], path
    assert schemas["LinkListOut"]["properties"]["links"]["items"]["$ref"].endswith("/LinkStatsOut")
    assert set(schemas["HourOut"]["properties"]) == {"hour", "opens", "clicks"}
    # The pinned stats document is unchanged.
    assert set(schemas["StatsOut"]["properties"]) == {"tracking", "opens", "clicks", "links"}
