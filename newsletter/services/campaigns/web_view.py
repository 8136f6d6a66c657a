"""The public web view's document: the rendered email as a page of its own, with a `<title>` (its
subject) and a language on `<html>` when the email has none."""
from __future__ import annotations

import re
from html import escape

_TITLE = re.compile(r"<title\b[^>]*>\s*[^<\s]", re.IGNORECASE)  # a title with some text in it
_EMPTY_TITLE = re.compile(r"<title\b[^>]*>\s*</title\s*>", re.IGNORECASE)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_HTML = re.compile(r"<html\b([^>]*)>", re.IGNORECASE)
_LANG = re.compile(r"\slang\s*=", re.IGNORECASE)
_DOCTYPE = re.compile(r"\s*<!doctype[^>]*>", re.IGNORECASE)
# The campaign's language is not known: "und" (undetermined, BCP 47) says so to screen readers,
# which otherwise guess from the browser (as the gallery layouts, compiled by MRML, also do).
_UNKNOWN_LANG = ' lang="und"'


def as_page(html: str, subject: str) -> str:
    """Browsers name the tab, history and bookmarks after <title>; a body written without a layout
    has none. The subject goes in (escaped) unless the email already names itself."""
    tag = f"<title>{escape(subject.strip() or 'Newsletter')}</title>"
    if root := _HTML.search(html):
        if not _LANG.search(root.group(1)):
            html = html[:root.end() - 1] + _UNKNOWN_LANG + html[root.end() - 1:]
    if _TITLE.search(html):
        return html
    if _EMPTY_TITLE.search(html):
        return _EMPTY_TITLE.sub(lambda _: tag, html, count=1)
    if head := _HEAD.search(html):
        return html[:head.end()] + tag + html[head.end():]
    if root := _HTML.search(html):
        return html[:root.end()] + f"<head>{tag}</head>" + html[root.end():]
    doctype = _DOCTYPE.match(html)
    at = doctype.end() if doctype else 0
    return (html[:at] if doctype else "<!doctype html>") + f"<html{_UNKNOWN_LANG}><head>{tag}</head>\n" + html[at:]
