"""The admin index pages that share templates/admin/_index.html (lists, segments, automations,
layouts): their title row's primary action and their empty state, for an editor and for a viewer."""
from __future__ import annotations

import pytest

from newsletter.models import OptIn, Role
from newsletter.services.accounts import users
from newsletter.services.audience import lists
from tests.support.web import login

PAGES = {  # path: (empty heading, the editor's first action, its target, the viewer's line)
    "/admin/lists/": ("No lists yet", "Create your first list", "/admin/lists/new",
                      "A marketer or admin can create the first list."),
    "/admin/segments/": ("No segments yet", "Build your first segment", "/admin/segments/new",
                         "A marketer or admin can build the first segment."),
    "/admin/automations/": ("No automations yet", "Create your first automation", "/admin/automations/new",
                            "A marketer or admin can create the first automation."),
    "/admin/layouts/": ("No layouts yet", "Create your first layout", "/admin/layouts/new",
                        "A marketer or admin can create the first layout."),
}


@pytest.mark.parametrize("path", PAGES)
def test_an_empty_index_says_what_to_do_next_and_who_can(app, admin_client, path):
    heading, action, target, nobody = PAGES[path]
    page = admin_client.get(path).get_data(as_text=True)
    assert f"<h2>{heading}</h2>" in page
    assert f'<a href="{target}" role="button">{action}</a>' in page and nobody not in page
    assert 'role="button">New ' not in page  # the title row's action waits for a first item

    with app.app_context():
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
    viewer = app.test_client()
    login(viewer, "viewer@example.com", "long enough password")
    page = viewer.get(path).get_data(as_text=True)
    assert f"<h2>{heading}</h2>" in page and f"<p>{nobody}</p>" in page and action not in page
    # The layouts page explains what a layout is to everyone; the others' hint is for editors.
    assert ("<p>A layout holds what every email shares" in page) == (path == "/admin/layouts/")


def test_the_title_rows_primary_action_once_there_is_something(app, admin_client):
    with app.app_context():
        lists.create("Readers", OptIn.SINGLE)
    page = admin_client.get("/admin/lists/").get_data(as_text=True)
    assert '<h1>Lists</h1>' in page and '<a href="/admin/lists/new" role="button">New list</a>' in page
    assert "No lists yet" not in page and ">Readers</a>" in page
