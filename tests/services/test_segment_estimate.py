"""The live count in bounded time (segments/estimate.py): exact within the budget, else an estimate
from sampled pages that applies the same rules (checked against the plain-Python reference when
every page is sampled), with the statement timeout put back either way."""
from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select, text

from newsletter.extensions import db
from newsletter.models import Subscriber, dialect
from newsletter.services.audience.segments import estimate, segments
from newsletter.services.audience.segments.compile import compile_rules
from newsletter.services.audience.segments.rules import validate

from .test_segment_rules import NOW, every_condition, python_ids, random_tree, seed


@pytest.fixture
def world(app):
    return seed(app)


def compiled(rules):
    return compile_rules(validate(rules)[0], NOW)


def needs_postgresql():
    if not dialect.is_postgresql():
        pytest.skip("page sampling and statement timeouts are PostgreSQL's (SQLite always counts exactly)")


def timeout_setting() -> str:
    return db.session.scalar(text("SHOW statement_timeout"))


def test_within_the_budget_the_count_is_exact_and_agrees_with_the_reference(app, world):
    rng = random.Random(8)
    conditions = every_condition(world)
    with app.app_context():
        for _ in range(40):
            rules = random_tree(rng, conditions)
            found = estimate.within(compiled(rules), budget_ms=60_000)
            assert found == estimate.Count(len(python_ids(world, rules))), rules
        rules = {"match": "all", "rules": [{"type": "attribute", "key": "age", "op": "gte", "value": 30}]}
        assert segments.live_count(rules) == segments.live_count(rules, exact=True) == estimate.Count(
            segments.count(rules))


def test_the_sample_applies_the_same_rules_as_the_exact_count(app, world):
    """Every page sampled: the estimate's SQL (the rules rewritten onto the sampled rows, correlated
    subqueries included) must give exactly the reference's answer for every condition and random trees."""
    with app.app_context():
        needs_postgresql()
        conditions = every_condition(world)
        trees = [random_tree(random.Random(3), conditions) for _ in range(60)]
        for rules in [{"match": "all", "rules": [c]} for c in conditions] + trees:
            assert estimate.estimated(compiled(rules), pages=10**9) == estimate.Count(
                len(python_ids(world, rules))), rules


def test_past_the_budget_an_estimate_is_labelled_and_the_timeout_put_back(app, world):
    with app.app_context():
        needs_postgresql()
        db.session.execute(text("ANALYZE subscribers"))  # the row count an estimate scales to
        before = timeout_setting()
        everyone = {"match": "all", "rules": []}
        assert estimate.within(compiled(everyone), budget_ms=60_000) == estimate.Count(len(world.people))
        assert timeout_setting() == before  # the exact path restores it
        # pg_sleep on every row: 160 rows x 5 ms cannot finish within 1 ms.
        slow = compiled(everyone) & func.pg_sleep(0.005).is_not(None)
        found = estimate.within(slow, budget_ms=1, pages=2)
        assert not found.exact and found.sampled < len(world.people)
        assert found.value - found.margin <= len(world.people) <= found.value + found.margin
        assert timeout_setting() == before  # the savepoint's rollback undid the timeout
        assert db.session.scalar(text("SELECT 1")) == 1  # the transaction is usable after the cancel


def test_a_sample_of_some_pages_estimates_with_a_margin(app, world):
    with app.app_context():
        needs_postgresql()
        db.session.execute(text("ANALYZE subscribers"))
        pages = dialect.table_pages(segments.Subscriber.__table__)[2]
        assert pages >= 2, "the world spans several pages"
        rules = {"match": "all", "rules": [{"type": "attribute", "key": "plan", "op": "is_set"}]}
        found = estimate.estimated(compiled(rules), pages=pages // 2)
        assert not found.exact and found.sampled < len(world.people)
        assert found.value >= 0 and found.margin > 0  # a share between 0 and 1 (or no page drawn)


def test_engagement_in_the_last_days_reads_the_human_events_index(app, world):
    """Migration 0025's partial index answers "opened/clicked in the last N days" only while the
    compiled condition implies its predicate (`machine IS false`): a rewrite such as `NOT machine`
    would send every count back to reading all events (bench/README.md "Segment counts")."""
    with app.app_context():
        needs_postgresql()
        db.session.execute(text("ANALYZE engagement_events"))
        db.session.execute(text("SET LOCAL enable_seqscan = off"))  # a few rows here: force the index choice
        for op in ("opened", "clicked", "not_opened"):
            rules = {"match": "all", "rules": [{"type": "engagement", "op": op, "days": 30}]}
            statement = select(func.count()).select_from(Subscriber).where(compiled(rules))
            sql = statement.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
            params = {k: getattr(v, "value", v) for k, v in sql.params.items()}
            plan = "\n".join(db.session.connection().exec_driver_sql(f"EXPLAIN {sql}", params).scalars())
            assert "ix_engagement_events_human_kind_at" in plan, plan
