"""GET /api/v1/campaigns/{id}/preflight: every pre-flight check as JSON (DNS from the loopback server)."""
from __future__ import annotations

import pytest

from tests.api.conftest import ApiClient
from tests.web.test_deliverability_ui import make_campaign

# The session sends with a VERP return path at example.org: these pages check the From domain's own SPF.
pytestmark = pytest.mark.usefixtures("no_verp")


def test_the_preflight_api_answers_json_with_every_check(app, client, api_key, dns):
    campaign_id = make_campaign(app)
    api = ApiClient(client, api_key("viewer"))
    answer = api.get(f"/api/v1/campaigns/{campaign_id}/preflight")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["campaign_id"], body["from_domain"], body["return_path_domain"], body["status"]) == \
        (campaign_id, "example.com", "example.com", "fail")
    assert [c["key"] for c in body["checks"]] == ["spf", "dkim", "dmarc", "size", "links", "unsubscribe", "text"]
    assert {c["key"]: c["status"] for c in body["checks"]}["unsubscribe"] == "pass"
    assert api.get("/api/v1/campaigns/999999/preflight").status_code == 404
    assert client.get(f"/api/v1/campaigns/{campaign_id}/preflight").status_code == 401
    document = api.get("/api/v1/openapi.json").get_json()
    assert "get" in document["paths"]["/api/v1/campaigns/{campaign_id}/preflight"]
