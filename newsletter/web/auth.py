"""Sign in and out (failed sign-ins are throttled per IP here, per account and device in login_guard)."""
from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..models import User
from ..services import languages
from ..services.accounts import login_guard, users
from . import i18n
from .forms import ConfirmForm, LoginForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: an open redirect would make our login a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("admin.dashboard")


def _wait(seconds: int) -> str:
    if seconds < 120:
        return ngettext("%(num)s second", "%(num)s seconds", seconds)
    return _("%(minutes)s minutes", minutes=math.ceil(seconds / 60))  # 2 or more


def _throttled(form: LoginForm, exc: users.LoginThrottled) -> Any:
    wait = _wait(exc.retry_after)
    if exc.scope == "account":
        message = _("Too many failed sign-ins for this account from devices it was not used on. Sign in from a "
                    "device you signed in with before, try again in %(wait)s, or ask an admin to reset your "
                    "password.", wait=wait)
    else:
        message = _("Too many failed sign-ins for this account from here. Try again in %(wait)s.", wait=wait)
    form.password.errors.append(message)
    response = make_response(render_template("auth/login.html", form=form), 429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _signed_in(user: User, client: login_guard.Client, remember: bool) -> Any:
    target = _safe_next(request.args.get("next"))
    # A fresh session: nothing planted before sign-in (above all a CSRF token an attacker
    # fixed in the victim's browser) carries over into the signed-in one.
    session.clear()
    login_user(user, remember=remember)
    response = redirect(target)
    # Lets this browser past the per-account lock that others' failed guesses may set off.
    response.set_cookie(login_guard.DEVICE_COOKIE, login_guard.device_cookie(client, user.email),
                        max_age=login_guard.DEVICE_MAX_AGE, path=url_for("auth.login"), httponly=True,
                        samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        client = login_guard.Client(get_remote_address(), request.cookies.get(login_guard.DEVICE_COOKIE, ""))
        try:
            user = users.authenticate(form.email.data, form.password.data, client)
        except users.LoginThrottled as exc:
            return _throttled(form, exc)
        if user is not None:
            return _signed_in(user, client, form.remember.data)
        form.password.errors.append(_("Wrong email or password, or the account is deactivated."))
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    if ConfirmForm().validate_on_submit():
        users.sign_out(current_user.id)  # the old session and remember cookies stop working, server-side
        session.clear()
        logout_user()
        flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def choose_language():
    """The footer's language switch: remembered in a cookie for a year, for every page without a
    subscriber's own language (the admin UI and the sign-in page)."""
    response = redirect(_safe_next(request.form.get("next")))
    if not ConfirmForm().validate_on_submit():
        return response
    picked = request.form.get("language", "")
    if picked in languages.UI_LANGUAGES:
        response.set_cookie(i18n.COOKIE, picked, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    elif not picked:
        response.delete_cookie(i18n.COOKIE)  # "" = follow the browser again
    else:
        flash(_("Language: “%(value)s” is not one of the languages offered.", value=picked[:40]), "error")
    return response


@bp.get("/")
def index():
    return redirect(url_for("admin.dashboard") if current_user.is_authenticated else url_for("auth.login"))
