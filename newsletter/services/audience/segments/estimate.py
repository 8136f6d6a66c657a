"""A segment's count in bounded time, for the live count while rules are edited.

Exact when PostgreSQL answers within a budget (a statement_timeout inside a savepoint); else an
estimate from a sample of the subscribers table's pages, with the half-width of its 95 % interval,
which the caller labels as such (the builder shows "about N" and then asks for the exact figure).

Why: at 1,000,000 subscribers a rule that matches a large share of them, or that has to evaluate
an attribute on every row (numbers, dates, "contains"), reads the whole 210 MB table, 250-600 ms
on the bench machine (bench/README.md); no index makes every rule cheap.

The estimate reads `SAMPLE_PAGES` random pages (TABLESAMPLE SYSTEM, a fixed seed so that the
figure does not jitter between keystrokes) and applies the rules to every row on them: the share
that matches is a ratio estimator over page clusters; the number of rows is PostgreSQL's own
(`reltuples` at the last VACUUM/ANALYZE, scaled to the table's current pages, as its planner does).
The margin covers the sampling error only, not the row count's own drift since the last ANALYZE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.util import ClauseAdapter

from ....extensions import db
from ....models import Subscriber, dialect
from .compile import Condition

BUDGET_MS = 90       # the exact count's limit; the estimate then takes ~10-100 ms at 1M (bench/README.md)
SAMPLE_PAGES = 200   # ~7,500 rows of 1M subscribers: a 95 % margin of up to ~1.1 points of the share
SEED = 17
Z95 = 1.96


@dataclass(frozen=True)
class Count:
    """How many match: `exact`, or an estimate within ± `margin` (a 95 % interval) from `sampled` rows."""
    value: int
    exact: bool = True
    margin: int = 0
    sampled: int = 0


def exact(condition: Condition) -> int:
    dialect.without_jit()  # a scan of 1M rows gets JIT-compiled for nothing (see dialect.without_jit)
    return db.session.scalar(select(func.count()).select_from(Subscriber).where(condition)) or 0


def within(condition: Condition, budget_ms: int = BUDGET_MS, pages: int = SAMPLE_PAGES) -> Count:
    """The exact count if the database gives it within `budget_ms`, else an estimate (SQLite,
    which has no statement timeout: always exact)."""
    if not dialect.is_postgresql():
        return Count(exact(condition))
    savepoint = db.session.begin_nested()
    try:
        before = dialect.statement_timeout(budget_ms)
        value = exact(condition)
        dialect.restore_statement_timeout(before)
    except DBAPIError as exc:
        if not dialect.is_statement_timeout(exc):
            raise
        savepoint.rollback()  # also undoes the SET LOCAL of the timeout
        return estimated(condition, pages)
    savepoint.commit()
    return Count(value)


def estimated(condition: Condition, pages: int = SAMPLE_PAGES) -> Count:
    """An estimate from about `pages` random pages of the table (PostgreSQL only)."""
    relpages, reltuples, current_pages = dialect.table_pages(Subscriber.__table__)
    fraction = min(1.0, pages / current_pages) if current_pages else 1.0
    sampled, page = dialect.sample_of_pages(Subscriber.__table__, fraction * 100, SEED)
    on_sample = ClauseAdapter(sampled).traverse(condition)  # the rules read the sampled rows
    dialect.without_jit()
    per_page = db.session.execute(select(page, func.count(), func.count().filter(on_sample))
                                  .select_from(sampled).group_by(page)).all()
    rows = sum(r[1] for r in per_page)
    matched = sum(r[2] for r in per_page)
    if fraction >= 1.0:  # every page read: that is the count
        return Count(matched)
    known = relpages > 0 and reltuples > 0
    k = len(per_page)
    if k < 2:  # a page or none tells nothing of the spread: the margin is everyone, if we know how many
        if not known:
            return Count(exact(condition))
        total = reltuples / relpages * current_pages
        return Count(round(matched / rows * total) if rows else 0, exact=False, margin=math.ceil(total), sampled=rows)
    total = reltuples / relpages * current_pages if known else rows / fraction
    share = matched / rows
    # Ratio estimator over page clusters, finite-population corrected (the pages not sampled).
    spread = sum((m - share * n) ** 2 for _, n, m in per_page)
    variance = (1 - fraction) * k / (k - 1) * spread / rows**2
    return Count(round(share * total), exact=False, margin=math.ceil(Z95 * total * math.sqrt(variance)),
                 sampled=rows)
