"""Request bodies are bounded per route: about 1 MB, except CSV uploads (MAX_UPLOAD_MB) and
the editors that take a whole email. A body over the limit is a 413 page, read no further."""
from __future__ import annotations

import pytest

from newsletter.services.audience import lists
from tests.support.web import csrf_token
from tests.web.test_imports import upload

MARKER = "echo-me-back-"
BIG = MARKER + "x" * (2 * 1024 * 1024)  # 2 MB


@pytest.fixture
def public_list(app) -> int:
    with app.app_context():
        return lists.create("Weekly", "double", public=True).id


def test_an_anonymous_2mb_form_is_a_413_page_that_echoes_nothing(client, public_list):
    response = client.post(f"/subscribe/{public_list}", data={"email": "a@example.com", "name": BIG})
    page = response.get_data(as_text=True)
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert "at most 1.0 MB" in page and MARKER not in page
    assert len(page) < 20_000


def test_a_multipart_form_of_many_small_fields_is_bounded_too(client, public_list):
    """Werkzeug bounds each multipart field (MAX_FORM_MEMORY_SIZE), not their sum: the route does."""
    fields = {f"field{i}": MARKER + "y" * 400_000 for i in range(6)}
    response = client.post(f"/subscribe/{public_list}", data={"email": "a@example.com", **fields},
                           content_type="multipart/form-data")
    assert response.status_code == 413 and MARKER not in response.get_data(as_text=True)


def test_the_sign_in_form_is_bounded_before_csrf_reads_it(client):
    response = client.post("/login", data={"email": BIG, "password": "x", "csrf_token": "x"})
    assert response.status_code == 413 and MARKER not in response.get_data(as_text=True)


def test_a_body_under_the_limit_still_works(client, public_list):
    response = client.post(f"/subscribe/{public_list}", data={"email": "a@example.com", "name": "n" * 500_000})
    assert response.status_code == 400  # a form error (the name is too long), not a 413
    assert "413" not in response.get_data(as_text=True)


def test_the_import_upload_still_accepts_a_3mb_csv(admin_client):
    rows = b"".join(b"person%07d@example.com,Person %d\n" % (i, i) for i in range(110_000))
    content = b"email,name\n" + rows
    assert len(content) > 3 * 1024 * 1024
    response = upload(admin_client, content)
    assert response.status_code == 302 and "/admin/imports/" in response.location


def test_the_campaign_preview_takes_a_large_email(admin_client):
    token = csrf_token(admin_client.get("/admin/campaigns/new").get_data(as_text=True))
    html = "<p>" + "Lorem ipsum dolor sit amet. " * 60_000 + "</p>"  # 1.7 MB
    response = admin_client.post("/admin/campaigns/preview", data={
        "csrf_token": token, "subject": "Hi", "html": html, "text": "Hi"})
    assert response.status_code in (200, 422), response.status_code


def test_endpoints_named_by_the_limits_exist(app):
    """A renamed view must not silently fall back to the 1 MB limit."""
    from newsletter.web import body_limits as limits

    assert (limits.UPLOAD_ENDPOINTS | limits.CONTENT_ENDPOINTS) <= set(app.view_functions)
