"""Errors services raise for bad input; the web and API turn them into 4xx answers.

Their sentence is a `Message` (services/messages.py): `message` is the English text the API answers
with, `text` what the web UI translates. Write the sentence as a template with named values,
`ValidationError("port", "Must be between %(low)s and %(high)s.", low=1, high=65535)`, never as an
f-string: the template is the catalog's msgid (`make translations` finds it).
"""
from __future__ import annotations

from typing import Any

from .messages import N_, Message


class FieldError(ValueError):
    """A refusal that names the input it is about: `field`, `message` (English), `text` (the Message,
    for the page's language). Raise one of its kinds below, not this."""

    def __init__(self, field: str, message: str | Message, **params: Any) -> None:
        self.text = message if isinstance(message, Message) else Message(message, **params)
        self.message = str(self.text)
        ValueError.__init__(self, self.message)
        self.field = field


class ValidationError(FieldError):
    """Input refused; `field` names it so forms and the API can point at it."""


# What a NotFound names, marked for the catalog (`make translations`): the web UI's 404 page says
# it in the page's language ("Kampagne mit der ID 5 gibt es nicht."), the API in English.
THINGS = (N_("API key"), N_("automation"), N_("campaign"), N_("delivery"), N_("DKIM key"), N_("gallery template"),
          N_("import"), N_("layout"), N_("link"), N_("list"), N_("notification"), N_("segment"),
          N_("sending server"), N_("step"), N_("subscriber"), N_("template"), N_("user"), N_("webhook"),
          N_("webhook delivery"))


class NotFound(LookupError):
    def __init__(self, what: str, ident: object) -> None:
        self.text = Message("No %(what)s with id %(ident)s.", what=Message(what), ident=ident)
        self.message = str(self.text)
        super().__init__(self.message)
        self.what = what
        self.ident = ident


class Conflict(FieldError):
    """The request clashes with existing data (an address already present, say)."""


class StateConflict(Conflict, ValidationError):
    """The thing is in the wrong state for this (a sent campaign edited, say): a 409 for the
    API, and still a ValidationError on `field` for the forms that show it."""
