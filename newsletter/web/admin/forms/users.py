"""Forms for the users pages; the accounts service checks addresses, passwords and admin rules."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ....models import Role
from ....services.accounts import passwords

ROLE_HINTS = {
    Role.VIEWER: "reads lists, subscribers, campaigns and reports",
    Role.MARKETER: "also edits lists and subscribers, imports, writes and sends campaigns",
    Role.ADMIN: "everything, plus users, settings, API keys, webhooks and the audit log",
}
# Lowest first: the form's default and the advice are "the lowest role that does the job".
ROLE_CHOICES = [SelectChoice(role.value, role.value.capitalize()) for role in sorted(Role, key=lambda r: r.rank)]
PASSWORD_HINT = f"{passwords.HINT} Leave empty to generate one, shown once on the next page."


class NewUserForm(FlaskForm):
    email = StringField("Email (their sign-in)", validators=[DataRequired("Enter their email address."),
                                                             Length(max=254)])
    name = StringField("Name", validators=[Length(max=200)])
    role = RadioField("Role", choices=ROLE_CHOICES, default=Role.VIEWER.value)
    password = PasswordField("Initial password", description=PASSWORD_HINT,
                             validators=[Length(max=passwords.MAX_LENGTH)])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class PasswordForm(FlaskForm):
    password = PasswordField("New password", description=PASSWORD_HINT, validators=[Length(max=passwords.MAX_LENGTH)])
