"""Admin pages: Settings → Sending servers (list with live state, add, edit, test, enable/disable, delete)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ...models import Role, SendingServer
from ...services import settings
from ...services.delivery import servers
from ...services.errors import Conflict
from ..forms import ConfirmForm
from ..i18n import localized
from ..lookups import found
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.servers import ServerForm

bp = Blueprint("servers", __name__, url_prefix="/admin/settings/servers")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    rows = servers.all_servers()
    return render_template("admin/servers/index.html", servers=rows, states=servers.states(rows),
                           builtin=settings.smtp(), form=ConfirmForm(),
                           notify_pool=settings.get("NOTIFY_POOL"), throttles=settings.get("DOMAIN_THROTTLES"))


def _save(form: ServerForm, server_id: int | None = None) -> SendingServer | None:
    values = form.values()
    if form.clear_password.data:
        values["password"] = settings.CLEAR
    return saved_or_form_error(form, lambda: servers.save(values, server_id))


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new():
    form = ServerForm()
    if form.validate_on_submit() and (saved := _save(form)):
        flash(_("Sending server %(name)s added to the pool %(pool)s. Test its connection below.",
                name=saved.name, pool=saved.pool), "success")
        return redirect(url_for(".index"))
    return render_template("admin/servers/form.html", form=form, server=None), 400 if form.errors else 200


@bp.route("/<server_id>/edit", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit(server_id: str):
    server = found(servers.get, server_id, "sending server")
    form = ServerForm(obj=server)
    if form.validate_on_submit() and (saved := _save(form, server.id)):
        flash(_("Sending server %(name)s saved. Every worker uses it within a second.", name=saved.name), "success")
        return redirect(url_for(".index"))
    form.password.data = ""
    return render_template("admin/servers/form.html", form=form, server=server), 400 if form.errors else 200


@bp.post("/<server_id>/test")
@role_required(Role.ADMIN)
def test(server_id: str):
    """Connect, TLS and log in as a send would; the server's own words when it refuses.
    `default`: the Settings page's server."""
    server = None if server_id == "default" else found(servers.get, server_id, "sending server")
    name = server.name if server else "default"
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
    elif problem := servers.verify(server.id if server else None):
        flash(_("%(name)s: the server did not accept us: %(problem)s", name=name, problem=problem), "error")
    else:
        flash(_("%(name)s: connected and logged in.", name=name), "success")
    return redirect(url_for(".index"))


@bp.post("/<server_id>/enable")
@role_required(Role.ADMIN)
def enable(server_id: str):
    return _toggle(server_id, True)


@bp.post("/<server_id>/disable")
@role_required(Role.ADMIN)
def disable(server_id: str):
    return _toggle(server_id, False)


@bp.post("/<server_id>/delete")
@role_required(Role.ADMIN)
def delete(server_id: str):
    server = found(servers.get, server_id, "sending server")
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; try again."), "error")
    else:
        try:
            flash(_("Sending server %(delete)s deleted.", delete=servers.delete(server.id)), "success")
        except Conflict as exc:
            flash(localized(exc), "error")
    return redirect(url_for(".index"))


def _toggle(server_id: str, enabled: bool):
    server = found(servers.get, server_id, "sending server")
    if ConfirmForm().validate_on_submit():
        servers.set_enabled(server.id, enabled)
        flash(_("%(name)s enabled.", name=server.name) if enabled else
              _("%(name)s disabled: nothing more goes through it.", name=server.name), "success")
    else:
        flash(_("The form expired; try again."), "error")
    return redirect(url_for(".index"))
