"""The audit log page (admins), and the hook that tells `services.audit` who is acting."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from ...models import Role
from ...services import audit
from ..lookups import parse_id
from ..roles import role_required

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")


def remember_actor() -> None:
    """Runs before every request (registered in `create_app`): services never read `request`,
    so the signed-in user and the client's address wait on `g` for `audit.record`. An API
    key is set later, by the API's own hook, and `record` reads it then."""
    if request.endpoint == "static":
        return
    g.audit_ip = request.remote_addr or ""
    if current_user.is_authenticated:
        g.audit_user_id, g.audit_actor = current_user.id, current_user.email
    else:
        g.audit_actor = "anonymous"


# Each family of audit.ACTIONS in the filter ("campaign.*"); a family added there without a name
# here is offered by its prefix.
FAMILIES = {"user": _l("Any user action"), "campaign": _l("Any campaign action"),
            "subscriber": _l("Any subscriber action"), "suppression": _l("Any suppression action"),
            "import": _l("Any import action"), "api_key": _l("Any API key action"),
            "webhook": _l("Any webhook action"), "settings": _l("Any settings action")}


def _action_choices() -> list[SelectChoice]:
    """Any action; each family ("campaign.*"); then every action."""
    prefixes = dict.fromkeys(action.split(".")[0] for action in audit.ACTIONS)
    return ([SelectChoice("", _l("Any action"))]
            + [SelectChoice(f"{prefix}.*", FAMILIES.get(prefix, f"{prefix}.*")) for prefix in prefixes]
            + [SelectChoice(action, action) for action in audit.ACTIONS])


class AuditFilterForm(FlaskForm):
    """GET filters: no CSRF token (they change nothing, and the URL must be shareable)."""

    class Meta:
        csrf = False

    action = SelectField(_l("Action"), validate_choice=False, choices=_action_choices())
    actor = StringField(_l("Who"), validators=[Optional(), Length(max=254)])
    target_type = SelectField(_l("Target"), validate_choice=False,
                              choices=[SelectChoice("", _l("Anything"))]
                              + [SelectChoice(t, t.replace("_", " ")) for t in audit.TARGET_TYPES])
    target_id = StringField(_l("Target id"), validators=[Optional(), Length(max=64)])
    since = DateField(_l("From (UTC)"), validators=[Optional()])
    until = DateField(_l("To (UTC)"), validators=[Optional()])


FILTER_FIELDS = ("action", "actor", "target_type", "target_id", "since", "until")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    form = AuditFilterForm(formdata=request.args)
    valid = form.validate()
    args: dict[str, Any] = {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name, "").strip()}
    before = parse_id(request.args.get("before", ""))
    events: list[Any] = []
    cursor = None
    if valid:
        filters = audit.Filters(action=form.action.data or "", actor=form.actor.data or "",
                                target_type=form.target_type.data or "", target_id=form.target_id.data or "",
                                since=form.since.data, until=form.until.data)
        events, cursor = audit.search(filters, before=before)
    return render_template("admin/audit/index.html", form=form, events=events, cursor=cursor, args=args,
                           paged=before is not None,
                           labels={action: _(label) for action, label in audit.ACTIONS.items()})
