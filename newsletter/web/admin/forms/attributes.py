"""Subscriber attributes edited as rows of name, kind and value, rather than as raw JSON.

The rows post as repeated `attr_key` / `attr_type` / `attr_value` fields (and one `attr_rows`
marker, so a form whose rows were all removed still says so), so the form works
without JavaScript (static/attributes.js only adds and removes rows in place). The kind keeps
a value's JSON type: "75001" stays text unless it is said to be a number.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import Field
from wtforms.utils import unset_value
from wtforms.validators import ValidationError

KINDS = [("text", _l("Text")), ("number", _l("Number")), ("boolean", _l("Yes / no")), ("json", _l("JSON"))]
TRUE, FALSE = {"true", "yes", "1"}, {"false", "no", "0"}


@dataclass(frozen=True)
class Row:
    key: str
    kind: str
    value: str


def row_for(key: str, value: Any) -> Row:
    if isinstance(value, bool):
        return Row(key, "boolean", "true" if value else "false")
    if isinstance(value, int | float):
        return Row(key, "number", json.dumps(value))
    if isinstance(value, str):
        return Row(key, "text", value)
    return Row(key, "json", json.dumps(value, ensure_ascii=False))


def _value(row: Row, number: int) -> Any:
    if row.kind == "number":
        try:
            value = json.loads(row.value.strip())
        except ValueError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(_("Row %(number)s: “%(value)s” is not a number (for example 42 or 3.5).",
                                    number=number, value=row.value))
        return value
    if row.kind == "boolean":
        word = row.value.strip().lower()
        if word not in TRUE | FALSE:
            raise ValidationError(_("Row %(number)s: a yes/no value is “true” or “false”, not “%(value)s”.",
                                    number=number, value=row.value))
        return word in TRUE
    if row.kind == "json":
        try:
            return json.loads(row.value)
        except ValueError as exc:
            raise ValidationError(_("Row %(number)s: this is not valid JSON (%(error)s).",
                                    number=number, error=exc)) from None
    return row.value


class AttributeRowsField(Field):
    """`data` is the attributes dict; `rows` what the form shows (the posted rows, kept on errors)."""

    def __init__(self, label: str | None = None, validators: Any = None, **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.rows: list[Row] = []
        self.row_errors: list[str] = []

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        self.process_errors: list[Any] = []
        if formdata is not None and "attr_rows" in formdata:  # the form was posted (maybe with no rows left)
            keys, kinds, values = (formdata.getlist(name) for name in ("attr_key", "attr_type", "attr_value"))
            rows = (Row(key.strip(), kind, value) for key, kind, value in zip(keys, kinds, values, strict=False))
            self.rows = [row for row in rows if row.key or row.value.strip()]  # blank rows: the page adds its own
            self.data = None  # set by pre_validate
            return
        attributes = data if isinstance(data, dict) else (self.default or {})
        self.rows = [row_for(key, value) for key, value in sorted(attributes.items())]
        self.data = dict(attributes)

    def pre_validate(self, form: Any) -> None:
        parsed: dict[str, Any] = {}
        kinds = dict(KINDS)
        for number, row in enumerate(self.rows, 1):
            if not row.value.strip():
                continue  # an empty row, or a value cleared to remove the attribute (works without JavaScript)
            if not row.key:
                raise ValidationError(_("Row %(number)s: name the attribute, or clear its value to remove the row.",
                                        number=number))
            if row.key in parsed:
                raise ValidationError(_("Row %(number)s: “%(key)s” is named twice.", number=number, key=row.key))
            if row.kind not in kinds:
                raise ValidationError(_("Row %(number)s: choose the kind of value.", number=number))
            parsed[row.key] = _value(row, number)
        self.data = parsed
