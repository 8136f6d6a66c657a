"""Forms for the users pages; the accounts service checks addresses, passwords and admin rules."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ....models import Role
from ....services.accounts import passwords

ROLE_HINTS = {
    Role.VIEWER: _l("reads lists, subscribers, campaigns and reports"),
    Role.MARKETER: _l("also edits lists and subscribers, imports, writes and sends campaigns"),
    Role.ADMIN: _l("everything, plus users, settings, API keys, webhooks and the audit log"),
}
ROLE_LABELS = {Role.VIEWER: _l("Viewer"), Role.MARKETER: _l("Marketer"), Role.ADMIN: _l("Admin")}
# Lowest first: the form's default and the advice are "the lowest role that does the job".
ROLE_CHOICES = [SelectChoice(role.value, ROLE_LABELS[role]) for role in sorted(Role, key=lambda r: r.rank)]
PASSWORD_HINT = _l("At least %(count)s characters; not a common password, a keyboard pattern or your name or email. "
                   "Leave empty to generate one, shown once on the next page.", count=passwords.MIN_LENGTH)


class NewUserForm(FlaskForm):
    email = StringField(_l("Email (their sign-in)"), validators=[DataRequired(_l("Enter their email address.")),
                                                             Length(max=254)])
    name = StringField(_l("Name"), validators=[Length(max=200)])
    role = RadioField(_l("Role"), choices=ROLE_CHOICES, default=Role.VIEWER.value)
    password = PasswordField(_l("Initial password"), description=PASSWORD_HINT,
                             validators=[Length(max=passwords.MAX_LENGTH)])


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


class PasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), description=PASSWORD_HINT,
                             validators=[Length(max=passwords.MAX_LENGTH)])
