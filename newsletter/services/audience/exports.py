"""CSV export of subscribers (a list, or any search) streamed in keyset batches.

PostgreSQL formats the rows itself (one query a batch returns the batch's CSV text), which
is several times faster than fetching them and formatting them in Python; the Python path
is the reference, and the fallback (SQLite, and exports with fractional numbers in their
attributes, whose Python spelling SQL cannot reproduce). Both give the same bytes.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import String, Text, and_, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONPATH, aggregate_order_by

from ...extensions import db
from ...models import MailingList, Subscriber, Subscription, dialect
from .csv_files import FORMULA_START, PLAIN_NUMBER, iso_utc, safe_cell, safe_row
from .subscribers import Filters, conditions

BATCH = 5_000
SQL_BATCH = 20_000  # rows a query on PostgreSQL: one row (the batch's text) comes back
FIXED_COLUMNS = ["email", "name", "status", "created_at", "lists"]
# One column per attribute key suits a spreadsheet; past this many distinct keys (messy
# imports) the file would be unreadable, so all attributes go to one JSON column instead.
MAX_ATTRIBUTE_COLUMNS = 200
# Any JSON number anywhere in the attributes (arrays and nested objects included).
_NUMBERS = 'strict $.** ? (@.type() == "number")'


def attribute_keys(filters: Filters) -> list[str] | None:
    """The distinct attribute keys among the matches, sorted; None if there are too many.

    A first pass that reads only the keys (jsonb_object_keys / json_each), so the rows
    themselves can then stream in batches without knowing the header in advance.
    """
    query = dialect.json_object_keys(Subscriber, Subscriber.attributes).where(*conditions(filters))
    keys = sorted(db.session.scalars(query.distinct().limit(MAX_ATTRIBUTE_COLUMNS + 1)))
    return keys if len(keys) <= MAX_ATTRIBUTE_COLUMNS else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # numbers, booleans (true/false), objects


def _header(keys: list[str] | None) -> list[str]:
    if keys is None:
        return FIXED_COLUMNS + ["attributes"]
    # A key named like a fixed column gets a prefix rather than a second "email" column;
    # keys come from imports and the API, so they are defused like any other cell.
    return FIXED_COLUMNS + [safe_cell(f"attributes.{k}" if k in FIXED_COLUMNS else k) for k in keys]


def _memberships(ids: list[int], list_names: dict[int, str]) -> dict[int, str]:
    rows = db.session.execute(select(Subscription.subscriber_id, Subscription.list_id, Subscription.status)
                              .where(dialect.in_values(Subscription.subscriber_id, ids)))
    found: dict[int, list[tuple[str, int, str]]] = {}
    for subscriber_id, list_id, status in rows:
        found.setdefault(subscriber_id, []).append((list_names.get(list_id, ""), list_id, status.value))
    return {sid: "; ".join(f"{name} ({status})" for name, _, status in sorted(lists))
            for sid, lists in found.items()}


def _batches(filters: Filters, batch: int) -> Iterator[Sequence[Any]]:
    """Rows newest first, `batch` at a time by keyset (id < last), never all in memory."""
    where = conditions(filters)
    columns = (Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.status, Subscriber.created_at,
               Subscriber.attributes)
    last = None
    while True:
        query = select(*columns).where(*where).order_by(Subscriber.id.desc()).limit(batch)
        if last is not None:
            query = query.where(Subscriber.id < last)
        rows = db.session.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def subscribers_csv(filters: Filters, batch: int | None = None) -> Iterator[str]:
    """CSV text chunks: the header, then one chunk per batch of subscribers.

    Columns: email, name, status, created_at (UTC), lists ("Name (membership status); ..."),
    then one column per attribute key found among the matches.
    """
    # Each query below costs enough to be JIT-compiled, which took 300 ms a query (50 queries
    # at 1,000,000 rows) and saved nothing: the work is in functions JIT leaves be.
    dialect.without_jit()
    keys = attribute_keys(filters)
    buffer = io.StringIO()
    csv.writer(buffer).writerow(_header(keys))
    yield buffer.getvalue()
    if dialect.is_postgresql() and not _has_fractions(filters):
        yield from _postgres_chunks(filters, keys, batch or SQL_BATCH)
    else:
        yield from _python_chunks(filters, keys, batch or BATCH)


def _python_chunks(filters: Filters, keys: list[str] | None, batch: int) -> Iterator[str]:
    list_names = dict(db.session.execute(select(MailingList.id, MailingList.name)).all())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for rows in _batches(filters, batch):
        lists = _memberships([row.id for row in rows], list_names)
        for row in rows:
            attributes = row.attributes if isinstance(row.attributes, dict) else {}
            extra = [_text(attributes.get(k)) for k in keys] if keys is not None else [_text(attributes)]
            cells = [row.email, row.name, row.status.value, iso_utc(row.created_at), lists.get(row.id, ""), *extra]
            writer.writerow(safe_row(cells))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


# --- PostgreSQL: the same cells, spelled in SQL -------------------------------------------


def _has_fractions(filters: Filters) -> bool:
    """Whether a matching subscriber has a non-integer JSON number in its attributes.

    Python reads 1.50 as the float 1.5 and writes "1.5"; PostgreSQL's jsonb text keeps
    "1.50". Integers, strings, booleans and nested objects print alike, so only these
    exports (rare: imports store strings) take the Python path.
    """
    numbers = cast(_NUMBERS, JSONPATH)
    number = func.jsonb_path_query(Subscriber.attributes, numbers).column_valued("number")
    fractional = select(literal(1)).where(cast(number, Text).contains(".", autoescape=True))
    query = select(literal(1)).select_from(Subscriber).where(
        *conditions(filters), func.jsonb_path_exists(Subscriber.attributes, numbers), fractional.exists()).limit(1)
    return db.session.scalar(query) is not None


def _cell(value: Any) -> Any:
    """safe_cell, then csv.writer's minimal quoting, of one text value (NULL: empty)."""
    value = func.coalesce(value, "")
    starts = func.left(value, 1).in_(sorted(FORMULA_START))
    number = value.regexp_match(f"^{PLAIN_NUMBER}$")  # a whole-string match, like re.fullmatch
    safe = case((and_(starts, ~number), func.concat("'", value)), else_=value)
    quoted = func.concat('"', func.replace(safe, '"', '""'), '"')
    return case((safe.regexp_match('[,"\r\n]'), quoted), else_=safe)


def _attribute_cell(key: str) -> Any:
    """_text(attributes.get(key)): strings as they are, null/missing empty, others as JSON."""
    value = Subscriber.attributes[key]
    kind = func.jsonb_typeof(value)
    return case((kind == "string", value.as_string()), (kind == "null", ""), else_=cast(value, Text))


def _lists_cell() -> Any:
    """"Name (status); ..." sorted like Python sorts (name, list id, status) tuples."""
    label = func.concat(MailingList.name, " (", cast(Subscription.status, String), ")")
    order = aggregate_order_by(literal("; "), MailingList.name.collate("C"), MailingList.id)
    return (select(func.string_agg(label, order)).select_from(Subscription)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id == Subscriber.id).correlate(Subscriber).scalar_subquery())


def _postgres_chunks(filters: Filters, keys: list[str] | None, batch: int) -> Iterator[str]:
    """Keyset batches newest first; each query returns the batch's CSV text and last id."""
    if keys is None:
        extra = [case((func.jsonb_typeof(Subscriber.attributes) == "object", cast(Subscriber.attributes, Text)),
                      else_="{}")]
    else:
        extra = [_attribute_cell(key) for key in keys]
    created = func.to_char(func.timezone("UTC", Subscriber.created_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    values = [Subscriber.email, Subscriber.name, cast(Subscriber.status, String), created, _lists_cell(), *extra]
    inner = select(Subscriber.id, *(cast(value, Text).label(f"c{i}") for i, value in enumerate(values))) \
        .where(*conditions(filters)).order_by(Subscriber.id.desc()).limit(batch)
    last = None
    while True:
        page = (inner if last is None else inner.where(Subscriber.id < last)).subquery()
        line = func.concat(func.concat_ws(",", *(_cell(page.c[f"c{i}"]) for i in range(len(values)))), "\r\n")
        text_, last = db.session.execute(select(
            func.string_agg(line, aggregate_order_by(literal(""), page.c.id.desc())), func.min(page.c.id))).one()
        if text_ is None:
            return
        yield text_
