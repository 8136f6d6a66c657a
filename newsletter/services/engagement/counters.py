"""Adding to counter tables: every engagement counter row is a key plus a `count` that only grows."""
from __future__ import annotations

from collections import Counter
from typing import Any

from ...extensions import db
from ...models import dialect


def add(table: Any, key: list[str], counts: Counter) -> None:
    """Add each count to its counter row (created at 0 when missing): one statement for all of them."""
    if not counts:
        return
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(index_elements=key,
                                                set_={"count": table.c.count + statement.excluded["count"]})
    db.session.execute(statement, [{**dict(zip(key, values, strict=True)), "count": n} for values, n in counts.items()])
