"""Language tags: a subscriber's or a translation's language, checked and written one way.

A tag is a short BCP 47 tag: a primary language (2-3 letters) and an optional region
("pt-BR", "es-419") or script ("zh-Hant"), stored normalised ("DE_at" -> "de-AT"). Any
well-formed tag is kept (a campaign may be translated into a language the pages are not);
`ui_locale` maps it onto the languages our own text is translated into.
"""
from __future__ import annotations

import re
from collections.abc import Collection

from .errors import ValidationError

DEFAULT = "en"
# The languages the platform's own text (system emails, public pages, admin) ships in: the catalogs
# under translations/ (make translations).
UI_LANGUAGES = ("en", "de")
NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "it": "Italiano",
         "nl": "Nederlands", "pt": "Português", "pt-BR": "Português (Brasil)", "pl": "Polski"}
MAX_LENGTH = 16
_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?$")


def normalize(value: str | None, field: str = "language") -> str | None:
    """The tag normalised, None for empty; ValidationError for anything that is not a short tag."""
    value = (value or "").strip()
    if not value:
        return None
    match = _TAG.match(value) if len(value) <= MAX_LENGTH else None
    if match is None:
        raise ValidationError(field, "“%(value)s” is not a language tag: use one like en, de or pt-BR.",
                                     value=value[:40])
    language, script, region = match.groups()
    return "-".join(part for part in (language.lower(), script and script.title(), region and region.upper())
                    if part)


def fallbacks(tag: str | None) -> list[str]:
    """The tags to try for `tag`, most specific first: "pt-BR" -> ["pt-BR", "pt"]."""
    if not tag:
        return []
    primary = tag.split("-", 1)[0]
    return [tag] if primary == tag else [tag, primary]


def pick(tag: str | None, available: Collection[str]) -> str | None:
    """The best of `available` (a dict or set: looked up, never copied) for `tag`: exact, then its
    primary language; None when none fits."""
    if not tag:
        return None
    if tag in available:
        return tag
    primary = tag.split("-", 1)[0]
    return primary if primary != tag and primary in available else None


def ui_locale(tag: str | None) -> str:
    """The language our own text is shown in for `tag` ("de-AT" -> "de", "fr" -> "en")."""
    return pick(tag, UI_LANGUAGES) or DEFAULT


def choices(current: str | None = None) -> list[tuple[str, str]]:
    """(tag, name) for a language select: the known names, and `current` if it is another."""
    options = sorted(NAMES.items(), key=lambda item: item[1])
    if current and current not in NAMES:
        options.append((current, current))
    return options
