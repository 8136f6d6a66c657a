"""The differences between PostgreSQL (production) and SQLite (development), in one place.

The rest of the package asks for a construct or a capability here and never reads a
dialect's name itself (tests/test_dialect.py holds it to that). Column types that differ
(`with_variant(...)`) and partial-index options (`postgresql_where` / `sqlite_where`) stay on
the models: they are declarations of one schema, not branches in code.

`is_postgresql()` guards the code paths written in PostgreSQL's own SQL (COPY, unnest over
array parameters, the fences' pipelined COMMIT, the exports' SQL-formatted CSV); each has a
portable twin next to it that SQLite takes.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Numeric,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    event,
    func,
    literal,
    literal_column,
    or_,
    select,
    tablesample,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from ..extensions import db

_SQLITE_TIME_FORMATS = {"minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}


def is_postgresql(bind: Connection | Engine | None = None) -> bool:
    """Whether `bind` (the app's engine by default) speaks PostgreSQL."""
    return (bind if bind is not None else db.engine).dialect.name == "postgresql"


def insert(table: Any) -> Any:
    """The dialect's own INSERT, the one with `on_conflict_do_nothing()` (both databases have it)."""
    return (postgresql if is_postgresql() else sqlite).insert(table)


def skip_locked(query: Select) -> Select:
    """FOR UPDATE SKIP LOCKED: take only rows no other transaction holds.

    PostgreSQL locks rows; SQLite has no row locks (a writer holds the whole file), so the
    query is left as it is there.
    """
    return query.with_for_update(skip_locked=True) if is_postgresql() else query


def in_values(column: Any, values: list[int]) -> ColumnElement:
    """`column IN values` for a long list of integers.

    PostgreSQL: one array parameter (`= ANY(:ids)`); an IN list of 5,000 bound values cost 40%
    of an export. SQLite has no arrays: a plain IN.
    """
    if is_postgresql():
        return column == any_(bindparam("ids", values, type_=ARRAY(Integer)))
    return column.in_(values)


def bigint_array(values: Sequence[int]) -> str:
    """PostgreSQL's text form of a bigint[] (`{1,2,3}`): one parameter for a batch's ids, sent as
    text where psycopg's per-value adaptation costs more than the rows (the send path)."""
    return "{" + ",".join(str(int(i)) for i in values) + "}"


def time_bucket(column: Any, unit: str) -> ColumnElement:
    """`column` truncated to the start of its minute, hour or day, in UTC.

    PostgreSQL answers with a naive timestamp, SQLite with text: the caller reads both.
    """
    if is_postgresql():
        return func.date_trunc(unit, func.timezone("UTC", column))  # UTC, whatever the session's zone
    return func.strftime(_SQLITE_TIME_FORMATS[unit], column)


def json_text(column: Any, key: str) -> ColumnElement:
    """The text form of a JSON object's `key`: the same answer on both databases.

    Strings as they are, numbers and booleans as their JSON text ("5", "true"), missing NULL.
    """
    if is_postgresql():
        return column.op("->>", return_type=String)(literal(key))
    path = f'$."{key}"'
    kind = func.json_type(column, path)
    return case((kind.in_(("true", "false")), kind), else_=cast(func.json_extract(column, path), String))


# A JSON number's grammar (RFC 8259), with at most a 3-digit exponent: PostgreSQL's numeric
# overflows past ~1e131072, and a cast that fails would fail the whole query.
_JSON_NUMBER_RE = r"^\s*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?\s*$"
_ISO_DATE_RE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}"
_ISO_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"


def json_number(column: Any, key: str) -> ColumnElement:
    """A JSON object's `key` as a number when its text form is a JSON number ("12", "-3.5", or
    the number 12), else NULL: a value like "n/a" never makes the query fail, on either database.

    PostgreSQL: jsonb_typeof, then a regular-expression guard before a string's cast (CASE
    evaluates its conditions first). SQLite:
    json_valid() guards json_type() (which raises on text that is not JSON).
    """
    text_form = json_text(column, key)
    if is_postgresql():
        value = column.op("->", return_type=JSONB)(literal(key))
        kind = func.jsonb_typeof(value)
        # JSON numbers cast straight from jsonb; only strings pay for the regular expression.
        return case((kind == "number", cast(value, Numeric)),
                    ((kind == "string") & text_form.op("~")(literal(_JSON_NUMBER_RE)), cast(text_form, Numeric)),
                    else_=None)
    numeric = case((func.json_type(text_form).in_(("integer", "real")), cast(text_form, Float)), else_=None)
    return case((func.json_valid(text_form) == 1, numeric), else_=None)


def json_date(column: Any, key: str) -> ColumnElement:
    """The `YYYY-MM-DD` a JSON object's `key` starts with ("2026-12-06", "2026-12-06T10:00:00Z"),
    as text, else NULL. Compared as text with another ISO date it orders like the date, and no
    cast runs, so "2026-02-31" or "soon" cannot make the query fail."""
    text_form = json_text(column, key)
    matches = text_form.op("~")(literal(_ISO_DATE_RE)) if is_postgresql() else text_form.op("GLOB")(
        literal(_ISO_DATE_GLOB))
    return case((matches, func.substr(text_form, 1, 10)), else_=None)


def json_has_key(column: Any, key: str) -> ColumnElement:
    """Whether a JSON object has `key` (its value may be JSON null). PostgreSQL: `?`, which the GIN
    index on subscribers.attributes answers."""
    if is_postgresql():
        return column.op("?")(literal(key))
    return func.json_type(column, f'$."{key}"').is_not(None)


def json_equals_text(column: Any, key: str, value: str) -> ColumnElement:
    """`json_text(column, key) == value`. On PostgreSQL as containment tests (`@>`), which the GIN
    index on attributes answers: the JSON string `value`, true/false when `value` spells one (both
    exact), and the JSON number `value` spells, checked against the text too (5.0 contains 5)."""
    exact = json_text(column, key) == value
    if not is_postgresql():
        return exact

    def contains(candidate: Any) -> ColumnElement:
        return column.op("@>")(bindparam(None, {key: candidate}, type_=JSONB))

    tests = [contains(value)]
    if value in ("true", "false"):
        tests.append(contains(value == "true"))
    try:
        number = json.loads(value)
    except ValueError:
        number = None
    if isinstance(number, (int, float)) and not isinstance(number, bool) and json.dumps(number) == value:
        tests.append(and_(contains(number), exact))
    return or_(*tests) if len(tests) > 1 else tests[0]


def json_object_keys(table: Any, column: Any) -> Select:
    """SELECT the keys of `column` on every row of `table` whose value is a JSON object."""
    if is_postgresql():
        return select(func.jsonb_object_keys(column)).where(func.jsonb_typeof(column) == "object")
    # json_each may only read columns of tables to its left, hence the explicit join.
    each = func.json_each(column).table_valued("key").alias("attribute")
    return select(each.c.key).select_from(table).join(each, true()).where(func.json_type(column) == "object")


def without_jit() -> None:
    """Switch PostgreSQL's JIT off for the rest of the session's transaction (SQLite has none).

    For queries that cost enough to be JIT-compiled but spend their time in functions JIT
    leaves be: compiling took 300 ms a query and saved nothing.
    """
    if is_postgresql():
        db.session.execute(text("SET LOCAL jit = off"))


def wait_for_locks_at_most(seconds: float) -> None:
    """For the rest of the session's transaction, a statement waiting longer than `seconds` for
    a row lock fails (LockNotAvailable) instead of waiting on (PostgreSQL; SQLite locks the file)."""
    if is_postgresql():
        db.session.execute(text(f"SET LOCAL lock_timeout = {int(seconds * 1000)}"))


def statement_timeout(milliseconds: int | None) -> str:
    """For the rest of the session's transaction (or its savepoint), a statement running longer
    than `milliseconds` is cancelled (QueryCanceled; None: no limit). Returns the setting it
    replaced, to put back with `restore_statement_timeout`. SQLite has no such limit: "" there."""
    if not is_postgresql():
        return ""
    before = db.session.scalar(text("SHOW statement_timeout")) or "0"
    db.session.execute(text("SELECT set_config('statement_timeout', :value, true)"),
                       {"value": str(int(milliseconds or 0))})
    return str(before)


def restore_statement_timeout(before: str) -> None:
    """Put back the setting `statement_timeout` replaced (for the rest of the transaction)."""
    if is_postgresql() and before:
        db.session.execute(text("SELECT set_config('statement_timeout', :value, true)"), {"value": before})


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether a database error is `statement_timeout` cancelling a statement (SQLSTATE 57014)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "57014"


def table_pages(table: Any) -> tuple[int, float, int]:
    """PostgreSQL's picture of `table`'s size: (pages at the last VACUUM/ANALYZE, rows then, pages now).
    All three are 0 on SQLite (which has no page sampling)."""
    if not is_postgresql():
        return 0, 0.0, 0
    row = db.session.execute(text(
        "SELECT relpages, reltuples, pg_relation_size(oid) / current_setting('block_size')::int "
        "FROM pg_class WHERE oid = CAST(:name AS regclass)"), {"name": table.name}).one()
    return int(row[0]), float(row[1]), int(row[2])


def sample_of_pages(table: Any, percent: float, seed: int) -> tuple[Any, ColumnElement]:
    """`table TABLESAMPLE SYSTEM (percent) REPEATABLE (seed)` aliased `sampled` (PostgreSQL only:
    whole pages, each taken with probability percent/100, the same pages for the same seed while
    the table's size holds), and the page number of a sampled row (from its ctid)."""
    sampled = tablesample(table, func.system(bindparam("sample_percent", float(percent), type_=Float)),
                          name="sampled", seed=bindparam("sample_seed", int(seed), type_=Integer))
    return sampled, literal_column("(sampled.ctid::text::point)[0]", Float)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether a database error is `wait_for_locks_at_most` giving up (SQLSTATE 55P03)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03"


def commit_asynchronously(engine: Engine) -> None:
    """New PostgreSQL connections of `engine` do not wait for the WAL flush at COMMIT.

    For the workers: the send ledger commits once per message, and waiting for each fsync
    would cap a worker at the disk's flush rate. A worker crash loses nothing it committed; a
    PostgreSQL crash can lose the last fraction of a second of commits (never corrupts), which
    the sweeper then handles like any lost claim. SQLite: its pragmas below already skip the
    fsync per commit.
    """
    if is_postgresql(engine):
        event.listen(engine, "connect", _asynchronous_commit)


def _asynchronous_commit(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    dbapi_connection.commit()


def server_session(dbapi_connection: Any, _record: Any) -> None:
    """On connect: how soon PostgreSQL notices that this client vanished (others: nothing).

    A worker host cut off mid-transaction leaves its backend holding row locks the sweeper needs,
    and PostgreSQL would notice the dead connection only after the kernel's TCP keepalive (two
    hours). So every session asks the server to probe after 10 s of silence (dead after three
    missed probes 5 s apart) and to give up on data the client does not acknowledge within 25 s:
    a vanished client's transaction is rolled back, and its locks released, within about 30 s.
    """
    if type(dbapi_connection).__module__.startswith("psycopg"):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; "
                           "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 25000")
        dbapi_connection.commit()


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """On connect: SQLite's settings for a file shared by web, worker and beat (others: nothing).

    WAL lets readers proceed during a write and busy_timeout waits for a lock instead of
    failing. In WAL mode synchronous=NORMAL never corrupts the file; it only skips an fsync
    per commit, which the send ledger does once per message.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def in_list_sql(name: str, values: Sequence[Any], bind: Connection | Engine | None = None) -> tuple[str, Any]:
    """For SQL text: `IN` over many values as one parameter `:name`; (the SQL, the parameter's value).

    PostgreSQL takes an array (`= ANY(:name)`); SQLite a JSON list it unpacks with json_each.
    """
    if is_postgresql(bind):
        return f"= ANY(:{name})", list(values)
    return f"IN (SELECT value FROM json_each(:{name}))", json.dumps(list(values))
