"""Admin pages for API keys: the list, create (the secret shown once), revoke."""
from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _

from ...models import Role
from ...services.accounts import api_keys
from ...services.errors import ValidationError
from ..forms import ConfirmForm
from ..i18n import localized
from ..lookups import found
from ..roles import role_required
from .forms.api_keys import ApiKeyForm

bp = Blueprint("api_keys", __name__, url_prefix="/admin/api-keys")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    return render_template("admin/api_keys/index.html", keys=api_keys.list_keys())


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new():
    """On success the page itself shows the secret: it is in no redirect, session or log."""
    form = ApiKeyForm()
    if form.validate_on_submit():
        try:
            key, raw = api_keys.create_api_key(form.name.data, Role(form.role.data))
        except ValidationError as exc:
            form.name.errors.append(localized(exc) if form.name.data.strip() else _("Name the key after what uses it."))
        else:
            response = make_response(render_template("admin/api_keys/created.html", key=key, raw=raw))
            response.headers["Cache-Control"] = "no-store"  # the Back button must not bring it back
            return response
    return render_template("admin/api_keys/form.html", form=form)


@bp.route("/<key_id>/revoke", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def revoke(key_id: str):
    """GET asks for confirmation; POST revokes (at once: the next request with it gets a 401)."""
    key = found(api_keys.get_key, key_id, "API key")
    if not key.active:
        flash(_("API key “%(name)s” was already revoked.", name=key.name), "info")
        return redirect(url_for(".index"))
    form = ConfirmForm()
    if form.validate_on_submit():
        api_keys.revoke(key.id)
        flash(_("API key “%(name)s” revoked. Requests with it now get 401.", name=key.name), "success")
        return redirect(url_for(".index"))
    return render_template("admin/api_keys/revoke.html", key=key, form=form)
