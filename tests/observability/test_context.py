"""The log context's pieces: which request ids are kept, which task arguments become fields."""
from __future__ import annotations

import re

import pytest
from celery import Celery

from newsletter.observability import context
from newsletter.observability.celery_context import ids_of

# one_pass (tests/conftest.py): pure functions and an in-memory Celery app.
pytestmark = pytest.mark.one_pass


def test_a_sane_request_id_is_kept_anything_else_replaced():
    for kept in ("0123456789abcdef0123456789abcdef", "lb-7f3a9c21-0001", "Root=1-5759e988-bd862e3fe1be46a9"):
        assert context.request_id_from(kept) == kept
    for replaced in (None, "", "short", "x@example.org", "a b c d e f g h", "x" * 129, "id\nforged: line"):
        assert re.fullmatch(r"[0-9a-f]{32}", context.request_id_from(replaced))


def test_bind_and_reset_nest():
    outer = context.bind(request_id="r1")
    inner = context.bind(task_id="t1", campaign_id=None)
    assert context.current() == {"request_id": "r1", "task_id": "t1"}
    context.reset(inner)
    assert context.current() == {"request_id": "r1"}
    context.reset(outer)
    assert context.current() == {}


def test_a_tasks_id_arguments_by_name():
    app = Celery("ids-test", set_as_current=False)

    @app.task(bind=True)
    def send_batch(self, campaign_id, delivery_ids, note=""):
        pass

    @app.task
    def send_test_email(to, subscriber_id=None):
        pass

    assert ids_of(send_batch, [7, [1, 2, 3]], {"note": "x"}) == {"campaign_id": 7, "delivery_ids": [1, 2, 3]}
    assert ids_of(send_test_email, ["a@example.org"], {"subscriber_id": 4}) == {"subscriber_id": 4}
    assert ids_of(send_batch, ["7", list(range(2000))], {}) == {}  # not ids, or too many to log
