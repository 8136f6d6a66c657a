"""WTForms classes (all CSRF-protected through Flask-WTF)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, EmailField, PasswordField, RadioField, SelectMultipleField
from wtforms.validators import DataRequired, Email, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("Keep me signed in")


class TestEmailForm(FlaskForm):
    to = EmailField("Send a test email to", validators=[DataRequired(), Email(), Length(max=254)])


class ConfirmForm(FlaskForm):
    """An empty form: only the CSRF token, for buttons that change state."""


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to import.")])
    list_ids = SelectMultipleField("Add to lists", coerce=int, validate_choice=False)
    mode = RadioField("Mode", default="confirmed", choices=[
        ("confirmed", "Add as confirmed subscribers"),
        ("optin", "Add as unconfirmed and send the opt-in email"),
        ("update", "Only update subscribers that already exist"),
    ])
    overwrite_attributes = BooleanField("Replace existing attributes (default: merge)")
