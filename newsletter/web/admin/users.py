"""Admin pages for users: the list, invite, change role, deactivate/reactivate, reset password."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ...models import Role, User
from ...services.accounts import users
from ..forms import ConfirmForm
from ..i18n import localized, value_label
from ..lookups import found
from ..roles import role_required
from .forms.users import ROLE_HINTS, NewUserForm, PasswordForm, RoleForm

bp = Blueprint("users", __name__, url_prefix="/admin/users")


def _show_password_once(user: User, password: str, reset: bool) -> Any:
    """The generated password is in this page only: no redirect, flash, session or log carries it."""
    response = make_response(render_template("admin/users/password.html", user=user, password=password, reset=reset))
    response.headers["Cache-Control"] = "no-store"  # the Back button must not bring it back
    return response


def _detail(user: User, active_error: str = "", **forms: Any) -> Any:
    forms.setdefault("role_form", RoleForm(role=user.role.value, formdata=None))
    forms.setdefault("password_form", PasswordForm(formdata=None))
    forms.setdefault("active_form", ConfirmForm(formdata=None))
    return render_template("admin/users/detail.html", user=user, hints=ROLE_HINTS, active_error=active_error,
                           **forms)


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    return render_template("admin/users/index.html", users=users.all_users(), form=ConfirmForm())


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user, generated = users.invite(form.email.data, form.name.data, Role(form.role.data), form.password.data)
        except users.AccountError as exc:
            getattr(form, exc.field).errors.append(localized(exc))
        else:
            if generated:
                return _show_password_once(user, generated, reset=False)
            flash(_("User %(email)s created. Give them their password through a channel you trust.",
                    email=user.email), "success")
            return redirect(url_for(".index"))
    return render_template("admin/users/form.html", form=form, hints=ROLE_HINTS)


@bp.get("/<user_id>")
@role_required(Role.ADMIN)
def detail(user_id: str):
    return _detail(found(users.get, user_id, "user"))


@bp.post("/<user_id>/role")
@role_required(Role.ADMIN)
def change_role(user_id: str):
    user = found(users.get, user_id, "user")
    form = RoleForm()
    if not form.validate_on_submit():
        return _detail(user, role_form=form)
    before = user.role
    try:
        users.change_role(user.id, Role(form.role.data), by_user_id=current_user.id)
    except users.AccountError as exc:
        form.role.errors = [*form.role.errors, localized(exc)]
        return _detail(user, role_form=form)
    if user.role != before:
        flash(_("%(email)s is now %(role)s.", email=user.email, role=value_label(user.role.value)), "success")
    return redirect(url_for(".detail", user_id=user.id))


@bp.post("/<user_id>/active")
@role_required(Role.ADMIN)
def toggle_active(user_id: str):
    """Deactivate an active user (their open sessions end at their next request), or reactivate."""
    user = found(users.get, user_id, "user")
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            users.set_active(user.id, not user.active, by_user_id=current_user.id)
        except users.AccountError as exc:
            return _detail(user, active_error=localized(exc))
        flash(_("%(email)s reactivated.", email=user.email) if user.active else
              _("%(email)s deactivated: their sessions have ended.", email=user.email), "success")
    return redirect(url_for(".detail", user_id=user.id))


@bp.post("/<user_id>/password")
@role_required(Role.ADMIN)
def reset_password(user_id: str):
    user = found(users.get, user_id, "user")
    form = PasswordForm()
    if not form.validate_on_submit():
        return _detail(user, password_form=form)
    try:
        generated = users.reset_password(user.id, form.password.data)
    except users.AccountError as exc:
        form.password.errors = [*form.password.errors, localized(exc)]
        return _detail(user, password_form=form)
    if generated:
        return _show_password_once(user, generated, reset=True)
    flash(_("Password of %(email)s changed.", email=user.email), "success")
    return redirect(url_for(".detail", user_id=user.id))
