"""Forms for the lists, subscribers and imports pages; the services do the real validation."""
from __future__ import annotations

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

STATUS_CHOICES = [(s.value, s.value.capitalize()) for s in SubscriberStatus]


class ListForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=5000)])
    opt_in = SelectField("Opt-in", choices=[
        (OptIn.DOUBLE.value, "Double: new subscribers confirm by email"),
        (OptIn.SINGLE.value, "Single: subscribed at once"),
    ])
    public = BooleanField("Public: people can subscribe through a form")


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class SubscriberForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[Length(max=200)])
    status = SelectField("Status", choices=STATUS_CHOICES)
    language = StringField("Language", validators=[Length(max=16)],
                           description="A short tag such as en, de or pt-BR: the language of system emails and "
                                       "campaign translations. Empty: not known.")
    attributes = AttributeRowsField("Attributes", default={},
                                    description="For example city = Lyon, plan = pro. "
                                                "Clear a value to remove its attribute.")


class NewSubscriberForm(SubscriberForm):
    # A new subscriber is either confirmed (the admin vouches for consent) or waits to confirm.
    status = SelectField("Status", choices=[
        (SubscriberStatus.CONFIRMED.value, "Confirmed: consent given"),
        (SubscriberStatus.UNCONFIRMED.value, "Unconfirmed: has not confirmed yet"),
    ])
    lists = CheckboxesField("Lists", coerce=int, validate_choice=False)


class SearchForm(FlaskForm):
    """The GET search form: no CSRF token (it changes nothing and its URL must be shareable)."""

    class Meta:
        csrf = False

    q = StringField("Email or name contains", validators=[Optional(), Length(max=254)])
    status = SelectField("Status", choices=[("", "Any status")] + STATUS_CHOICES, validate_choice=False)
    list_id = SelectField("List", choices=[("", "Any list")], validate_choice=False)
    attr_key = StringField("Attribute", validators=[Optional(), Length(max=100)])
    attr_value = StringField("equals", validators=[Optional(), Length(max=1000)])


class BulkForm(FlaskForm):
    action = SelectField("With the selected subscribers", choices=[
        ("", "Choose an action…"), ("add", "Add to list"), ("remove", "Remove from list"),
        ("unsubscribe", "Unsubscribe from all lists"), ("delete", "Delete"),
    ], validate_choice=False)
    target_list = SelectField("List", choices=[("", "List…")], validate_choice=False)
    all_matching = BooleanField("All subscribers matching this search")
    confirmed = HiddenField()


class SuppressionForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    note = StringField("Note", validators=[Length(max=500)])


class LiftForm(FlaskForm):
    email = HiddenField(validators=[DataRequired()])


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to import.")])
    list_ids = SelectMultipleField("Add to lists", coerce=int, validate_choice=False)
    no_list = BooleanField("Import them without adding them to a list")
    mode = RadioField("Mode", default="confirmed", choices=[
        ("confirmed", "Add as confirmed subscribers"),
        ("optin", "Add as unconfirmed and send the opt-in email"),
        ("update", "Only update subscribers that already exist"),
    ])
    overwrite_attributes = BooleanField("Replace existing attributes (default: merge)")
