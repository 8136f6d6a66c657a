"""Form of the sending-server pages; the servers service checks every value."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from ....services.settings import TLS_MODES


class ServerForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=64)], description="Lower case, such as ses-eu or relay-2.")
    pool = StringField("Pool", validators=[Length(max=64)], default="default",
                       description="Campaigns and notifications choose a pool; \"default\" also holds the "
                                   "Settings page's server.")
    host = StringField("Host", validators=[Length(max=255)])
    port = StringField("Port", validators=[Length(max=5)], default="587")
    tls = SelectField("TLS", choices=[SelectChoice(k, v) for k, v in TLS_MODES.items()], default="starttls",
                      validate_choice=False)
    username = StringField("Username", validators=[Length(max=255)])
    password = PasswordField("Password", validators=[Length(max=255)])
    clear_password = BooleanField("Remove the stored password")
    per_second = StringField("Messages per second", validators=[Length(max=20)], default="0",
                             description="0: no limit of its own (the campaign rate stays the ceiling).")
    per_hour = StringField("Messages per hour", validators=[Length(max=20)], default="0")
    per_day = StringField("Messages per day", validators=[Length(max=20)], default="0")
    enabled = BooleanField("Enabled: send through this server", default=True)

    def values(self) -> dict:
        return {name: getattr(self, name).data for name in (
            "name", "pool", "host", "port", "tls", "username", "password", "per_second", "per_hour", "per_day",
            "enabled")}
