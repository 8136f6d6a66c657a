"""One rule for the short one-line texts people type: names, subjects, from-names.

Such a text ends up in email headers, email bodies and admin pages. Line breaks could inject
headers; other control characters (NUL, escape sequences, Unicode line separators, bidi
overrides that reverse how a name reads) serve no person and only hide what a text says.
"""
from __future__ import annotations

import re
from typing import Any

from .errors import ValidationError
from .messages import N_, Message

# C0 and C1 controls (tab, CR and LF included), DEL, the Unicode line and paragraph separators,
# and the bidi embedding/override/isolate controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def one_line(value: Any, field: str, limit: int = 200, *, required: bool = False, label: str = N_("This field")) -> str:
    """`value` stripped, or ValidationError naming `field` (control characters, empty, too long)."""
    value = (value or "").strip() if isinstance(value, str) or value is None else str(value).strip()
    if "\r" in value or "\n" in value:
        raise ValidationError(field, "Line breaks are not allowed here (they could inject email headers).")
    if has_control(value):
        raise ValidationError(field, "Control characters are not allowed here.")
    if required and not value:
        raise ValidationError(field, "%(label)s is required.", label=Message(label))
    if len(value) > limit:
        raise ValidationError(field, "%(label)s is at most %(limit)s characters.", label=Message(label), limit=limit)
    return value


def escape_like(text: str) -> str:
    """What someone typed into a search box, as a LIKE pattern's literal part (with `escape="\\"`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
