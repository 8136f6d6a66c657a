"""Sign in and out (failed sign-ins are throttled per IP here and per account in the service)."""
from __future__ import annotations

import math
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..services import users
from .forms import ConfirmForm, LoginForm

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: an open redirect would make our login a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = users.authenticate(form.email.data, form.password.data)
        except users.LoginThrottled as exc:
            minutes = math.ceil(exc.retry_after / 60)
            form.password.errors.append(
                f"Too many failed sign-ins for this account. Try again in {minutes} minute{'s' if minutes > 1 else ''}, "
                "or ask an admin to reset your password.")
            return render_template("auth/login.html", form=form), 429
        if user is None:
            form.password.errors.append("Wrong email or password, or the account is deactivated.")
        else:
            target = _safe_next(request.args.get("next"))
            # A fresh session: nothing planted before sign-in (above all a CSRF token an attacker
            # fixed in the victim's browser) carries over into the signed-in one.
            session.clear()
            login_user(user, remember=form.remember.data)
            return redirect(target)
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    if ConfirmForm().validate_on_submit():
        users.sign_out(current_user.id)  # the old session and remember cookies stop working, server-side
        session.clear()
        logout_user()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/")
def index():
    return redirect(url_for("admin.dashboard") if current_user.is_authenticated else url_for("auth.login"))
