"""The outbox index: listing, searching and paging a Maildir without reading every message."""
import os
import time
from email.message import EmailMessage

from newsletter.services import outbox
from newsletter.services.outbox import index


def add(directory, to, subject, html=None, when=None):
    message = EmailMessage()
    message["From"] = "news@example.org"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("text body")
    if html:
        message.add_alternative(html, subtype="html")
    key = outbox.open_outbox(directory).add(message.as_bytes())
    if when is not None:  # the Maildir's date is the file's modification time
        [path] = [p for sub in ("new", "cur") for p in (directory / sub).iterdir() if p.name.startswith(key)]
        os.utime(path, (when, when))
    return key


def test_search_pages_newest_first_and_counts_without_the_files(tmp_path):
    start = time.time() - 1000
    keys = [add(tmp_path, f"user{i}@example.org", f"Issue {i}", when=start + i) for i in range(7)]
    page = outbox.search(str(tmp_path), per_page=3)
    assert [m.subject for m in page.messages] == ["Issue 6", "Issue 5", "Issue 4"]
    assert (page.first, page.last, page.matching, page.total, page.pages) == (1, 3, 7, 7, 3)
    last = outbox.search(str(tmp_path), page=3, per_page=3)
    assert [m.key for m in last.messages] == [keys[0]] and (last.first, last.last) == (7, 7)
    assert outbox.search(str(tmp_path), page=9, per_page=3).messages == []


def test_search_by_recipient_and_subject_is_a_case_insensitive_substring(tmp_path):
    add(tmp_path, "Anna@Example.org", "Welcome aboard")
    add(tmp_path, "bob@example.org", "Welcome back")
    add(tmp_path, "anna.smith@example.net", "Your 50% discount")
    assert {m.recipients for m in outbox.search(str(tmp_path), recipient="anna").messages} == {
        "Anna@Example.org", "anna.smith@example.net"}
    both = outbox.search(str(tmp_path), recipient="ANNA", subject="welcome")
    assert [m.recipients for m in both.messages] == ["Anna@Example.org"] and both.total == 3
    # LIKE wildcards in the query are literal characters
    assert [m.subject for m in outbox.search(str(tmp_path), subject="50%").messages] == ["Your 50% discount"]
    assert outbox.search(str(tmp_path), subject="_").matching == 0


def test_index_follows_the_maildir_when_files_come_and_go(tmp_path):
    first = add(tmp_path, "a@example.org", "First")
    assert outbox.search(str(tmp_path)).total == 1
    add(tmp_path, "b@example.org", "Second")
    assert outbox.search(str(tmp_path)).total == 2
    box = outbox.open_outbox(tmp_path)
    box.discard(first)  # removed by hand, behind the index's back
    assert [m.subject for m in outbox.search(str(tmp_path)).messages] == ["Second"]
    assert outbox.get_message(str(tmp_path), first) is None
    assert outbox.clear(str(tmp_path)) == 1 and outbox.search(str(tmp_path)).total == 0


def test_a_message_moved_to_cur_still_opens(tmp_path):
    key = add(tmp_path, "a@example.org", "Moved")
    outbox.search(str(tmp_path))
    [path] = list((tmp_path / "new").iterdir())
    path.rename(tmp_path / "cur" / f"{path.name}:2,S")
    message = outbox.get_message(str(tmp_path), key)
    assert message is not None and message.subject == "Moved" and b"text body" in message.raw


def test_unchanged_maildir_is_not_rescanned(tmp_path, monkeypatch):
    add(tmp_path, "a@example.org", "One")
    outbox.search(str(tmp_path))
    scans = []
    real_scan = index._scan
    monkeypatch.setattr(index, "_scan", lambda d: scans.append(d) or real_scan(d))
    outbox.search(str(tmp_path))
    assert scans == []
    add(tmp_path, "b@example.org", "Two")
    assert outbox.search(str(tmp_path)).total == 2 and len(scans) == 1


def test_encoded_subject_is_indexed_decoded(tmp_path):
    add(tmp_path, "a@example.org", "Grüße aus Köln")
    [row] = outbox.search(str(tmp_path), subject="Köln").messages
    assert row.subject == "Grüße aus Köln"


def test_links_are_listed_once_and_only_clickable_schemes():
    html = ('<p><a href="https://example.org/a">First  <b>link</b></a> <a href="javascript:alert(1)">x</a>'
            '<a href="mailto:hi@example.org">mail</a><a href="https://example.org/a">again</a><a>no href</a></p>')
    assert [(link.href, link.text) for link in outbox.links(html)] == [
        ("https://example.org/a", "First link"), ("mailto:hi@example.org", "mail")]


def test_framed_html_opens_links_in_a_new_tab_and_keeps_the_doctype_first():
    framed = outbox.framed_html('<!DOCTYPE html><html lang="en"><head><title>t</title></head><body></body></html>')
    assert framed.startswith('<!DOCTYPE html><html lang="en"><head><base target="_blank"><title>')
    assert outbox.framed_html("<p>hi</p>") == '<base target="_blank"><p>hi</p>'


def test_malformed_or_8bit_headers_still_index(tmp_path):
    raw = (b"From: =?utf-8?q?Caf=C3=A9?= <cafe@example.org>\r\nTo: x@example.org\r\n"
           b"Subject: =?bogus?x?nope?= and \xff raw\r\n\r\nbody\r\n")
    outbox.open_outbox(tmp_path).add(raw)
    [row] = outbox.search(str(tmp_path)).messages
    assert row.sender == "Café <cafe@example.org>" and row.recipients == "x@example.org"
    assert "raw" in row.subject


def test_delivered_messages_are_indexed_without_a_rescan(tmp_path, monkeypatch):
    add(tmp_path, "a@example.org", "By hand")
    assert outbox.search(str(tmp_path)).total == 1
    scans = []
    real_scan = index._scan
    monkeypatch.setattr(index, "_scan", lambda d: scans.append(d) or real_scan(d))
    key = outbox.deliver(str(tmp_path), b"To: b@example.org\r\nSubject: Caught\r\n\r\nbody\r\n")
    page = outbox.search(str(tmp_path))
    assert [m.subject for m in page.messages][0] == "Caught" and page.total == 2 and scans == []
    assert outbox.get_message(str(tmp_path), key).raw.endswith(b"body\r\n")
    # a file dropped in by hand meanwhile is still found (the folders changed: one rescan)
    add(tmp_path, "c@example.org", "Hand again")
    assert outbox.search(str(tmp_path)).total == 3 and len(scans) == 1


def test_searches_read_the_covering_index_not_the_table(tmp_path):
    add(tmp_path, "a@example.org", "One")
    outbox.search(str(tmp_path))
    with index.connect(tmp_path) as conn:
        clause, params = index.where("anna", "")
        plan = " ".join(row[-1] for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT key, received_ns, sender, recipients, subject FROM messages{clause}"
            " ORDER BY received_ns DESC, key DESC LIMIT 200", params))
    assert "COVERING INDEX messages_newest_cover" in plan, plan
