"""Forms of the Settings page; the settings service checks types, ranges and addresses."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length

from ....services.settings import CHOICES, SECRET, SPECS, Spec


class SettingsForm(FlaskForm):
    """One field per setting, named as the setting (so a service error lands next to it)."""

    clear_password = BooleanField(_l("Remove the stored password (log in without one)"))


def _field(spec: Spec):
    if spec.kind == "choice":
        return SelectField(_l(spec.label), choices=[SelectChoice(k, _l(v)) for k, v in CHOICES[spec.name].items()],
                           validate_choice=False)
    if spec.kind == SECRET:
        return PasswordField(_l(spec.label), validators=[Length(max=255)])
    return StringField(_l(spec.label), validators=[Length(max=255)])


for _spec in SPECS:
    setattr(SettingsForm, _spec.name, _field(_spec))


class TestEmailForm(FlaskForm):
    to = EmailField(_l("Send a test email to"), validators=[DataRequired(), Email(), Length(max=254)])
