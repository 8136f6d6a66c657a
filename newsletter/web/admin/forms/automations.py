"""The automation pages' forms: the automation (name, trigger) and one step of any kind."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ....models import StepKind, TriggerKind

TRIGGERS = [(TriggerKind.SUBSCRIBED.value, _l("Joined a list")), (TriggerKind.CONFIRMED.value, _l("Confirmed a list")),
            (TriggerKind.ATTRIBUTE_CHANGED.value, _l("An attribute changed")),
            (TriggerKind.API_EVENT.value, _l("An API event (POST /api/v1/events)")),
            (TriggerKind.DATE.value, _l("A date attribute is today (birthday, renewal)"))]
STEP_LABELS = {StepKind.SEND: _l("Send an email"), StepKind.WAIT: _l("Wait"),
               StepKind.BRANCH: _l("Branch on a condition")}


class AutomationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    trigger = SelectField(_l("Starts when"), choices=TRIGGERS)
    trigger_key = StringField(_l("List id, attribute or event name"), validators=[DataRequired(), Length(max=200)],
                              description=_l("Joined/confirmed: the list's id. Attribute or date: the attribute's "
                                             "key (a date as YYYY-MM-DD). API event: its name, e.g. order.placed."))
    reentry = BooleanField(_l("Subscribers may enter again after completing or leaving it"))
    reentry_gap_minutes = IntegerField(_l("Minimum gap before entering again (minutes)"), default=0,
                                       validators=[Optional(), NumberRange(0, 366 * 24 * 60)],
                                       description=_l("0: at once. Otherwise a subscriber enters again at the "
                                                      "earliest this long after leaving."))
    tracking = BooleanField(_l("Track opens and clicks of its emails, per subscriber (branches on opened or "
                               "clicked need it)"))


class StatusForm(FlaskForm):
    status = HiddenField()


ON_FALSE = [("exit", _l("Leave the automation")), ("skip", _l("Skip the next step"))]
CONDITIONS = [("rules", _l("The subscriber matches segment rules")),
              ("opened", _l("The subscriber opened an earlier email")),
              ("clicked", _l("The subscriber clicked a link in an earlier email"))]


class StepForm(FlaskForm):
    """Every kind's fields; the page shows the ones of the step's kind."""

    subject = StringField(_l("Subject"), validators=[Optional(), Length(max=500)])
    html = TextAreaField(_l("HTML body"), validators=[Optional(), Length(max=500_000)],
                         description=_l("Jinja2: %(examples)s.",
                                        examples="{{ subscriber.name }}, {{ subscriber.attributes.city }}, "
                                                 "{{ unsubscribe_url }}, {{ preferences_url }}"))
    text = TextAreaField(_l("Text body"), validators=[Optional(), Length(max=500_000)],
                         description=_l("Optional: made from the HTML when empty."))
    minutes = IntegerField(_l("Minutes"), validators=[Optional(), NumberRange(0, 366 * 24 * 60)],
                           description=_l("1440 is a day."))
    at = StringField(_l("Then until (HH:MM)"), validators=[Optional(), Length(max=5)],
                     description=_l("In the subscriber's `timezone` attribute, else the zone below."))
    timezone = StringField(_l("Timezone"), default="UTC", validators=[Optional(), Length(max=64)])
    condition = SelectField(_l("Condition"), choices=CONDITIONS, default="rules")
    step_id = SelectField(_l("Which email"), choices=[], validate_choice=False,
                          description=_l("Opens and clicks count as recorded when the branch runs: put a wait "
                                         "step before it (right after sending, nobody has opened yet). Machine "
                                         "opens (Apple Mail Privacy Protection, scanners) do not count; a click "
                                         "counts as an open."))
    rules = TextAreaField(_l("Condition (segment rules, JSON)"), validators=[Optional(), Length(max=50_000)],
                          default='{\n  "match": "all",\n  "rules": []\n}',
                          description=_l("As in segments, e.g. %(example)s.",
                                         example='{"match": "all", "rules": [{"type": "attribute", '
                                                 '"key": "plan", "op": "equals", "value": "pro"}]}'))
    on_false = SelectField(_l("When it does not match"), choices=ON_FALSE, default="exit")
