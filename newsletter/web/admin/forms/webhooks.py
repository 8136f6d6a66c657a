"""Forms for the webhook pages; the service checks the address and the events."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from ....models import WEBHOOK_EVENTS
from .audience import CheckboxesField

EVENT_HINTS = {
    "subscriber.created": _l("someone joined (form, API, admin or import)"),
    "subscriber.confirmed": _l("someone clicked their opt-in link"),
    "subscriber.unsubscribed": _l("someone left one or all lists"),
    "delivery.sent": _l("a campaign email was accepted by the mail server (one per recipient)"),
    "delivery.failed": _l("a campaign email failed for good"),
    "campaign.finished": _l("a campaign finished sending, with its totals"),
    "notification.sent": _l("a transactional email was sent"),
    "notification.failed": _l("a transactional email failed for good"),
}


class WebhookForm(FlaskForm):
    url = StringField(_l("Endpoint URL"), validators=[DataRequired(_l("Enter the address to POST events to.")),
                                                  Length(max=2000)])
    description = StringField(_l("Description"), validators=[Length(max=200)])
    events = CheckboxesField(_l("Events"), choices=[(e, e) for e in WEBHOOK_EVENTS], validate_choice=False)
    active = BooleanField(_l("Active: send events to this endpoint"), default=True)
