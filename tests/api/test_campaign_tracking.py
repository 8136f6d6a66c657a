"""/api/v1/campaigns: the `tracking` mode (create, update, read) and GET /campaigns/{id}/stats."""
from __future__ import annotations

from newsletter.services.engagement import flush

from .test_campaigns import _campaign, _errors, _list

EMPTY = {"total": 0, "unique": None, "machine": 0}


def test_tracking_defaults_to_the_settings_value_and_can_be_set_and_changed(api):
    list_id = _list(api)
    assert _campaign(api, [list_id])["tracking"] == "anonymous"
    created = _campaign(api, [list_id], tracking="individual")
    assert created["tracking"] == "individual"
    changed = api.patch(f"/api/v1/campaigns/{created['id']}", json={"tracking": "off"})
    assert changed.status_code == 200 and changed.get_json()["tracking"] == "off"
    assert api.get(f"/api/v1/campaigns/{created['id']}").get_json()["tracking"] == "off"


def test_an_unknown_tracking_mode_is_a_422_naming_the_field(api):
    list_id = _list(api)
    response = api.post("/api/v1/campaigns", json={"name": "x", "subject": "s", "from_email": "n@example.com",
                                                   "html": "<p>x</p>", "list_ids": [list_id], "tracking": "spy"})
    assert response.status_code == 422 and "tracking" in _errors(response)
    created = _campaign(api, [list_id])
    for bad in ("", "OFF", 1, None):
        response = api.patch(f"/api/v1/campaigns/{created['id']}", json={"tracking": bad})
        assert response.status_code == 422 and "tracking" in _errors(response), bad
    assert api.get(f"/api/v1/campaigns/{created['id']}").get_json()["tracking"] == "anonymous"


def test_stats_shape_per_mode_and_unknown_campaign(app, api):
    list_id = _list(api)
    off = _campaign(api, [list_id], tracking="off")
    assert api.get(f"/api/v1/campaigns/{off['id']}/stats").get_json() == {
        "tracking": "off", "opens": EMPTY, "clicks": EMPTY, "links": []}
    individual = _campaign(api, [list_id], tracking="individual")
    with app.app_context():
        flush.apply("api-1", [["open", individual["id"], 0, 0, 0, "", 1_800_000_000],
                              ["open", individual["id"], 0, 0, 1, "apple_mpp", 1_800_000_000]])
    body = api.get(f"/api/v1/campaigns/{individual['id']}/stats").get_json()
    assert body == {"tracking": "individual", "opens": {"total": 1, "unique": 0, "machine": 1},
                    "clicks": {"total": 0, "unique": 0, "machine": 0}, "links": []}
    missing = api.get("/api/v1/campaigns/999999/stats")
    assert missing.status_code == 404


def test_stats_are_in_the_openapi_document(api):
    document = api.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/campaigns/{campaign_id}/stats"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/StatsOut")
    assert set(document["components"]["schemas"]["StatsOut"]["properties"]) == {"tracking", "opens", "clicks", "links"}
    assert "tracking" in document["components"]["schemas"]["CampaignPatch"]["properties"]
