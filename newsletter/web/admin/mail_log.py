"""Admin pages for the mail log: every notification and one-off email (confirmations, manage
links, test emails, campaign tests) with its status and the SMTP server's answer."""
from __future__ import annotations

from flask import Blueprint, flash, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional

from ...models import NotificationKind, NotificationStatus, Role
from ...services.errors import ValidationError
from ...services.notifications import mail_log
from ..i18n import VALUE_LABELS, localized
from ..roles import role_required
from .forms import apply_error

bp = Blueprint("mail_log", __name__, url_prefix="/admin/send-log/mail")

KIND_LABELS = {
    NotificationKind.API: _l("API notification"),
    NotificationKind.CONFIRMATION: _l("Opt-in confirmation"),
    NotificationKind.MANAGE_LINK: _l("Manage link"),
    NotificationKind.TEST_EMAIL: _l("Test email"),
    NotificationKind.CAMPAIGN_TEST: _l("Campaign test"),
    NotificationKind.AUTOMATION: _l("Automation"),
}


class FilterForm(FlaskForm):
    """The GET filter form: no CSRF token (it changes nothing and its URL must be shareable)."""

    class Meta:
        csrf = False

    kind = SelectField(_l("Kind"), choices=[("", _l("Any kind"))]
                       + [(k.value, label) for k, label in KIND_LABELS.items()],
                       validate_choice=False)
    status = SelectField(_l("Status"), choices=[("", _l("Any status"))]
                         + [(s.value, VALUE_LABELS.get(s.value, s.value)) for s in NotificationStatus],
                         validate_choice=False)
    q = StringField(_l("Recipient"), validators=[Optional(), Length(max=254)])


@bp.context_processor
def _kind_labels() -> dict:
    return {"kind_labels": {k.value: label for k, label in KIND_LABELS.items()}}


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    form = FilterForm(formdata=request.args)
    found, filters = None, None
    try:
        filters = mail_log.make_filters(request.args.get("kind"), request.args.get("status"), request.args.get("q"))
        found = mail_log.page(filters, request.args.get("cursor"))
    except ValidationError as exc:
        if not apply_error(form, exc):
            flash(localized(exc), "error")
    status = 400 if found is None else 200
    return render_template("admin/mail_log/index.html", form=form, page=found,
                           args=filters.as_args() if filters else {}, paged=bool(request.args.get("cursor"))), status


@bp.get("/<int:notification_id>")
@role_required(Role.VIEWER)
def detail(notification_id: int):
    notification = mail_log.detail(notification_id)
    # Only admins see a body, and never its subscriber links' tokens: whoever reads the log
    # must not be able to act as the subscriber (confirm, manage, unsubscribe).
    body = mail_log.redacted_body(notification) if current_user.role.allows(Role.ADMIN) else None
    return render_template("admin/mail_log/detail.html", notification=notification, body=body)
