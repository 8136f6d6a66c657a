"""Body formats: Markdown, rich text and visual HTML become the sent HTML with merge fields intact
and nothing that runs code; an HTML campaign is what it always was."""
import json

import pytest

from newsletter.models import BodyFormat
from newsletter.services.campaigns import campaigns
from newsletter.services.campaigns.editors import clean_html, markdown_to_html
from newsletter.services.errors import ValidationError

GOOD = dict(name="News", subject="Hello", from_email="news@example.com")
MERGE = '{{ subscriber.attributes.city | default("friend") }}'


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def test_markdown_keeps_merge_fields_byte_for_byte_and_escapes_raw_html():
    source = (f"# Hi {{{{ subscriber.name }}}}\n\nFrom *{MERGE}* with **love** 2 > 1\n\n"
              "{% if subscriber.name %}Named{% endif %}\n\n<script>alert(1)</script>\n\n"
              "[Leave]({{ unsubscribe_url }}) [bad](javascript:alert(1))\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    html = markdown_to_html(source)
    assert "<h1>Hi {{ subscriber.name }}</h1>" in html
    assert f"<em>{MERGE}</em>" in html
    assert "{% if subscriber.name %}Named{% endif %}" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="{{ unsubscribe_url }}">Leave</a>' in html
    assert "javascript:" not in html.replace("[bad](javascript:alert(1))", "")
    assert "<table>" in html and "<strong>love</strong>" in html


def test_clean_html_removes_scripts_handlers_and_script_urls_but_keeps_email_html():
    dirty = ('<table role="presentation" style="width:600px"><tr><td onclick="x()">A &amp; B '
             f'{MERGE.replace(chr(34), "&quot;")}</td></tr></table>'
             '<script>steal()</script><iframe src="https://e.example"></iframe>'
             '<a href="javascript:alert(1)">x</a><a href="{{ web_view_url }}" onmouseover="y()">web</a>'
             '<img src="data:image/png;base64,AAAA" alt="dot"><img src="data:text/html,<b>">'
             '<!--[if mso]><table><tr><td><![endif]--><style>p{color:red}</style><br>')
    html = clean_html(dirty)
    for gone in ("<script", "steal", "<iframe", "onclick", "onmouseover", "javascript:", "data:text"):
        assert gone not in html
    assert MERGE in html  # the editor's &quot; inside the tag is undone
    assert 'style="width:600px"' in html and "A &amp; B" in html
    assert '<a href="{{ web_view_url }}">web</a>' in html
    assert 'src="data:image/png;base64,AAAA"' in html
    assert "<!--[if mso]>" in html and "<style>p{color:red}</style>" in html


def test_an_html_campaign_is_unchanged_and_the_default(ctx):
    html = '<p onclick="kept()">Hi {{ subscriber.name }}</p>'
    campaign = campaigns.create(**GOOD, html=html)
    assert campaign.body_format == BodyFormat.HTML and campaign.html == html and campaign.body_source == ""


def test_a_markdown_campaign_saves_source_and_converted_html_and_previews(ctx):
    source = f"Hello **{{{{ subscriber.name }}}}** from {MERGE}"
    campaign = campaigns.create(**GOOD, body_format="markdown", body_source=source, html="<p>ignored</p>")
    assert campaign.body_source == source
    assert campaign.html == f"<p>Hello <strong>{{{{ subscriber.name }}}}</strong> from {MERGE}</p>\n"
    rendered = campaigns.render_preview(campaigns.current_values(campaign))
    assert "<strong>" in rendered.html and "friend" in rendered.html and "{{" not in rendered.html
    # A client that only knows HTML replaces the body, and the campaign becomes HTML.
    updated = campaigns.update(campaign.id, html="<p>Plain</p>")
    assert updated.body_format == BodyFormat.HTML and updated.html == "<p>Plain</p>" and updated.body_source == ""


def test_rich_text_is_cleaned_and_visual_keeps_its_project(ctx):
    rich = campaigns.create(**GOOD, body_format="richtext",
                            body_source='<p>Hi <strong>{{ subscriber.name }}</strong><img src=x onerror="x()"></p>')
    assert rich.html == '<p>Hi <strong>{{ subscriber.name }}</strong><img src="x"></p>'
    project = json.dumps({"pages": [{"component": "<p>x</p>"}]})
    visual = campaigns.create(**GOOD, body_format="visual", body_source=project,
                              html="<table><tr><td>Hi {{ subscriber.name }}<script>x()</script></td></tr></table>")
    assert visual.body_source == project
    assert visual.html == "<table><tr><td>Hi {{ subscriber.name }}</td></tr></table>"


@pytest.mark.parametrize("change, field, message", [
    ({"body_format": "wysiwyg"}, "body_format", "Choose one of: html, markdown, richtext, visual."),
    ({"body_format": "markdown", "body_source": ""}, "body_source", "Write the email"),
    ({"body_format": "markdown", "body_source": "Hi {{ subscriber.__class__ }}"}, "body_source", "not allowed"),
    ({"body_format": "markdown", "body_source": "{% if %}"}, "body_source", "Template error"),
    ({"body_format": "visual", "body_source": "{not json", "html": "<p>x</p>"}, "body_source", "not valid JSON"),
    ({"body_format": "visual", "body_source": "[1]", "html": "<p>x</p>"}, "body_source", "JSON object"),
    ({"body_format": "visual", "body_source": "{}", "html": ""}, "html", "Write the email"),
    ({"body_format": "markdown", "body_source": 5}, "body_source", "must be a string"),
])
def test_bad_bodies_are_refused_naming_the_field(ctx, change, field, message):
    with pytest.raises(ValidationError) as error:
        campaigns.create(**GOOD, **change)
    assert error.value.field == field
    assert message in error.value.message
