"""The automation pages' forms: the automation (name, trigger) and one step of any kind."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ....models import StepKind, TriggerKind

TRIGGERS = [(TriggerKind.SUBSCRIBED.value, "Joined a list"), (TriggerKind.CONFIRMED.value, "Confirmed a list"),
            (TriggerKind.ATTRIBUTE_CHANGED.value, "An attribute changed"),
            (TriggerKind.API_EVENT.value, "An API event (POST /api/v1/events)"),
            (TriggerKind.DATE.value, "A date attribute is today (birthday, renewal)")]
STEP_LABELS = {StepKind.SEND: "Send an email", StepKind.WAIT: "Wait", StepKind.BRANCH: "Branch on a condition"}


class AutomationForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    trigger = SelectField("Starts when", choices=TRIGGERS)
    trigger_key = StringField("List id, attribute or event name", validators=[DataRequired(), Length(max=200)],
                              description="Joined/confirmed: the list's id. Attribute or date: the attribute's "
                                          "key (a date as YYYY-MM-DD). API event: its name, e.g. order.placed.")


class StatusForm(FlaskForm):
    status = HiddenField()


class StepForm(FlaskForm):
    """Every kind's fields; the page shows the ones of the step's kind."""

    subject = StringField("Subject", validators=[Optional(), Length(max=500)])
    html = TextAreaField("HTML body", validators=[Optional(), Length(max=500_000)],
                         description="Jinja2: {{ subscriber.name }}, {{ subscriber.attributes.city }}, "
                                     "{{ unsubscribe_url }}, {{ preferences_url }}.")
    text = TextAreaField("Text body", validators=[Optional(), Length(max=500_000)],
                         description="Optional: made from the HTML when empty.")
    minutes = IntegerField("Minutes", validators=[Optional(), NumberRange(0, 366 * 24 * 60)],
                           description="1440 is a day.")
    at = StringField("Then until (HH:MM)", validators=[Optional(), Length(max=5)],
                     description="In the subscriber's `timezone` attribute, else the zone below.")
    timezone = StringField("Timezone", default="UTC", validators=[Optional(), Length(max=64)])
    rules = TextAreaField("Condition (segment rules, JSON)", validators=[Optional(), Length(max=50_000)],
                          default='{\n  "match": "all",\n  "rules": []\n}',
                          description='As in segments, e.g. {"match": "all", "rules": [{"type": "attribute", '
                                      '"key": "plan", "op": "equals", "value": "pro"}]}.')
    on_false = SelectField("When it does not match", choices=[("exit", "Leave the automation"),
                                                             ("skip", "Skip the next step")], default="exit")
