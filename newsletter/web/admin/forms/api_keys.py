"""The form for creating an API key (revoking uses forms.ConfirmForm)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from ....models import Role

ROLE_CHOICES = [
    SelectChoice(Role.VIEWER.value, _l("Viewer: read lists, subscribers, campaigns and reports")),
    SelectChoice(Role.MARKETER.value, _l("Marketer: also create, change and send (most integrations)")),
    SelectChoice(Role.ADMIN.value, _l("Admin: everything a marketer can, for tools that manage the platform")),
]


class ApiKeyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[
        DataRequired(_l("Name the key after what uses it.")), Length(max=200)])
    role = RadioField(_l("Role"), choices=ROLE_CHOICES, default=Role.MARKETER.value)
