"""Forms for the public pages (subscribe, manage, preference center)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

# The address itself is checked by services.addresses (one rule for every entry point).
EMAIL = [DataRequired("Please enter your email address."), Length(max=254)]


class SubscribeForm(FlaskForm):
    """Embeddable on other sites, so it carries no CSRF token (the view is exempt too)."""

    class Meta:
        csrf = False

    email = EmailField("Email", validators=EMAIL)
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])
    # Honeypot: hidden from people by CSS; bots that fill every field reveal themselves.
    website = StringField("Leave this field empty")


class ManageForm(FlaskForm):
    email = EmailField("Your email address", validators=EMAIL)


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PreferencesForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    # Choices are set per request: the public lists plus the person's own.
    lists = MultiCheckboxField("Lists", coerce=int)


class EraseForm(FlaskForm):
    confirm = BooleanField("Yes, erase my data for good",
                           validators=[DataRequired("Tick the box to confirm the erasure.")])
