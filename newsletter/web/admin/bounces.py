"""Admin page for bounces and complaints (Send log → Bounces): the reports from every source,
filtered by type, domain and campaign, with the complaint rate of the last 30 days and of each
recent campaign against the providers' thresholds."""
from __future__ import annotations

from flask import Blueprint, flash, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import Length, Optional

from ...models import BounceType, Role
from ...services import settings
from ...services.deliverability import report
from ...services.errors import ValidationError
from ..i18n import localized
from ..roles import role_required
from .forms import apply_error

bp = Blueprint("bounces", __name__, url_prefix="/admin/send-log/bounces")

TYPE_LABELS = {BounceType.HARD: _l("Hard bounce"), BounceType.SOFT: _l("Soft bounce"),
               BounceType.COMPLAINT: _l("Complaint")}
SOURCE_LABELS = {"mailbox": _l("Bounce mailbox"), "api": "API", "ses": "Amazon SES", "sendgrid": "SendGrid",
                 "mailgun": "Mailgun", "postmark": "Postmark"}


class FilterForm(FlaskForm):
    """The GET filter form: no CSRF token (it changes nothing and its URL must be shareable)."""

    class Meta:
        csrf = False

    type = SelectField(_l("Type"), choices=[("", _l("Any type"))]
                       + [(t.value, label) for t, label in TYPE_LABELS.items()],
                       validate_choice=False)
    domain = StringField(_l("Recipient domain"), validators=[Optional(), Length(max=253)])
    campaign = IntegerField(_l("Campaign id"), validators=[Optional()])


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    form = FilterForm(formdata=request.args)
    found, filters = None, None
    try:
        filters = report.make_filters(request.args.get("type"), request.args.get("domain"),
                                      request.args.get("campaign"))
        found = report.page(filters, request.args.get("cursor"))
    except ValidationError as exc:
        if not apply_error(form, exc):
            flash(localized(exc), "error")
    status = 400 if found is None else 200
    rule = (settings.get("BOUNCE_SOFT_LIMIT"), settings.get("BOUNCE_SOFT_DELIVERIES"), settings.get("BOUNCE_SOFT_DAYS"))
    return render_template("admin/bounces/index.html", form=form, page=found, summary=report.summary(),
                           campaigns=report.campaign_rates(), rule=rule, type_labels=TYPE_LABELS,
                           source_labels=SOURCE_LABELS, warn=report.COMPLAINT_WARN, alarm=report.COMPLAINT_ALARM,
                           args=filters.as_args() if filters else {},
                           paged=bool(request.args.get("cursor"))), status
