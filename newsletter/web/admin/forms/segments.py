"""The segment editor's form: name, description and the rules as JSON (the builder in
static/segments.js edits that JSON; without JavaScript it is a plain text area)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

DEFAULT_RULES = '{\n  "match": "all",\n  "rules": []\n}'


class SegmentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)],
                                description=_l("Optional: what the segment is for."))
    rules = TextAreaField(_l("Rules (JSON)"), default=DEFAULT_RULES, validators=[Length(max=50_000)],
                          description=_l('A group {"match": "all" or "any", "rules": [...]}; see docs/segments.md.'))
