"""CSV export: exactly the matching subscribers, newest first, every column, formulas defused."""
import csv
import io
import re

from newsletter.services import exports, lists, subscribers


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


def test_a_search_exports_its_matches_only(app):
    with app.app_context():
        for i in range(5):
            subscribers.create(f"user{i}@example.com", name="Match" if i % 2 else "Other")
        rows = export(q="match")
    assert [r["email"] for r in rows] == ["user3@example.com", "user1@example.com"]
