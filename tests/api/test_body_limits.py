"""Request bodies on the API: about 1 MB (8 MB where a whole email is sent, MAX_UPLOAD_MB for
CSV imports), a 413 problem beyond; and a notification's `data` is capped at 64 KB of JSON."""
from __future__ import annotations

import io

from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Notification

PROBLEM = "application/problem+json"
RESET = {"to": "ada@example.com", "subject": "Hi {{ name }}", "text": "Hello {{ name }}"}


def test_a_2mb_json_body_is_a_413_problem(api):
    response = api.post("/api/v1/lists", json={"name": "Weekly", "description": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413 and response.mimetype == PROBLEM
    assert "at most 1.0 MB" in response.get_json()["detail"]


def test_a_template_of_a_large_email_still_fits(api):
    html = "<p>" + "Lorem ipsum dolor sit amet. " * 35_000 + "</p>"  # ~1 MB of HTML, ~2 MB with the text part
    response = api.post("/api/v1/templates", json={"name": "Long", "subject": "Long read", "html": html,
                                                   "text": "Lorem ipsum dolor sit amet. " * 35_000})
    assert response.status_code == 201, response.get_json()


def test_the_import_api_still_accepts_a_3mb_csv(api):
    content = b"email,name\n" + b"".join(b"person%07d@example.com,Person %d\n" % (i, i) for i in range(110_000))
    assert len(content) > 3 * 1024 * 1024
    response = api.post("/api/v1/imports", data={"file": (io.BytesIO(content), "people.csv")},
                        content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()


def test_notification_data_over_64kb_is_a_422_naming_data(app, api):
    response = api.post("/api/v1/notifications", json={**RESET, "data": {"name": "Ada", "blob": "z" * 100_000}})
    assert response.status_code == 422 and response.mimetype == PROBLEM
    errors = response.get_json()["errors"]
    assert [e["field"] for e in errors] == ["data"] and "64 KB" in errors[0]["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_notification_data_under_the_cap_is_accepted(api):
    response = api.post("/api/v1/notifications", json={**RESET, "data": {"name": "Ada", "blob": "z" * 50_000}})
    assert response.status_code == 202, response.get_json()
