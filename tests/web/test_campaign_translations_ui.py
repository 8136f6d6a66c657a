"""The campaign form's translations section: add a language, edit it, refuse a broken one, remove it."""
from __future__ import annotations

from newsletter.services.campaigns import campaigns, translations
from tests.support.web import post_form
from tests.web.test_campaigns_ui import NEW, _form

ROW = "translations-{}-{}"


def _row(n: int, language: str = "", subject: str = "", body: str = "", remove: bool = False) -> dict:
    data = {ROW.format(n, "language"): language, ROW.format(n, "subject"): subject, ROW.format(n, "body"): body}
    if remove:
        data[ROW.format(n, "remove")] = "y"
    return data


def _translations(app, campaign_id: int) -> dict:
    with app.app_context():
        return translations.of(campaign_id)


def test_add_edit_refuse_and_remove_a_translation(app, admin_client):
    page = admin_client.get(NEW).get_data(as_text=True)
    assert "Translations" in page and 'name="translations-0-language"' in page  # the empty row to add one
    german = _row(0, "DE", "Hallo {{ subscriber.name }}", "<p>Hallo!</p>")
    response = post_form(admin_client, NEW, NEW, {**_form(), **german, **_row(1)})
    assert response.status_code == 302, response.get_data(as_text=True)
    campaign_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    assert _translations(app, campaign_id) == {
        "de": {"subject": "Hallo {{ subscriber.name }}", "body": "<p>Hallo!</p>"}}

    edit = f"/admin/campaigns/{campaign_id}/edit"
    form = admin_client.get(edit).get_data(as_text=True)
    assert 'value="de"' in form and "&lt;p&gt;Hallo!&lt;/p&gt;" in form and 'name="translations-1-language"' in form

    broken = post_form(admin_client, edit, edit, {**_form(), **_row(0, "de", "Hallo", "<p>ok</p>"),
                                                  **_row(1, "fr", "Bonjour", "{% if %}")})
    assert broken.status_code == 200
    html = broken.get_data(as_text=True)
    assert "Translation fr:" in html and 'class="field-error" role="alert"' in html
    assert len(_translations(app, campaign_id)) == 1  # nothing half-saved

    no_language = post_form(admin_client, edit, edit, {**_form(), **_row(0, "", "Hallo", "<p>x</p>")})
    assert "A translation needs a language" in no_language.get_data(as_text=True)

    removed = post_form(admin_client, edit, edit, {**_form(), **_row(0, "de", "Hallo", "<p>Hallo!</p>", remove=True)})
    assert removed.status_code == 302
    assert _translations(app, campaign_id) == {}
    with app.app_context():
        assert campaigns.get(campaign_id).name == "June news"
