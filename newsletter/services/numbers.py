"""Whole numbers from outside (query strings, forms, cursors), bounded to what a column holds.

`int()` alone lets 99999999999999999999 through, which SQLite refuses to bind and PostgreSQL
answers with "integer out of range": a 500 instead of a precise form error.
"""
from __future__ import annotations

from typing import Any

from .errors import ValidationError

MAX_ID = 2**31 - 1  # INTEGER id columns (PostgreSQL's limit; SQLite's is wider)
MAX_BIGINT = 2**63 - 1  # BIGINT columns (deliveries) and the send log's microsecond cursors


def whole_number(value: Any, field: str, what: str, maximum: int = MAX_ID) -> int:
    """`value` as an int in [-maximum - 1, maximum], or a ValidationError naming `field`."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):  # also digits beyond Python's 4,300-digit limit
        raise ValidationError(field, "The %(what)s must be a number.", what=what) from None
    if not -maximum - 1 <= number <= maximum:
        raise ValidationError(field, "The %(what)s is out of range.", what=what)
    return number
