"""No English left unmarked for translation: what `test_translations.py` cannot see, since it only
checks the strings that are marked.

Two static scans, so a POST-only flash or a rare error page is covered as well as the GET pages
`test_admin_german.py` renders:
- the web package (`newsletter/web`, without the API, whose English is its contract): text handed to
  a person (a flash, an abort's description, a page's title or text, a form error, a field's label,
  description or validator message, an HTTP error's description, a chart's words) must be a gettext
  call (`_()`, `_l()`, `ngettext()`), a `Message` or a value, never a str literal, f-string or
  `"..." % x`;
- the templates: text between tags and in the attributes a person reads (placeholder, title,
  aria-label, alt) must come from `{{ _() }}`, and so must string constants a template shows
  (`{{ "it" if one else "them" }}`, `"Emails per %d minutes" % n`, a macro's default label, a
  `title=`/`note=`/`placeholder=` argument).
"""
from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment, nodes

# one_pass (tests/conftest.py): it reads the code, not the database.
pytestmark = pytest.mark.one_pass

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "newsletter" / "web"
TEMPLATES = ROOT / "templates"
# Not the platform's own UI text: the API answers in English (its contract), /metrics is for scrapers.
NOT_UI_MODULES = {WEB / "api", WEB / "metrics.py"}
# The gallery's templates are campaigns (the marketer's language); the test email is an operator's
# delivery check the worker renders in English.
NOT_UI_TEMPLATES = ("gallery/", "emails/test_email.")

WORDS = re.compile(r"[A-Za-z][a-z]{2,}")  # a word a person reads ("Save"; not "UTC", "ID" or "%s")
# In a string constant: a capitalised word or two words ("Save", "signed in"), not an identifier
# passed along ("cancel", "primary", "html").
SENTENCE = re.compile(r"[A-Z][a-z]{2,}|[A-Za-z]{2,}[ ,;:!?]+[A-Za-z]{2,}")
# An example value the same in every language: an address, a URL, a host name.
EXAMPLE = re.compile(r"\S+@\S+|\w+://\S+|[\w-]+(\.[\w-]+)+")
TRANSLATED = {"_", "gettext", "_l", "lazy_gettext", "ngettext", "lazy_ngettext", "Message", "localized"}


def _words(text: str) -> bool:
    return WORDS.search(text) is not None


def _sentence(text: str) -> bool:
    return SENTENCE.search(text) is not None and not EXAMPLE.fullmatch(text.strip())


# Python ------------------------------------------------------------------------------------------

# Keyword arguments whose value a person reads, on any call.
TEXT_KEYWORDS = {"description", "message", "title", "text", "label", "empty", "note", "label_header",
                 "placeholder", "action"}
# Calls whose first argument a person reads: an error page's description, a validator's message.
FIRST_ARG_TEXT = {"flash", "BadRequest", "Forbidden", "NotFound", "Conflict", "RequestEntityTooLarge",
                  "DataRequired", "InputRequired", "FileRequired", "FileAllowed", "FileSize", "Length",
                  "NumberRange", "Email", "Regexp", "URL", "EqualTo", "AnyOf", "NoneOf", "StopValidation"}


def _bare(node: ast.AST) -> bool:
    """An expression that evaluates to English written right here rather than to a translation."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and _sentence(node.value)
    if isinstance(node, ast.JoinedStr):  # f"..."
        return any(_bare(part) for part in node.values)
    if isinstance(node, ast.BinOp):  # "..." % x, "..." + x
        return _bare(node.left) or _bare(node.right)
    if isinstance(node, ast.IfExp):
        return _bare(node.body) or _bare(node.orelse)
    if isinstance(node, ast.BoolOp):  # x or "..."
        return any(_bare(value) for value in node.values)
    if isinstance(node, ast.Tuple | ast.List):  # action=("Manage", url), errors = ["..."]
        return any(_bare(element) for element in node.elts)
    return False  # a call (gettext, Message, a helper), a name, an attribute: not written here


def _name(func: ast.AST) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _texts_shown(node: ast.AST) -> list[ast.AST]:
    """The parts of one node a person reads."""
    if isinstance(node, ast.Call):
        name = _name(node.func)
        if name in TRANSLATED:  # the sentence is translated; the values put into it must be too
            return [kw.value for kw in node.keywords]
        shown = [kw.value for kw in node.keywords if kw.arg in TEXT_KEYWORDS]
        if name in FIRST_ARG_TEXT and node.args:
            shown.append(node.args[0])
        if name == "abort" and len(node.args) > 1:
            shown.append(node.args[1])
        if name and name.endswith("Field") and node.args:  # a form field's label
            shown.append(node.args[0])
        if name == "SelectChoice" and len(node.args) > 1:  # (value, label)
            shown.append(node.args[1])
        if name == "append" and isinstance(node.func, ast.Attribute) and _name(node.func.value) == "errors":
            shown += node.args
        return shown
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "errors" for t in node.targets):
        return [node.value]
    if isinstance(node, ast.FunctionDef):  # a default text: def chart(..., empty="Nothing yet.")
        defaults = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
        arguments = node.args.args[len(node.args.args) - len(node.args.defaults):] + [
            a for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True) if d is not None]
        return [d for a, d in zip(arguments, defaults, strict=True) if a.arg in TEXT_KEYWORDS]
    return []


def unmarked_python(source: str, label: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        for text in _texts_shown(node):
            if _bare(text):
                found.append(f"{label}:{text.lineno}: {ast.unparse(text)[:100]}")
    return found


def _web_modules() -> list[Path]:
    return [path for path in sorted(WEB.rglob("*.py"))
            if not any(path == skip or skip in path.parents for skip in NOT_UI_MODULES)]


# Templates ---------------------------------------------------------------------------------------

# A Jinja tag, read past the "}}" or "%}" inside its strings ({{ _("…", value="{{ content }}") }}).
_INSIDE = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^'"])*?"""
JINJA = re.compile(r"\{\{" + _INSIDE + r"\}\}|\{%" + _INSIDE + r"%\}|\{#.*?#\}", re.S)
MARK = "\x00"  # stands for a Jinja expression: never a word
NOT_UI = {"code", "pre", "textarea", "script", "style", "samp"}
VISIBLE_ATTRS = {"placeholder", "title", "aria-label", "alt"}
# Attributes a person does not read: a Jinja expression inside one is not text.
CODE_ATTR = re.compile(r'\s(?:class|id|href|src|name|type|value|for|rel|method|action|style|lang|role|'
                       r'autocomplete|inputmode|list|accept|pattern|target|form|data-[\w-]+|aria-[\w-]*by)="[^"]*$')
# Filters and calls whose string arguments are code (names, formats, URLs), not text.
CODE_CALLS = {"url_for", "join", "map", "attribute", "selectattr", "rejectattr", "truncate", "format", "strftime",
              "replace", "startswith", "endswith", "get", "split", "dateformat", "default", "dictsort", "sort",
              "groupby", "isoformat", "update", "dict", "set", "static", "ChartSeries", "string", "int", "sum"}
JINJA_TEXT_KEYWORDS = TEXT_KEYWORDS | {"first_label", "next_label"}


class _Html(HTMLParser):
    """Literal text between tags and in read attributes, outside code-like elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in NOT_UI:
            self.depth += 1
        elif not self.depth:
            self.found += [(self.getpos()[0], f'{k}="{v}"') for k, v in attrs
                           if k in VISIBLE_ATTRS and v and _words(v.replace(MARK, " "))]

    def handle_endtag(self, tag):
        if tag in NOT_UI and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth and _words(data.replace(MARK, " ")):
            self.found.append((self.getpos()[0], " ".join(data.replace(MARK, "…").split())))


def _literal_html(source: str) -> list[tuple[int, str]]:
    parser = _Html()
    # Spaces around the mark: a tag with {% if %} attributes inside (<li{% if x %} class="top"{% endif %}>)
    # stays a tag.
    parser.feed(JINJA.sub(lambda m: f" {MARK} " + "\n" * m.group(0).count("\n"), source))
    return parser.found


def _shown_constants(tree: nodes.Template) -> list[tuple[int, str]]:
    """String constants in expressions a template prints, outside gettext calls and code-like places."""
    found: list[tuple[int, str]] = []

    def text(node: nodes.Node, printed: bool = False) -> str | None:
        """The constant's text if it reads as words (printed as it is: any word; passed on: a sentence)."""
        if isinstance(node, nodes.Const) and isinstance(node.value, str) \
                and (_words if printed else _sentence)(node.value) \
                and "{{" not in node.value and "{%" not in node.value:
            return node.value
        return None

    def walk(node: nodes.Node, shown: bool) -> None:
        if isinstance(node, nodes.Call | nodes.Filter):
            name = node.name if isinstance(node, nodes.Filter) else (
                getattr(node.node, "name", None) or getattr(node.node, "attr", None))
            if name in TRANSLATED:  # the sentence is translated; the values put into it must be too
                for kw in node.kwargs:
                    walk(kw.value, True)
                return
            if name in CODE_CALLS:
                return
            for kw in node.kwargs:
                if kw.key in JINJA_TEXT_KEYWORDS and (value := text(kw.value)):
                    found.append((kw.lineno, f"{kw.key}={value!r}"))
            if name == "field" and len(node.args) > 1 and (value := text(node.args[1])):  # _form.html's placeholder
                found.append((node.lineno, f"placeholder {value!r}"))
            for child in node.iter_child_nodes():
                walk(child, False)
            return
        if isinstance(node, nodes.Compare | nodes.Test | nodes.Getitem | nodes.Getattr):
            return  # comparisons and lookups: code
        if isinstance(node, nodes.Mod) and (value := text(node.left)):  # "... %d ..." % x
            found.append((node.lineno, repr(value)))
            return
        if shown and (value := text(node, printed=True)):
            found.append((node.lineno, repr(value)))
        passes = isinstance(node, nodes.CondExpr | nodes.Concat | nodes.Or | nodes.And)
        for child in node.iter_child_nodes():
            walk(child, shown if passes or isinstance(node, nodes.Output) else False)

    def output(node: nodes.Output) -> None:
        before = ""
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                before = child.data
            else:
                walk(child, not CODE_ATTR.search(before))

    for out in tree.find_all(nodes.Output):
        output(out)
    for macro in tree.find_all(nodes.Macro):  # a default label: {% macro pager(first_label="← Newest") %}
        for arg, default in zip(macro.args[len(macro.args) - len(macro.defaults):], macro.defaults, strict=True):
            if arg.name in JINJA_TEXT_KEYWORDS and (value := text(default)):
                found.append((macro.lineno, f"{arg.name}={value!r}"))
    return found


ENV = Environment(extensions=["jinja2.ext.i18n", "jinja2.ext.do", "jinja2.ext.loopcontrols"])


def unmarked_template(source: str, label: str = "<template>") -> list[str]:
    found = _literal_html(source) + _shown_constants(ENV.parse(source))
    return sorted({f"{label}:{line}: {what[:100]}" for line, what in found})


def _templates() -> list[Path]:
    return [path for path in sorted(TEMPLATES.rglob("*.html")) + sorted(TEMPLATES.rglob("*.txt"))
            if not str(path.relative_to(TEMPLATES)).startswith(NOT_UI_TEMPLATES)]


# The tests ---------------------------------------------------------------------------------------

def test_the_python_check_finds_english_written_in_place():
    code = '''
flash("Automation saved.", "success")
flash(f"Automation “{name}” created.", "success")
flash("Running." if on else "Paused.", "success")
abort(404, description="There is no such list to subscribe to.")
render_template("public/message.html", title="Welcome back", text=f"You are subscribed to {names} again.",
                action=("Manage your subscriptions", url))
form.password.errors.append("Wrong email or password.")
form.list_ids.errors = ["Tick the lists."]
file = FileField(_l("CSV file"), validators=[FileRequired("Choose a CSV file to import.")])
website = StringField("Leave this field empty")
def bar_chart(labels, *, title, empty="Nothing to show yet."): ...
flash(_("Test event queued.%(note)s", note=" It waits until you make the webhook active."), "success")
'''
    assert len(unmarked_python(code)) == 13
    marked = '''
flash(_("Automation saved."), "success")
flash(_("Automation “%(name)s” created.", name=name), "success")
flash(_("Running.") if on else _("Paused."), "success")
flash(localized(exc), "error")
abort(404, description=_("There is no such list to subscribe to."))
abort(400)
render_template("public/message.html", title=_("Welcome back"), action=(_("Manage"), url), mode="cancel")
form.password.errors.append(_("Wrong email or password."))
file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file to import."))])
def bar_chart(labels, *, title, empty=""): ...
'''
    assert unmarked_python(marked) == []


def test_the_template_check_finds_english_outside_gettext():
    english = """{% macro pager(url, first_label="← Newest") %}{% endmacro %}
<h1>You already left {{ names|join(", ") }}</h1>
<input placeholder="Sample subscriber" title="{{ _('Fine') }}">
<p>{{ "sent" if done else "ended" }}</p>
{{ field(form.subject, "Welcome, friend") }}
{{ chart(title="Emails per %d minutes" % n, note="% of sent") }}
{{ _("the others get the winner %(value)s.", value="once you pick it") }}
"""
    assert [line.split(": ", 1)[1] for line in unmarked_template(english)] == [
        "first_label='← Newest'", "You already left …", 'placeholder="Sample subscriber"', "'ended'", "'sent'",
        "placeholder 'Welcome, friend'", "'Emails per %d minutes'", "note='% of sent'", "'once you pick it'"]
    marked = """{% macro pager(url, first_label=None) %}{% endmacro %}
<h1>{{ _("You already left %(lists)s", lists=names|join(", ")) }}</h1>
<input placeholder="{{ _('Sample subscriber') }}" class="{{ 'secondary outline' if x }}">
<p>{{ _("sent") if done else _("ended") }}</p><code>{{ "{{ subscriber.name }}" }}</code>
{{ field(form.email, "you@example.com") }}
{{ chart(title=_("Emails per %(n)s minutes", n=n), note=_("%% of sent")) }}
<li{% if top %} class="top-link"{% endif %}>{{ _('The layout\\'s <code>%(v)s</code>', v="{{ content }}") }}</li>
{% if status == "Some words" %}{{ url_for('x.y', tab="two words") }}{% endif %}
"""
    assert unmarked_template(marked) == []


def test_the_web_package_marks_every_text_it_shows():
    modules = _web_modules()
    assert len(modules) > 40
    found = [hit for path in modules for hit in unmarked_python(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "mark these for translation (_() in a request, _l() at import time):\n" + "\n".join(found)


def test_the_templates_mark_every_text_they_show():
    templates = _templates()
    assert len(templates) > 80
    found = [hit for path in templates
             for hit in unmarked_template(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "mark these with {{ _() }}:\n" + "\n".join(found)
