"""Sentences the services write for people: in English as written (the API's words, the logs), and in
the page's language when the web UI shows them.

A `Message` keeps its English template (the catalog's msgid, found by `make translations`) apart from
the values it names, so the web can translate the template and then fill it in: `str(message)` is the
English sentence, `message.localized(gettext)` the translated one. A value may itself be a Message
(a reason inside a sentence), translated the same way.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def N_(text: str) -> str:  # noqa: N802  (the gettext convention for "mark, do not translate")
    """Marks `text` for the catalog (`make translations`) without translating it: a service's labels
    are data here, and the page that shows them translates them (`_(spec.label)`)."""
    return text


class Message:
    """A sentence: its English template (`%(name)s` placeholders when it has values) and the values."""

    __slots__ = ("params", "template")

    def __init__(self, template: str, **params: Any) -> None:
        self.template = template
        self.params = params

    def localized(self, gettext: Callable[[str], str]) -> str:
        """The sentence with `gettext` applied to the template and to every Message among the values."""
        return _fill(gettext(self.template), self.params, lambda value: value.localized(gettext))

    def __str__(self) -> str:
        return _fill(self.template, self.params, str)

    def __repr__(self) -> str:
        return f"Message({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return (self.template, self.params) == (other.template, other.params)
        return str(self) == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


def _fill(template: str, params: Mapping[str, Any], nested: Callable[[Message], str]) -> str:
    # Formatted only when there are values: a sentence without any may contain a plain "%".
    if not params:
        return template
    return template % {name: nested(value) if isinstance(value, Message) else value for name, value in params.items()}
