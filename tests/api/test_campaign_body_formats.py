"""/api/v1/campaigns body_format and body_source: optional (HTML as before), converted, precise 422s."""
from __future__ import annotations

PROBLEM = "application/problem+json"
BASE = {"name": "Spring", "subject": "Hi", "from_email": "news@example.com", "list_ids": []}


def _errors(response) -> dict[str, str]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    return {e["field"].split(".")[0]: e["message"] for e in response.get_json()["errors"]}


def test_a_client_that_sends_only_html_gets_an_html_campaign(api):
    created = api.post("/api/v1/campaigns", json={**BASE, "html": "<p>Hi {{ subscriber.name }}</p>"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["body_format"] == "html" and body["body_source"] == ""
    assert body["html"] == "<p>Hi {{ subscriber.name }}</p>"


def test_markdown_is_converted_and_an_html_patch_makes_it_html_again(api):
    created = api.post("/api/v1/campaigns", json={**BASE, "body_format": "markdown",
                                                  "body_source": "# Hi {{ subscriber.name }}\n\n<b>x</b>"})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["body_format"] == "markdown"
    assert body["html"] == "<h1>Hi {{ subscriber.name }}</h1>\n<p>&lt;b&gt;x&lt;/b&gt;</p>\n"
    patched = api.patch(f"/api/v1/campaigns/{body['id']}", json={"body_source": "*new*"})
    assert patched.get_json()["html"] == "<p><em>new</em></p>\n"
    patched = api.patch(f"/api/v1/campaigns/{body['id']}", json={"html": "<p>raw</p>"})
    assert patched.status_code == 200
    assert patched.get_json()["body_format"] == "html" and patched.get_json()["html"] == "<p>raw</p>"


def test_bad_formats_and_sources_are_precise_422s(api):
    response = api.post("/api/v1/campaigns", json={**BASE, "html": "<p>x</p>", "body_format": "docx"})
    assert response.status_code == 422
    assert "body_format" in _errors(response)
    response = api.post("/api/v1/campaigns", json={**BASE, "body_format": "markdown",
                                                   "body_source": "{{ subscriber._secret }}"})
    assert response.status_code == 422
    assert "not allowed" in _errors(response)["body_source"]
    response = api.post("/api/v1/campaigns", json={**BASE, "body_format": "visual", "body_source": "[",
                                                   "html": "<p>x</p>"})
    assert response.status_code == 422
    assert "JSON" in _errors(response)["body_source"]
    response = api.post("/api/v1/campaigns", json={**BASE, "body_format": "markdown", "body_source": ["x"]})
    assert response.status_code == 422
    assert "body_source" in _errors(response)


def test_a_markdown_campaign_is_sent_as_its_html_with_merge_fields_filled(api, worker, beat, smtp_server):
    from email import message_from_bytes, policy

    from tests.support.net import wait_for

    list_id = api.post("/api/v1/lists", json={"name": "Md", "opt_in": "single"}).get_json()["id"]
    created = api.post("/api/v1/subscribers", json={"email": "md@example.com", "name": "Ada",
                                                    "attributes": {"city": "Oslo"}, "list_ids": [list_id]})
    assert created.status_code == 201, created.get_json()
    campaign = api.post("/api/v1/campaigns", json={
        **BASE, "list_ids": [list_id], "body_format": "markdown",
        "body_source": "# Hi {{ subscriber.name }}\n\nNews from **{{ subscriber.attributes.city }}**.\n\n"
                       "[Leave]({{ unsubscribe_url }})"}).get_json()
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/send").status_code == 202
    wait_for(lambda: smtp_server.received.get("md@example.com"), 90, message="the markdown campaign")
    message = message_from_bytes(smtp_server.received["md@example.com"][0], policy=policy.default)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<h1>Hi Ada</h1>" in html and "<strong>Oslo</strong>" in html and "/unsubscribe/" in html
    assert "Hi Ada" in text and "Oslo" in text
