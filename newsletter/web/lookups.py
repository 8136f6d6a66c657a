"""A URL's id or a typed-in address to a row, for the views: what names nothing raises NotFound,
which the app's error handler answers with a 404 (web/errors.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select

from ..extensions import db
from ..models import Subscriber
from ..services.addresses import normalize_email
from ..services.errors import NotFound, ValidationError

T = TypeVar("T")


def parse_id(text: str) -> int | None:
    """A URL's id, or None for anything that is not one."""
    # isascii: str.isdigit() also accepts "²", which int() refuses
    return int(text) if text.isascii() and text.isdigit() and int(text) < 2**31 else None


def found(get: Callable[[int], T | None], raw_id: str, what: str) -> T:
    """`get(id)` for the id in a URL. NotFound names `what` and the id as the URL spelled it, whether
    the segment is no id at all, `get` answers None (api_keys.get_key) or raises NotFound itself."""
    ident = parse_id(raw_id)
    try:
        item = get(ident) if ident is not None else None
    except NotFound:
        item = None
    if item is None:
        raise NotFound(what, raw_id)
    return item


def subscriber_id_by_email(address: str) -> int | None:
    """The subscriber with this (already normalized) address, if any: a read-only query."""
    return db.session.scalar(select(Subscriber.id).where(Subscriber.email == address))


def preview_subscriber_id(email: str | None, field: str = "preview_as") -> int | None:
    """The subscriber to personalise a preview or test as, by address; None means the sample subscriber."""
    if email is None or not email.strip():
        return None
    address = normalize_email(email, field)
    found = subscriber_id_by_email(address)
    if found is None:
        raise ValidationError(field, "No subscriber with the address %(address)s.", address=address)
    return found


def subscriber_language(subscriber_id: int) -> str | None:
    """The subscriber's language tag, None when unknown (or the subscriber is gone)."""
    return db.session.scalar(select(Subscriber.language).where(Subscriber.id == subscriber_id))
