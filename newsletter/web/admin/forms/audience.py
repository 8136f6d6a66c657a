"""Forms for the lists, subscribers and imports pages; the services do the real validation."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, Optional

from ....models import OptIn, SubscriberStatus
from .attributes import AttributeRowsField

STATUS_LABELS = {SubscriberStatus.UNCONFIRMED: _l("Unconfirmed"), SubscriberStatus.CONFIRMED: _l("Confirmed"),
                 SubscriberStatus.UNSUBSCRIBED: _l("Unsubscribed"), SubscriberStatus.BOUNCED: _l("Bounced"),
                 SubscriberStatus.COMPLAINED: _l("Complained")}
STATUS_CHOICES = [(s.value, STATUS_LABELS[s]) for s in SubscriberStatus]


class ListForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)])
    opt_in = SelectField(_l("Opt-in"), choices=[
        (OptIn.DOUBLE.value, _l("Double: new subscribers confirm by email")),
        (OptIn.SINGLE.value, _l("Single: subscribed at once")),
    ])
    public = BooleanField(_l("Public: people can subscribe through a form"))


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class SubscriberForm(FlaskForm):
    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    status = SelectField(_l("Status"), choices=STATUS_CHOICES)
    language = StringField(_l("Language"), validators=[Length(max=16)],
                           description=_l("A short tag such as en, de or pt-BR: the language of system emails and "
                                       "campaign translations. Empty: not known."))
    attributes = AttributeRowsField(_l("Attributes"), default={},
                                    description=_l("For example city = Lyon, plan = pro. "
                                                "Clear a value to remove its attribute."))


class NewSubscriberForm(SubscriberForm):
    # A new subscriber is either confirmed (the admin vouches for consent) or waits to confirm.
    status = SelectField(_l("Status"), choices=[
        (SubscriberStatus.CONFIRMED.value, _l("Confirmed: consent given")),
        (SubscriberStatus.UNCONFIRMED.value, _l("Unconfirmed: has not confirmed yet")),
    ])
    lists = CheckboxesField(_l("Lists"), coerce=int, validate_choice=False)


class SearchForm(FlaskForm):
    """The GET search form: no CSRF token (it changes nothing and its URL must be shareable)."""

    class Meta:
        csrf = False

    q = StringField(_l("Email or name contains"), validators=[Optional(), Length(max=254)])
    status = SelectField(_l("Status"), choices=[("", _l("Any status"))] + STATUS_CHOICES, validate_choice=False)
    list_id = SelectField(_l("List"), choices=[("", _l("Any list"))], validate_choice=False)
    attr_key = StringField(_l("Attribute"), validators=[Optional(), Length(max=100)])
    attr_value = StringField(_l("equals"), validators=[Optional(), Length(max=1000)])


class BulkForm(FlaskForm):
    action = SelectField(_l("With the selected subscribers"), choices=[
        ("", _l("Choose an action…")), ("add", _l("Add to list")), ("remove", _l("Remove from list")),
        ("unsubscribe", _l("Unsubscribe from all lists")), ("delete", _l("Delete")),
    ], validate_choice=False)
    target_list = SelectField(_l("List"), choices=[("", _l("List…"))], validate_choice=False)
    all_matching = BooleanField(_l("All subscribers matching this search"))
    confirmed = HiddenField()


class SuppressionForm(FlaskForm):
    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    note = StringField(_l("Note"), validators=[Length(max=500)])


class LiftForm(FlaskForm):
    email = HiddenField(validators=[DataRequired()])


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file to import."))])
    list_ids = SelectMultipleField(_l("Add to lists"), coerce=int, validate_choice=False)
    no_list = BooleanField(_l("Import them without adding them to a list"))
    mode = RadioField(_l("Mode"), default="confirmed", choices=[
        ("confirmed", _l("Add as confirmed subscribers")),
        ("optin", _l("Add as unconfirmed and send the opt-in email")),
        ("update", _l("Only update subscribers that already exist")),
    ])
    overwrite_attributes = BooleanField(_l("Replace existing attributes (default: merge)"))
