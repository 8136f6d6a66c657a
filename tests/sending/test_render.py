"""Sandboxed templates: refused at save time with a line, capped at render time."""
import pytest

from newsletter.sending.render import CompiledMessage, RenderError, check, inline_css, render_string

# one_pass (tests/conftest.py): pure functions: templates rendered in memory.
pytestmark = pytest.mark.one_pass

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
    with pytest.raises(RenderError, match="there is no field `nothing`; available: subscriber"):
        check([("text", "{{ nothing.here }}")], SAMPLE)


def test_runaway_templates_hit_the_time_and_size_caps():
    with pytest.raises(RenderError, match="took longer"):
        check([("html", "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}")],
              SAMPLE)
    with pytest.raises(RenderError, match="larger than"):
        check([("html", "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}")], SAMPLE)


def test_the_time_cap_counts_the_renders_own_cpu_not_a_loaded_machines_wall_clock():
    """A render that waits (here a value that takes 2.2 s to print, as a render does when a loaded
    machine gives its thread no CPU) is not a runaway template: it finishes."""
    import time

    class Slow:
        def __str__(self) -> str:
            time.sleep(2.2)
            return "Oslo"

    assert render_string("{{ city }}", {"city": Slow()}) == "Oslo"


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


# Resource limits: every way a template can grow a value or spin is stopped before the caps --------

NESTED_LOOPS = "{% set s = 'x' * 12000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
BIG = "{% set s = 'x' * 2000000 %}"  # just under the 2 MB cap


def test_loops_that_call_nothing_stop_at_the_deadline():
    with pytest.raises(RenderError) as error:
        check([("subject", "Hi"), ("html", "<p>hello</p>\n" + NESTED_LOOPS)], SAMPLE)
    assert (error.value.field, error.value.line) == ("html", 2)
    assert error.value.message == "Rendering html stopped: it took longer than 2 s (line 2)"


def test_a_huge_intermediate_value_is_refused_before_it_is_built():
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(RenderError) as error:
            CompiledMessage("Hi", "{{ (subscriber.name * 30000000)|length }}").render(SAMPLE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.value.field == "html" and "“*” would make 90,000,000 characters" in error.value.message
    assert "larger than the 2048 KB limit" in error.value.message
    assert peak < 5_000_000  # the 90 MB string was never made (the old sandbox built it, then printed "9")


@pytest.mark.parametrize("source", [
    "{{ ([subscriber.name] * 30000000)|length }}",
    BIG + "{{ ([s] * 1000)|length }}",  # a short list of references to one long string
    BIG + "{% set a = [s, s] %}{% set b = [a, a] %}{{ b|length }}",
    BIG + "{% set a = namespace(v=s) %}{% set b = namespace() %}{% set b.x = a %}{% set b.y = a %}{{ b|length }}",
    BIG + "{{ (s ~ s)|length }}",
    BIG + "{{ (s + s)|length }}",
    BIG + "{{ dict(a=s, b=s)|length }}",
    BIG + "{{ {}.fromkeys(range(1000), s)|length }}",
    "{{ (10 ** 100000000) % 7 }}",
    "{{ ('%99999999s' % 'a')|length }}",
    "{{ ('%(a)s' * 10000 % {'a': 'x' * 1000})|length }}",
    "{{ ('%.99999999f' % 1.5)|length }}",
    "{{ '%99999999s'|format('a')|length }}",
    "{{ '{:99999999}'.format('a')|length }}",
    "{{ ('{0}' * 10000).format('x' * 1000)|length }}",
    "{{ '{:{}}'.format('a', 99999999)|length }}",
    "{{ 'a'.center(99999999)|length }}",
    "{{ ('\t' * 1000).expandtabs(99999999)|length }}",
    "{{ ('a' * 10000).replace('', 'x' * 1000)|length }}",
    "{{ ('x' * 1000).join(range(10000)|map('string'))|length }}",
    "{{ ('a' * 1000).translate({97: 'x' * 100000})|length }}",
    "{{ (1).to_bytes(999999999, 'big')|length }}",
    "{{ 'a'|center(99999999)|length }}",
    "{{ ('\n' * 10000)|indent(1000)|length }}",
    "{{ ('a ' * 10000)|wordwrap(1, wrapstring='x' * 1000)|length }}",
    "{{ ('a' * 10000)|replace('', 'x' * 1000)|length }}",
    "{{ range(10000)|join('x' * 1000)|length }}",
    BIG + "{{ range(1000)|map('center', 2000000)|list|length }}",
    BIG + "{{ s|list|length }}",
    "{{ [1, 2]|batch(999999999, 'x')|list|length }}",
    "{{ [1, 2]|slice(99999999)|list|length }}",
    BIG + "{{ s|tojson(indent=8)|length }}",
    BIG + "{{ s|urlencode|length }}",
    "{{ lipsum(1000000)|length }}",
    # output buffers: a macro, a {% set %} block, a {% filter %} block, a block called again
    BIG + "{% macro m() %}{% for i in range(1000) %}{{ s }}{% endfor %}{% endmacro %}{{ m()|length }}",
    BIG + "{% set b %}{% for i in range(1000) %}{{ s }}{% endfor %}{% endset %}{{ b|length }}",
    BIG + "{% filter length %}{% for i in range(1000) %}{{ s }}{% endfor %}{% endfilter %}",
    BIG + "{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
])
def test_values_larger_than_a_part_are_refused_with_the_limit_named(source):
    with pytest.raises(RenderError) as error:
        check([("html", source)], SAMPLE)
    assert error.value.field == "html" and error.value.message.startswith("Rendering html stopped: ")
    assert "larger than" in error.value.message


@pytest.mark.parametrize("source, words", [
    ("{{ (10 ** 100000000) % 7 }}", "a number of about"),
    ("{{ [[1], [2]]|sum(start=[]) }}", "only adds numbers"),
    ("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", "nested too deeply"),
])
def test_other_runaway_operations_are_refused(source, words):
    with pytest.raises(RenderError, match=words):
        check([("text", source)], SAMPLE)


EVERYDAY = """{% macro card(title) %}<h2>{{ title|title }}</h2>{{ caller() }}{% endmacro -%}
{% set ns = namespace(total=0) %}{% set items = [('tea', 2), ('cake', 3)] %}
{% for name, price in items %}{% set ns.total = ns.total + price %}{{ loop.index }}. {{ name|upper }}
{{ '%-6s%5.2f' % (name, price) }} {{ '{:>8}'.format(name) }} {{ name|center(10) }}{% else %}none{% endfor %}
{% call card('total') %}{{ ns.total }} = {{ items|map(attribute=1)|sum }}{% endcall %}
{% set block %}Hi {{ subscriber.name ~ ' from ' ~ subscriber.attributes.city }}{% endset %}{{ block|indent(2) }}
{% filter upper %}{{ subscriber.email|replace('@', ' at ') }}{% endfilter %} {{ [1, 2] + [3] }} {{ 2 ** 10 }}
{{ ('ab' * 3)|wordwrap(2) }} {{ {'a': 1}|tojson }} {{ ['x', 'y']|join(', ') }} {{ 'x'.ljust(3) }}|
{% for row in [[1, [2, 3]], [4]] recursive %}{{ row is iterable and loop(row) or row }}{% endfor %}
{{ range(3)|batch(2, 0)|list }} {{ "%d%%"|format(20) }} {{ 7 * 6 }} {{ 10 % 4 }} {{ 'ab' % () }}"""


def test_everyday_templates_render_exactly_as_in_the_plain_sandbox():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    for autoescape in (True, False):
        expected = ImmutableSandboxedEnvironment(autoescape=autoescape).from_string(EVERYDAY).render(SAMPLE)
        rendered = render_string(EVERYDAY, SAMPLE, html=autoescape)
        assert rendered == expected and "TEA" in rendered and "5 = 5" in rendered


def test_constants_folded_at_compile_time_stay_small():
    import tracemalloc

    source = "{{ 'x'|center(2000000) }}{{ 'y' * 2000000 }}" * 25  # 1.1 KB of source
    tracemalloc.start()
    try:
        compiled = CompiledMessage("Hi", source)  # the old sandbox compiled this into 100 MB of literals
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000
    with pytest.raises(RenderError, match="larger than 2048 KB"):
        compiled.render(SAMPLE)


def test_css_inlining_keeps_media_queries_and_never_fetches_a_linked_stylesheet():
    # A fetch of this address would hang or fail the inliner; it must not be tried at all.
    source = ('<html><head><link rel="stylesheet" href="http://127.0.0.1:9/never.css"><style>p{color:red}'
              '@media (max-width:480px){p{font-size:20px!important}}'
              '@media (prefers-color-scheme: dark){p{color:#fff!important}}</style></head><body><p>x</p></body></html>')
    inlined = inline_css(source)
    assert '<p style="color: red;">x</p>' in inlined
    assert "@media (max-width:480px)" in inlined and "prefers-color-scheme: dark" in inlined


# The plain renderer (text and `{{ name.attr }}` outputs, no Jinja machinery) against Jinja itself ----

PLAIN_SOURCES = [
    "Hi {{ subscriber.name }}",
    "<p>{{ subscriber.name }} in {{ subscriber.attributes.city }} / {{ subscriber.attributes['city'] }}</p>\n",
    "{{ subscriber.attributes.missing }}|{{ nothing }}|{{ subscriber.id }}|{{ subscriber.attributes.n }}",
    "{{ subscriber.items }} {{ range }} {{ subscriber.attributes.list[1] }} {{ campaign }}",
    "<a href=\"{{ unsubscribe_url }}\">x</a>\x00nl-track:0\x00 trailing newline kept?\n\n",
    "{{ subscriber.attributes.missing.deeper }}",  # an undefined's attribute: Jinja raises
    "",
]
PLAIN_CONTEXTS = [
    SAMPLE,
    {"subscriber": {"id": 7, "name": "<b>Zoë</b> & \"co\"", "email": "z@example.com",
                    "attributes": {"city": "Köln\r\nBcc: x", "n": None, "list": [1, "<2>"]}},
     "campaign": {"id": 1, "name": "C"}, "unsubscribe_url": "https://x.test/u?a=1&b=2"},
    {"subscriber": {"name": None, "attributes": {}}},
    {},
]


@pytest.mark.parametrize("source", PLAIN_SOURCES)
def test_the_plain_renderer_makes_what_jinja_makes_or_hands_over_to_it(source):
    compiled = CompiledMessage(source, source, source)
    assert all(part.plain is not None for part in compiled.parts)
    for context in PLAIN_CONTEXTS:
        try:
            expected = compiled.render_with_jinja(context)
        except RenderError as exc:
            with pytest.raises(RenderError) as error:
                compiled.render(context)
            assert (error.value.message, error.value.line, error.value.field) == (exc.message, exc.line, exc.field)
            continue
        assert compiled.render(context) == expected


@pytest.mark.parametrize("source", ["{{ subscriber.name|upper }}", "{% if 1 %}x{% endif %}", "{{ 'a' ~ 'b' }}",
                                    "{{ subscriber.get('name') }}", "{{ subscriber[subscriber.name] }}"])
def test_anything_more_than_lookups_renders_through_jinja(source):
    compiled = CompiledMessage(source, source, source)
    assert all(part.plain is None for part in compiled.parts)
    assert compiled.render(SAMPLE) == compiled.render_with_jinja(SAMPLE)


def test_the_plain_renderer_keeps_the_size_cap_and_strict_undefined():
    from newsletter.sending.render_limits import MAX_OUTPUT

    compiled = CompiledMessage("s", "{{ subscriber.name }}{{ subscriber.name }}", "t")
    assert compiled.parts[1].plain is not None
    with pytest.raises(RenderError, match="larger than"):
        compiled.render({"subscriber": {"name": "x" * (MAX_OUTPUT // 2 + 1)}})
    strict = CompiledMessage("{{ missing }}", "<p>{{ data.x }}</p>", "", strict=True)
    with pytest.raises(RenderError, match="missing"):
        strict.render({"data": {"x": 1}})
    assert strict.render({"missing": "m", "data": {"x": "<1>"}}).html == "<p>&lt;1&gt;</p>"
