"""Campaign body formats: the source each editor works on, turned into the HTML that is sent.

`html` is always what goes out; these turn the editor's source into it on save, before the
usual checks (sandboxed Jinja2 compile and sample render, CSS inlining at compile time):

- html: the HTML as written (no separate source);
- markdown: CommonMark (+ tables, strikethrough) with raw HTML escaped, not passed through;
- richtext: the rich-text editor's HTML, cleaned (below);
- visual: the visual editor's exported HTML, cleaned; the source is its project JSON, which only
  the editor in the browser can turn into HTML, so the client sends both.

Merge fields survive every conversion byte for byte: Jinja tags are parked before Markdown
sees them, and the entities an editor puts inside a tag (`&quot;`, `&gt;`) are undone.
"""
from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

from markdown_it import MarkdownIt

from ...models import BodyFormat
from ..errors import ValidationError

MAX_SOURCE = 1_000_000  # characters, as the API allows for the HTML body

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_PARKED = re.compile(r"JINJAMERGE(\d+)X")
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable(["table", "strikethrough"])


def body_format(value: Any) -> BodyFormat:
    """A format by name; absent: html (clients that predate formats keep today's contract)."""
    if value is None or value == "":
        return BodyFormat.HTML
    try:
        return BodyFormat(value)
    except ValueError:
        raise ValidationError("body_format", "Choose one of: %(value)s.",
                              value=', '.join(f.value for f in BodyFormat)) from None


def body_html(values: Mapping[str, Any]) -> tuple[BodyFormat, str, str]:
    """(format, source, html) for a campaign's `body_format`, `body_source` and `html` values."""
    fmt = body_format(values.get("body_format"))
    html = values.get("html") or ""
    if fmt == BodyFormat.HTML:
        return fmt, "", html
    source = values.get("body_source")
    if source is None:
        source = ""
    if not isinstance(source, str):
        raise ValidationError("body_source", "The body source must be a string.")
    if len(source) > MAX_SOURCE:
        raise ValidationError("body_source", "The body source is longer than %(limit)s characters.",
                              limit=format(MAX_SOURCE, ','))
    if fmt == BodyFormat.MARKDOWN:
        return fmt, source, markdown_to_html(source)
    if fmt == BodyFormat.RICHTEXT:
        return fmt, source, clean_html(source)
    _check_project(source)
    return fmt, source, clean_html(html)


def _check_project(source: str) -> None:
    if not source.strip():
        return  # HTML only (an API client that has no project): it is kept as the body
    try:
        project = json.loads(source)
    except ValueError as exc:
        raise ValidationError("body_source", "The visual editor's project is not valid JSON: %(exc)s.",
                              exc=exc) from None
    if not isinstance(project, dict):
        raise ValidationError("body_source", "The visual editor's project must be a JSON object.")


def markdown_to_html(source: str) -> str:
    """Markdown to HTML with raw HTML escaped; Jinja tags kept exactly as written."""
    tags: list[str] = []

    def park(match: re.Match) -> str:
        tags.append(match.group(0))
        return f"JINJAMERGE{len(tags) - 1}X"

    rendered = _MARKDOWN.render(_JINJA.sub(park, source))
    return _PARKED.sub(lambda m: tags[int(m.group(1))] if int(m.group(1)) < len(tags) else m.group(0), rendered)


def restore_merge_fields(html: str) -> str:
    """Undo the entities an HTML serialiser put inside Jinja tags (`{{ f(&quot;x&quot;) }}`)."""
    return _JINJA.sub(lambda m: html_lib.unescape(m.group(0)), html)


# Cleaning -------------------------------------------------------------------------------------

# Elements that run code, load other documents or change where forms and links go: removed with
# their content. Event handler attributes and script URLs go too. Everything else (tables,
# inline styles, Outlook's conditional comments) stays: this is email HTML, not a whitelist.
_DROPPED = frozenset({"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "form",
                      "input", "button", "textarea", "select", "noscript", "template", "svg", "math"})
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "background", "poster", "xlink:href"})
_BAD_URL = re.compile(r"^\s*(javascript|vbscript|data(?!:image/(png|gif|jpe?g|webp);))\s*:", re.I)
_VOID = frozenset({"area", "br", "col", "hr", "img", "link", "meta", "param", "source", "track", "wbr"})


class _Cleaner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.skipping: list[str] = []  # open dropped elements: their content goes too
        self.raw = False  # inside <style>: the CSS as written

    def _attrs(self, attrs: list[tuple[str, str | None]]) -> str:
        kept = []
        for name, value in attrs:
            name = name.lower()
            if name.startswith("on") or name == "srcdoc":
                continue
            if value is None:
                kept.append(f" {name}")
                continue
            if name in _URL_ATTRS and _BAD_URL.match(_JINJA.sub("", value)):
                continue
            if name == "style" and re.search(r"expression\s*\(|url\s*\(\s*['\"]?\s*javascript:", value, re.I):
                continue
            kept.append(f' {name}="{html_lib.escape(value, quote=True)}"')
        return "".join(kept)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            if tag not in _VOID and tag not in ("input", "base"):
                self.skipping.append(tag)
            return
        if self.skipping:
            return
        self.raw = tag == "style"
        self.out.append(f"<{tag}{self._attrs(attrs)}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED or self.skipping:
            return
        self.out.append(f"<{tag}{self._attrs(attrs)} />")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in _DROPPED or tag in _VOID:
            return
        self.raw = False
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data if self.raw else html_lib.escape(data, quote=False))

    def handle_entityref(self, name: str) -> None:
        if not self.skipping:
            self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if not self.skipping:
            self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        if not self.skipping:  # Outlook's <!--[if mso]> blocks live in comments
            self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")


def clean_html(html: str) -> str:
    """Editor HTML without scripts, frames, forms, event handlers or script URLs; merge fields intact."""
    cleaner = _Cleaner()
    cleaner.feed(html)
    cleaner.close()
    return restore_merge_fields("".join(cleaner.out))
