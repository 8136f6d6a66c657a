"""Sandboxed templates: refused at save time with a line, capped at render time."""
import pytest

from newsletter.sending.render import CompiledMessage, RenderError, check, inline_css

SAMPLE = {"subscriber": {"email": "s@example.com", "name": "Sam", "attributes": {"city": "Oslo"}},
          "unsubscribe_url": "https://x.test/u?a=1&b=2"}


@pytest.mark.parametrize("source, words", [
    ("{{ ''.__class__.__mro__ }}", "__mro__"),
    ("{{ subscriber['__class__'] }}", "__class__"),
    ("{{ cycler.__init__.__globals__ }}", "__globals__"),
    ("{% set x = subscriber.__dict__ %}", "__dict__"),
])
def test_reaching_python_internals_is_refused_before_any_render(source, words):
    with pytest.raises(RenderError) as error:
        check([("html", "<p>ok</p>\n" + source)], SAMPLE)
    assert words in error.value.message and error.value.line == 2 and error.value.field == "html"


def test_syntax_and_undefined_errors_name_the_part_and_line():
    with pytest.raises(RenderError) as error:
        check([("subject", "Hi"), ("html", "<p>\n\n{% if %}</p>")], SAMPLE)
    assert (error.value.field, error.value.line) == ("html", 3)
    with pytest.raises(RenderError, match="undefined"):
        check([("text", "{{ nothing.here }}")], SAMPLE)


def test_runaway_templates_hit_the_time_and_size_caps():
    with pytest.raises(RenderError, match="took longer"):
        check([("html", "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}")],
              SAMPLE)
    with pytest.raises(RenderError, match="larger than"):
        check([("html", "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}")], SAMPLE)


def test_compiled_once_rendered_per_recipient_escaped_inlined_and_with_a_text_part():
    compiled = CompiledMessage("Hi {{ subscriber.name }}\r\nBcc: evil@example.com",
                               "<style>p{color:red}</style><p>Hi {{ subscriber.name }} in "
                               "{{ subscriber.attributes.city }} <a href=\"{{ unsubscribe_url }}\">leave</a></p>")
    first = compiled.render(SAMPLE)
    second = compiled.render({**SAMPLE, "subscriber": {"name": "<b>Eve</b>", "attributes": {}}})
    assert first.subject == "Hi Sam Bcc: evil@example.com"  # a CR/LF never survives into a subject
    assert '<p style="color: red;">Hi Sam in Oslo' in first.html
    assert 'href="https://x.test/u?a=1&amp;b=2"' in first.html
    assert "Hi Sam in Oslo leave (https://x.test/u?a=1&b=2)" in first.text
    assert "&lt;b&gt;Eve&lt;/b&gt;" in second.html and "<b>Eve</b>" in second.text


def test_css_inlining_keeps_jinja_tags_byte_for_byte():
    source = '<style>p{padding:1px}</style><p title="{{ a|default("x") }}">{% if 1 < 2 %}{{ b }}{% endif %}</p>'
    inlined = inline_css(source)
    assert '{{ a|default("x") }}' in inlined and "{% if 1 < 2 %}" in inlined and "padding: 1px" in inlined
