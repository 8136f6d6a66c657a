"""One set of limits on attributes: the admin form refuses what the API and imports refuse."""
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Subscriber
from newsletter.services.audience import imports
from tests.support.web import csrf_token
from tests.web.test_imports import upload


def post_new(client, key: str, kind: str, value: str):
    token = csrf_token(client.get("/admin/subscribers/new").get_data(as_text=True))
    return client.post("/admin/subscribers/new", data={
        "csrf_token": token, "email": "a@example.com", "name": "A", "status": "confirmed", "attr_rows": "1",
        "attr_key": key, "attr_type": kind, "attr_value": value})


def test_the_admin_form_refuses_an_attribute_name_the_api_refuses(app, admin_client):
    page = post_new(admin_client, "k" * 101, "number", "1")
    assert page.status_code == 200 and "An attribute name is at most 100 characters" in page.get_data(as_text=True)
    page = post_new(admin_client, "note", "text", "x" * 10_001)
    assert "Attributes are at most 10,000 characters of JSON" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0
    assert post_new(admin_client, "k" * 100, "number", "1").status_code == 302  # the limit itself is fine


def test_the_import_form_refuses_a_column_name_the_api_refuses(app, admin_client):
    response = upload(admin_client, b"email," + b"k" * 300_000 + b"\na@example.com,1\n")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "An attribute name is at most 100 characters" in page
    assert "k" * 1000 not in page  # the message names the column without echoing 300 kB
    with app.app_context():
        assert imports.recent() == []
