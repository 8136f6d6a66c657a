"""Forms for the webhook pages; the service checks the address and the events."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from ....models import WEBHOOK_EVENTS
from .audience import CheckboxesField

EVENT_HINTS = {
    "subscriber.created": "someone joined (form, API, admin or import)",
    "subscriber.confirmed": "someone clicked their opt-in link",
    "subscriber.unsubscribed": "someone left one or all lists",
    "delivery.sent": "a campaign email was accepted by the mail server (one per recipient)",
    "delivery.failed": "a campaign email failed for good",
    "campaign.finished": "a campaign finished sending, with its totals",
    "notification.sent": "a transactional email was sent",
    "notification.failed": "a transactional email failed for good",
}


class WebhookForm(FlaskForm):
    url = StringField("Endpoint URL", validators=[DataRequired("Enter the address to POST events to."),
                                                  Length(max=2000)])
    description = StringField("Description", validators=[Length(max=200)])
    events = CheckboxesField("Events", choices=[(e, e) for e in WEBHOOK_EVENTS], validate_choice=False)
    active = BooleanField("Active: send events to this endpoint", default=True)
