"""Forms for the public pages (subscribe, manage, preference center)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

# The address itself is checked by services.addresses (one rule for every entry point).
EMAIL = [DataRequired(_l("Please enter your email address.")), Length(max=254)]


def language_field(label: object) -> SelectField:
    """A language select; its choices are set per request (services/languages.py choices). Optional:
    a form posted without it (an embed made before it existed) keeps what is known."""
    return SelectField(label, choices=[], validate_choice=True, validators=[Optional()])


class SubscribeForm(FlaskForm):
    """Embeddable on other sites, so it carries no CSRF token (the view is exempt too)."""

    class Meta:
        csrf = False

    email = EmailField(_l("Email"), validators=EMAIL)
    name = StringField(_l("Name (optional)"), validators=[Optional(), Length(max=200)])
    # Empty: the browser's Accept-Language decides (pages.py).
    language = language_field(_l("Language (optional)"))
    # Honeypot: hidden from people by CSS; bots that fill every field reveal themselves.
    website = StringField(_l("Leave this field empty"))


class ManageForm(FlaskForm):
    email = EmailField(_l("Your email address"), validators=EMAIL)


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PreferencesForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    language = language_field(_l("Language of our emails"))
    # Choices are set per request: the public lists plus the person's own.
    lists = MultiCheckboxField(_l("Lists"), coerce=int)


class EraseForm(FlaskForm):
    confirm = BooleanField(_l("Yes, erase my data for good"),
                           validators=[DataRequired(_l("Tick the box to confirm the erasure."))])
