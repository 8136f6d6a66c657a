"""Why an import skipped a row or found it invalid, kept twice in the job's report.

`reason` is the English sentence, the one the API answers with and the invalid-rows CSV holds.
`why` is the same sentence as data: its template (the catalog's msgid) and its values, a date
as `{"date": "2026-05-04"}`, a list of values (joined with ", ") as a JSON list, a reason inside
the sentence as another template with values. The admin page says it in the page's language
with `said(row, gettext, format_date)`; a row stored before `why` existed shows its `reason`.
The reasons email-validator gives for an address it refuses are its own English text: they are
stored as a template no catalog holds, so they stay English.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from ..messages import N_, Message

SUPPRESSED_BECAUSE = {
    "unsubscribed-all": N_("Unsubscribed from every list on %(since)s; an import does not subscribe them again."),
    "hard-bounce": N_("Suppressed on %(since)s: their mail server refused the address (a hard bounce)."),
    "soft-bounces": N_("Suppressed on %(since)s: mail to it kept bouncing."),
    "complaint": N_("Suppressed on %(since)s: they reported an email as spam."),
    "manual": N_("On the suppression list since %(since)s (added by hand)."),
}
SUPPRESSED_OTHERWISE = N_("On the suppression list (%(reason)s) since %(since)s.")
LEFT = N_("Left %(lists)s; an import does not add back anyone who unsubscribed.")
LEFT_ONE = N_("“%(name)s” on %(date)s")
WITH_STORED = N_("With the attributes already stored: %(reason)s")
UNKNOWN_DATE = "?"  # a suppression without a date (none is written without one; kept as before)


def suppressed(number: int, email: str, reason: str, since: date | None) -> dict[str, Any]:
    """The report row of an address skipped because it is on the suppression list."""
    when: Any = _day(since) if since else UNKNOWN_DATE
    if reason in SUPPRESSED_BECAUSE:
        return row(number, email, Message(SUPPRESSED_BECAUSE[reason], since=when))
    return row(number, email, Message(SUPPRESSED_OTHERWISE, reason=reason, since=when))


def left(number: int, email: str, lists: list[tuple[str | int, date]]) -> dict[str, Any]:
    """The report row of a subscriber not added back to the lists (name, left on) they had left."""
    why = {"text": LEFT, "values": {  # a list of names and days, which a Message does not hold
        "lists": [{"text": LEFT_ONE, "values": {"name": name, "date": _value(when)}} for name, when in lists]}}
    return {"row": number, "email": email, "reason": _said(why, _english, date.isoformat), "why": why}


def with_stored(message: Message) -> Message:
    """Why a row is invalid once merged with the attributes its subscriber already has."""
    return Message(WITH_STORED, reason=message)


def row(number: int, email: str, message: Message) -> dict[str, Any]:
    """A report row (`row`, `email`, `reason` in English, as the CSV report has it) with its `why`."""
    return {"row": number, "email": email, "reason": str(message), "why": _stored(message)}


def said(entry: dict[str, Any], gettext: Callable[[str], str], say_date: Callable[[date], str]) -> str:
    """A report row's reason in the language of `gettext`, dates written by `say_date`."""
    why = entry.get("why")
    return _said(why, gettext, say_date) if isinstance(why, dict) else str(entry.get("reason", ""))


def _day(when: date) -> date:
    """A suppression's or a membership's timestamp: the report names its day."""
    return when.date() if isinstance(when, datetime) else when


def _english(text: str) -> str:
    return text


def _stored(message: Message) -> dict[str, Any]:
    return {"text": message.template, "values": {name: _value(value) for name, value in message.params.items()}}


def _value(value: Any) -> Any:
    if isinstance(value, Message):
        return _stored(value)
    if isinstance(value, date):
        return {"date": _day(value).isoformat()}
    return value if isinstance(value, (str, int, float)) or value is None else str(value)


def _said(why: dict[str, Any], gettext: Callable[[str], str], say_date: Callable[[date], str]) -> str:
    values = {name: _shown(value, gettext, say_date) for name, value in why.get("values", {}).items()}
    return Message(why["text"], **values).localized(gettext)


def _shown(value: Any, gettext: Callable[[str], str], say_date: Callable[[date], str]) -> Any:
    if isinstance(value, list):
        return ", ".join(str(_shown(item, gettext, say_date)) for item in value)
    if isinstance(value, dict):
        return say_date(date.fromisoformat(value["date"])) if "date" in value else _said(value, gettext, say_date)
    return value
