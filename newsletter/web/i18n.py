"""Which language a page is shown in: Flask-Babel with our locale selector.

A page about a known subscriber (a link with their token) sets `use_language` to theirs;
otherwise the language a person chose with the switch in the page footer (a cookie, see
`auth.choose_language`), else the browser's Accept-Language among the languages we ship, else English.
The API (/api/) is always English: its words are part of its contract.
Mail is rendered under `flask_babel.force_locale` with the recipient's language instead.
"""
from __future__ import annotations

from flask import Flask, g, has_request_context, request
from flask_babel import Babel, get_locale, gettext, refresh
from flask_babel import lazy_gettext as _l

from ..config import ROOT
from ..services import languages
from ..services.messages import Message
from .ui_text import ui_words

babel = Babel()
# The language a person picked in the footer. A cookie, not a column on users: it also serves the
# sign-in page, and it needs no migration.
COOKIE = "ui_language"


# The enum values pages show as they are (status badges, roles, kinds): `{{ x.status.value | label }}`
# prints the value in English and its translation in other languages.
VALUE_LABELS = {
    "draft": _l("draft"), "scheduled": _l("scheduled"), "sending": _l("sending"), "paused": _l("paused"),
    "sent": _l("sent"), "cancelled": _l("cancelled"), "failed": _l("failed"), "pending": _l("pending"),
    "queued": _l("queued"), "committing": _l("committing"), "delivered": _l("delivered"),
    "running": _l("running"), "done": _l("done"), "active": _l("active"), "retired": _l("retired"),
    "completed": _l("completed"), "exited": _l("exited"),
    "unconfirmed": _l("unconfirmed"), "confirmed": _l("confirmed"), "unsubscribed": _l("unsubscribed"),
    "bounced": _l("bounced"), "complained": _l("complained"), "single": _l("single"), "double": _l("double"),
    "admin": _l("admin"), "marketer": _l("marketer"), "viewer": _l("viewer"),
    "off": _l("off"), "anonymous": _l("anonymous"), "individual": _l("individual"),
    "unsubscribed-all": _l("unsubscribed-all"), "hard-bounce": _l("hard-bounce"),
    "soft-bounces": _l("soft-bounces"), "complaint": _l("complaint"), "manual": _l("manual"),
    "hard": _l("hard"), "soft": _l("soft"), "opens": _l("opens"), "clicks": _l("clicks"),
    "form": _l("form"), "import": _l("import"), "api": _l("api"),
}


def value_label(value: object) -> str:
    """An enum value in the page's language (unknown values as they are)."""
    return str(VALUE_LABELS.get(str(value), value))


def use_language(tag: str | None) -> None:
    """Show the rest of this request in `tag` (a subscriber's language), when it is known."""
    if tag:
        g.language = languages.ui_locale(tag)
        refresh()  # drop a locale already worked out for this request


def browser_language() -> str | None:
    """The best of the languages we ship for the request's Accept-Language, None if none fits."""
    return request.accept_languages.best_match(languages.UI_LANGUAGES)


def chosen_language() -> str | None:
    """The language picked with the footer switch, None when none (or one we no longer ship)."""
    picked = request.cookies.get(COOKIE)
    return picked if picked in languages.UI_LANGUAGES else None


def select_locale() -> str:
    chosen = g.get("language")
    if chosen:
        return chosen
    if not has_request_context():  # a worker's task: mail is rendered under force_locale
        return languages.DEFAULT
    if request.path.startswith("/api/"):  # the API answers in English, whatever the browser asks
        return languages.DEFAULT
    return chosen_language() or browser_language() or languages.DEFAULT


def register(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, default_locale=languages.DEFAULT,
                   default_translation_directories=str(ROOT / "translations"))
    app.jinja_env.globals["get_locale"] = get_locale  # <html lang="..."> in pages and mail
    app.jinja_env.filters["label"] = value_label
    app.jinja_env.filters["localized"] = localized  # {{ check.detail | localized }}
    app.jinja_env.globals["ui_words"] = ui_words  # the scripts' words (static/ui_text.js)
    app.jinja_env.globals["ui_languages"] = {tag: languages.NAMES[tag] for tag in languages.UI_LANGUAGES}


def localized(text: object) -> str:
    """A service's sentence in the page's language: a Message (services/messages.py), or an error
    carrying one as `text` (ValidationError, Conflict, AccountError); other text as it is."""
    message = getattr(text, "text", text)
    if isinstance(message, Message):
        return message.localized(gettext)
    return str(getattr(text, "message", text))
