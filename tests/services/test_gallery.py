"""The template gallery: committed HTML equals a fresh MJML compile, and every layout is a good email
(renders in the sandbox, ≤ 600 px, tables and inlined CSS, a text part, under Gmail's clip); saved
templates keep a campaign's body."""
import re

import pytest

from newsletter.models import BodyFormat
from newsletter.sending.html_text import html_to_text
from newsletter.sending.render import CompiledMessage
from newsletter.services.campaigns import campaigns, gallery
from newsletter.services.campaigns.context import preview_context
from newsletter.services.errors import NotFound, ValidationError

GMAIL_CLIP = 102 * 1024  # Gmail cuts messages whose HTML is larger than this
SLUGS = [item.slug for item in gallery.STARTERS]


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def test_there_are_five_layouts_of_the_kinds_asked_for():
    assert {"newsletter", "announcement", "digest", "letter", "receipt"} <= set(SLUGS)


@pytest.mark.parametrize("slug", SLUGS)
def test_the_committed_html_is_a_fresh_compile_of_its_mjml(slug):
    fresh = gallery.compile_mjml(gallery.source_path(slug).read_text(encoding="utf-8"))
    assert gallery.starter(slug).html == fresh, f"run `make gallery`: templates/gallery/{slug}.html is stale"


@pytest.mark.parametrize("slug", SLUGS)
def test_each_layout_renders_as_a_good_email(ctx, slug):
    item = gallery.starter(slug)
    campaign = {"id": 7, "name": "Gallery", "subject": item.subject, "from_name": "", "from_email": ""}
    context = preview_context(campaign, 1, "ada@example.com", "Ada", {"city": "Paris"})
    rendered = CompiledMessage(item.subject, item.html).render(context)
    html = rendered.html
    assert "Ada" in html and "ada@example.com" in html and "{{" not in html and "{%" not in html
    assert "/preview/" in html or "preview" in html  # the footer's links are the (inert) preview links
    assert "<table" in html and 'role="presentation"' in html
    # CSS inlined: the body's elements carry their styles; no web-font or other remote stylesheet.
    assert len(re.findall(r'<td[^>]* style="', html)) >= 3
    assert "fonts.googleapis" not in html and "<link" not in html
    widths = [int(w) for w in re.findall(r"(?:max-)?width:\s*(\d+)px", html)]
    widths += [int(w) for w in re.findall(r'width="(\d+)"', html)]
    assert widths and max(widths) <= 600, max(widths)
    assert 'name="viewport"' in html and "@media" in html  # responsive: columns stack on a phone
    assert 'name="color-scheme" content="light dark"' in html and "prefers-color-scheme: dark" in html
    text = html_to_text(html)
    assert "Ada" in text and len(text.split()) >= 15
    assert len(html.encode()) < GMAIL_CLIP
    assert rendered.subject == item.subject


def test_saved_templates_keep_the_campaigns_body_and_start_new_ones(ctx):
    campaign = campaigns.create(name="Mine", subject="Hi {{ subscriber.name }}", from_email="a@example.com",
                                body_format="markdown", body_source="# Hello")
    saved = gallery.save_from_campaign(campaign.id, " House style ")
    assert saved.name == "House style" and saved.body_format == BodyFormat.MARKDOWN
    assert gallery.start_values(f"saved:{saved.id}") == {
        "subject": "Hi {{ subscriber.name }}", "html": "<h1>Hello</h1>\n", "body_format": BodyFormat.MARKDOWN,
        "body_source": "# Hello"}
    assert [t.id for t in gallery.saved_templates()] == [saved.id]
    values = gallery.start_values("gallery:letter", editor="visual")
    assert values["body_format"] == BodyFormat.VISUAL and "Dear {{ subscriber.name" in values["html"]
    with pytest.raises(ValidationError):
        gallery.save_from_campaign(campaign.id, "")
    with pytest.raises(NotFound):
        gallery.start_values("gallery:nope")
    with pytest.raises(ValidationError):
        gallery.start_values("elsewhere:1")
    gallery.delete_saved(saved.id)
    assert gallery.saved_templates() == []
