"""Form of the sending-server pages; the servers service checks every value."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from ....services.settings import TLS_MODES


class ServerForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=64)],
                       description=_l("Lower case, such as ses-eu or relay-2."))
    pool = StringField(_l("Pool"), validators=[Length(max=64)], default="default",
                       description=_l("Campaigns and notifications choose a pool; “default” also holds the "
                                      "Settings page's server."))
    host = StringField(_l("Host"), validators=[Length(max=255)])
    port = StringField(_l("Port"), validators=[Length(max=5)], default="587")
    tls = SelectField(_l("TLS"), choices=[SelectChoice(k, _l(v)) for k, v in TLS_MODES.items()], default="starttls",
                      validate_choice=False)
    username = StringField(_l("Username"), validators=[Length(max=255)])
    password = PasswordField(_l("Password"), validators=[Length(max=255)])
    clear_password = BooleanField(_l("Remove the stored password"))
    per_second = StringField(_l("Messages per second"), validators=[Length(max=20)], default="0",
                             description=_l("0: no limit of its own (the campaign rate stays the ceiling)."))
    per_hour = StringField(_l("Messages per hour"), validators=[Length(max=20)], default="0")
    per_day = StringField(_l("Messages per day"), validators=[Length(max=20)], default="0")
    enabled = BooleanField(_l("Enabled: send through this server"), default=True)

    def values(self) -> dict:
        return {name: getattr(self, name).data for name in (
            "name", "pool", "host", "port", "tls", "username", "password", "per_second", "per_hour", "per_day",
            "enabled")}
