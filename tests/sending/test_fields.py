"""What templates read (attribute uses, guards, unknown names) and template errors in the marketer's words."""
from __future__ import annotations

import pytest

from newsletter.sending.fields import default_suggestion, explain, uses
from newsletter.sending.render import RenderError, check, render_string

# one_pass (tests/conftest.py): pure functions: templates parsed in memory.
pytestmark = pytest.mark.one_pass

CONTEXT = {"subscriber": {"id": 1, "email": "ana@example.org", "name": "Ana", "attributes": {"city": "Lyon"}},
           "campaign": {"id": 7, "name": "June", "subject": "Hi"}, "unsubscribe_url": "#"}


@pytest.mark.parametrize("source, attributes", [
    ("{{ subscriber.attributes.city }}", {"city": False}),
    ('{{ subscriber.attributes["zip code"] }}', {"zip code": False}),
    ('{{ subscriber["attributes"]["city"] }}', {"city": False}),
    ('{{ subscriber.attributes.get("plan") }}', {"plan": False}),  # renders "None" when missing
    ('{{ subscriber.attributes.get("plan", "free") }}', {"plan": True}),
    ('{{ subscriber.attributes.city | default("friend") }}', {"city": True}),
    ('{{ subscriber.attributes.city | d("friend") | upper }}', {"city": True}),
    ('{{ subscriber.attributes.city | upper | default("x") }}', {"city": False}),  # upper("") is not undefined
    ("{{ subscriber.attributes.city or 'friend' }}", {"city": True}),
    ("{% if subscriber.attributes.city %}in {{ subscriber.attributes.city }}{% endif %}", {"city": True}),
    ("{% if subscriber.attributes.city is defined %}{{ subscriber.attributes.city }}{% endif %}", {"city": True}),
    ("{% if subscriber.attributes.a %}{% else %}{{ subscriber.attributes.a }}{% endif %}", {"a": False}),
    ("{% if x %}{% elif subscriber.attributes.a %}{{ subscriber.attributes.b }}{% endif %}",
     {"a": True, "b": False}),
    ("{{ subscriber.attributes.city if subscriber.attributes.city else 'here' }}", {"city": True}),
    # One unguarded read is enough for a warning, however many guarded ones there are.
    ('{{ subscriber.attributes.city | default("x") }} {{ subscriber.attributes.city }}', {"city": False}),
    ("{% for t in subscriber.attributes.tags %}{{ t }}{% endfor %}", {"tags": False}),
    ("{{ subscriber.name }} {{ campaign.subject }}", {}),
])
def test_attribute_reads_and_their_guards(source, attributes):
    assert uses([source]).attributes == attributes


def test_reads_are_collected_across_parts_and_unguarded_ones_listed():
    usage = uses(["Hi {{ subscriber.attributes.first_name }}", "", "{{ subscriber.attributes.city | default('') }}",
                  "{% if %} broken templates add nothing"])
    assert usage.unguarded == ["first_name"] and usage.attributes == {"first_name": False, "city": True}


def test_names_no_context_has_are_reported():
    usage = uses(["{{ frist_name }} {{ subscriber.nmae }} {{ campaign.titel }} {{ subscriber.email }}"
                  "{% for i in range(2) %}{{ i }}{% endfor %}{% set n = 1 %}{{ n }} {{ unsubscribe_url }}"])
    assert usage.unknown == ["campaign.titel", "frist_name", "subscriber.nmae"]


def test_the_suggested_default_is_a_template_that_renders():
    assert default_suggestion("city") == '{{ subscriber.attributes.city | default("friend") }}'
    assert default_suggestion("zip code") == '{{ subscriber.attributes["zip code"] | default("friend") }}'
    assert render_string(default_suggestion("zip code"), {"subscriber": {"attributes": {}}}) == "friend"


@pytest.mark.parametrize("source, message", [
    ("{{ subscriber.nonexistent.x }}",
     "there is no field `nonexistent`; available: id, email, name, attributes.city"),
    ('{{ subscriber["nonexistent"].x }}',
     "there is no field `nonexistent`; available: id, email, name, attributes.city"),
    ("{{ campaign.titel.x }}",
     "there is no field `campaign.titel`; available: campaign.id, campaign.name, campaign.subject"),
    ("{{ frist.name }}", "there is no field `frist`; available: subscriber, campaign, unsubscribe_url"),
    ("{{ subscriber.attributes.zip + 1 }}",
     "there is no field `attributes.zip` for this subscriber; available: id, email, name, attributes.city. "
     'Subscribers without it would break the template: write {{ subscriber.attributes.zip | default("…") }}'),
    ("{{ subscriber.attributes.city.x.y }}", "`x` is read from a text value, which has no fields"),
])
def test_undefined_errors_speak_the_marketers_language(source, message):
    with pytest.raises(RenderError) as error:
        render_string(source, CONTEXT, "html")
    assert error.value.message == f"Template error: {message} (line 1)"
    assert "dict object" not in error.value.message


def test_the_save_check_names_the_field_and_what_the_sample_has():
    sample = {"subscriber": {"id": 0, "email": "s@example.com", "name": "Sam", "attributes": {}}}
    with pytest.raises(RenderError) as error:
        check([("subject", "Hi {{ subscriber.attributes.points + 1 }}")], sample)
    assert error.value.field == "subject"
    assert "there is no field `attributes.points` for this subscriber; available: id, email, name, " \
           "attributes (none for this subscriber)" in error.value.message


def test_other_errors_are_left_as_they_are():
    assert explain("unsupported operand type(s) for +: 'int' and 'str'", [""], CONTEXT) is None
    with pytest.raises(RenderError, match="unsupported operand"):
        render_string("{{ 1 + 'a' }}", CONTEXT)
