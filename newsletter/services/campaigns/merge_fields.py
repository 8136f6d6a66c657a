"""The merge fields the editors' "Insert field" menu offers: fixed ones and the audience's attribute keys."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable

from sqlalchemy import select

from ...extensions import db
from ...models import Subscriber, Subscription, dialect

# Keys are read from the newest subscribers only: the menu needs the keys in use, and reading
# every row's attributes of a million-subscriber audience would take seconds per page.
SAMPLE = 10_000
MAX_KEYS = 200
FIXED = (("Name", "{{ subscriber.name }}"), ("Email", "{{ subscriber.email }}"),
         ("Unsubscribe link", "{{ unsubscribe_url }}"), ("Preferences link", "{{ preferences_url }}"),
         ("Web view link", "{{ web_view_url }}"), ("Campaign subject", "{{ campaign.subject }}"))
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def attribute_keys(list_ids: Iterable[int] = ()) -> list[str]:
    """Distinct attribute keys among the newest subscribers (of `list_ids`, when given), sorted."""
    recent = select(Subscriber.id, Subscriber.attributes).order_by(Subscriber.id.desc()).limit(SAMPLE)
    ids = list(list_ids)
    if ids:
        members = select(Subscription.subscriber_id).where(Subscription.list_id.in_(ids))
        recent = recent.where(Subscriber.id.in_(members))
    sample = recent.subquery()
    query = dialect.json_object_keys(sample, sample.c.attributes).distinct().limit(MAX_KEYS)
    return sorted(key for key in db.session.scalars(query) if not key.startswith("_"))


def attribute_tag(key: str) -> str:
    """The Jinja tag that prints an attribute: dotted when the key is a name, subscripted otherwise."""
    if _NAME.match(key):
        return f"{{{{ subscriber.attributes.{key} }}}}"
    return f"{{{{ subscriber.attributes[{json.dumps(key, ensure_ascii=False)}] }}}}"


def menu(list_ids: Iterable[int] = ()) -> list[dict[str, str]]:
    """The "Insert field" menu: label and tag of each fixed field, then one per attribute key."""
    fields = [{"label": label, "tag": tag} for label, tag in FIXED]
    return fields + [{"label": f"attributes.{key}", "tag": attribute_tag(key)} for key in attribute_keys(list_ids)]
