"""Which language a page is shown in: Flask-Babel with our locale selector.

A page about a known subscriber (a link with their token) sets `use_language` to theirs;
otherwise the browser's Accept-Language decides among the languages we ship, else English.
Mail is rendered under `flask_babel.force_locale` with the recipient's language instead.
"""
from __future__ import annotations

from flask import Flask, g, has_request_context, request
from flask_babel import Babel, get_locale, refresh

from ..config import ROOT
from ..services import languages

babel = Babel()


def use_language(tag: str | None) -> None:
    """Show the rest of this request in `tag` (a subscriber's language), when it is known."""
    if tag:
        g.language = languages.ui_locale(tag)
        refresh()  # drop a locale already worked out for this request


def browser_language() -> str | None:
    """The best of the languages we ship for the request's Accept-Language, None if none fits."""
    return request.accept_languages.best_match(languages.UI_LANGUAGES)


def select_locale() -> str:
    chosen = g.get("language")
    if chosen:
        return chosen
    if not has_request_context():  # a worker's task: mail is rendered under force_locale
        return languages.DEFAULT
    return browser_language() or languages.DEFAULT


def register(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, default_locale=languages.DEFAULT,
                   default_translation_directories=str(ROOT / "translations"))
    app.jinja_env.globals["get_locale"] = get_locale  # <html lang="..."> in pages and mail
