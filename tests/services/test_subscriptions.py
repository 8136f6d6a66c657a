"""Joining and leaving lists: opt-in kinds, resubscription, suppression, idempotence."""
import pytest
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    OptIn,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
)
from newsletter.services.audience import lists, subscriptions, suppressions
from newsletter.services.errors import NotFound, ValidationError

FORM = ConsentSource.FORM


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def double(ctx) -> int:
    return lists.create("Weekly", OptIn.DOUBLE, public=True).id


@pytest.fixture
def single(ctx) -> int:
    return lists.create("Offers", OptIn.SINGLE, public=True).id


def status(subscriber_id: int, list_id: int) -> SubscriptionStatus | None:
    db.session.expire_all()
    sub = db.session.get(Subscription, (subscriber_id, list_id))
    return sub.status if sub else None


def consents(subscriber_id: int, action: ConsentAction | None = None) -> int:
    query = select(func.count()).select_from(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id)
    if action:
        query = query.where(ConsentRecord.action == action)
    return db.session.scalar(query)


def test_single_opt_in_confirms_at_once_with_consent(single):
    result = subscriptions.subscribe(" Ana@Example.ORG ", [single], source=FORM, name="Ana", ip="192.0.2.1",
                                     user_agent="UA")
    assert result.created and not result.needs_confirmation and result.confirmed_list_ids == [single]
    subscriber = db.session.get(Subscriber, result.subscriber_id)
    assert subscriber.email == "ana@example.org" and subscriber.status == SubscriberStatus.CONFIRMED
    assert status(subscriber.id, single) == SubscriptionStatus.CONFIRMED
    record = db.session.scalar(select(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber.id))
    assert (record.action, record.source, record.list_id, record.ip) == (ConsentAction.SUBSCRIBED, FORM, single,
                                                                        "192.0.2.1")


def test_double_opt_in_waits_for_the_link_and_confirm_is_idempotent(double):
    result = subscriptions.subscribe("bo@example.org", [double], source=FORM)
    assert result.pending_list_ids == [double] and result.confirmed_list_ids == []
    assert status(result.subscriber_id, double) == SubscriptionStatus.UNCONFIRMED
    assert db.session.get(Subscriber, result.subscriber_id).status == SubscriberStatus.UNCONFIRMED

    assert subscriptions.confirm(result.subscriber_id, [double], ip="192.0.2.9") == [double]
    assert status(result.subscriber_id, double) == SubscriptionStatus.CONFIRMED
    assert db.session.get(Subscriber, result.subscriber_id).confirmed_at is not None
    assert subscriptions.confirm(result.subscriber_id, [double]) == [double]
    assert consents(result.subscriber_id, ConsentAction.CONFIRMED) == 1


def test_subscribing_again_while_confirmed_changes_nothing(double):
    first = subscriptions.subscribe("cy@example.org", [double], source=FORM)
    subscriptions.confirm(first.subscriber_id, [double])
    again = subscriptions.subscribe("CY@example.org", [double], source=FORM)
    assert again.subscriber_id == first.subscriber_id and not again.created
    assert again.confirmed_list_ids == [double] and again.pending_list_ids == []
    assert consents(first.subscriber_id) == 2  # subscribed + confirmed, nothing new


def test_invalid_address_and_unknown_list_are_refused(double):
    with pytest.raises(ValidationError) as error:
        subscriptions.subscribe("not an address", [double], source=FORM)
    assert error.value.field == "email"
    with pytest.raises(ValidationError) as error:
        subscriptions.subscribe("dee@example.org", [double, 999_999], source=FORM)
    assert error.value.field == "list_ids"
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_resubscribe_after_unsubscribing_from_a_list(double, single):
    result = subscriptions.subscribe("eve@example.org", [double, single], source=FORM, confirmed=True)
    assert subscriptions.unsubscribe(result.subscriber_id, [double, single]) == sorted([double, single])
    assert db.session.get(Subscriber, result.subscriber_id).status == SubscriberStatus.UNSUBSCRIBED
    assert subscriptions.unsubscribe(result.subscriber_id, [double, single]) == []  # idempotent

    again = subscriptions.subscribe("eve@example.org", [double, single], source=FORM)
    # The double opt-in list asks again; the single opt-in list takes the person back at once.
    assert again.pending_list_ids == [double] and again.confirmed_list_ids == [single]
    assert status(result.subscriber_id, double) == SubscriptionStatus.UNCONFIRMED
    assert status(result.subscriber_id, single) == SubscriptionStatus.CONFIRMED
    assert db.session.get(Subscriber, result.subscriber_id).status == SubscriberStatus.CONFIRMED


def test_leaving_one_list_keeps_the_others_and_suppresses_nothing(double, single):
    result = subscriptions.subscribe("fay@example.org", [double, single], source=FORM, confirmed=True)
    assert subscriptions.unsubscribe(result.subscriber_id, [single]) == [single]
    assert status(result.subscriber_id, double) == SubscriptionStatus.CONFIRMED
    assert db.session.get(Subscriber, result.subscriber_id).status == SubscriberStatus.CONFIRMED
    assert not suppressions.is_suppressed("fay@example.org")


def test_leaving_all_suppresses_and_the_address_is_never_resubscribed(double, single):
    result = subscriptions.subscribe("gus@example.org", [double], source=FORM)
    assert subscriptions.unsubscribe(result.subscriber_id) == [double]
    assert subscriptions.unsubscribe(result.subscriber_id) == []  # idempotent
    assert suppressions.is_suppressed("gus@example.org")
    before = consents(result.subscriber_id)

    for confirmed in (False, True):  # not even an admin/import addition marked confirmed
        again = subscriptions.subscribe("Gus@Example.org", [double, single], source=FORM, confirmed=confirmed)
        assert again.suppressed and again.pending_list_ids == [] and again.confirmed_list_ids == []
    assert status(result.subscriber_id, double) == SubscriptionStatus.UNSUBSCRIBED
    assert status(result.subscriber_id, single) is None
    assert consents(result.subscriber_id) == before
    # An old confirmation link cannot bring the address back either.
    assert subscriptions.confirm(result.subscriber_id, [double]) == []
    assert status(result.subscriber_id, double) == SubscriptionStatus.UNSUBSCRIBED


def test_suppressed_address_is_not_even_created(single):
    suppressions.suppress("hal@example.org", SuppressionReason.HARD_BOUNCE)
    db.session.commit()
    result = subscriptions.subscribe("hal@example.org", [single], source=FORM, confirmed=True)
    assert result.suppressed and result.subscriber_id is None
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_bounced_subscriber_is_not_resubscribed(single):
    result = subscriptions.subscribe("ida@example.org", [single], source=FORM)
    subscriptions.unsubscribe(result.subscriber_id, [single])
    db.session.get(Subscriber, result.subscriber_id).status = SubscriberStatus.BOUNCED
    db.session.commit()
    again = subscriptions.subscribe("ida@example.org", [single], source=FORM)
    assert again.suppressed and status(result.subscriber_id, single) == SubscriptionStatus.UNSUBSCRIBED


def test_set_lists_leaves_joins_and_renames(double, single):
    other = lists.create("Private", OptIn.SINGLE).id
    result = subscriptions.subscribe("jo@example.org", [single, other], source=FORM, name="Jo")
    changed = subscriptions.set_lists(result.subscriber_id, [double, other], name="  Jo Smith ", ip="192.0.2.5")
    assert changed.pending_list_ids == [double]
    assert status(result.subscriber_id, single) == SubscriptionStatus.UNSUBSCRIBED
    assert status(result.subscriber_id, double) == SubscriptionStatus.UNCONFIRMED
    assert status(result.subscriber_id, other) == SubscriptionStatus.CONFIRMED
    assert db.session.get(Subscriber, result.subscriber_id).name == "Jo Smith"
    join = db.session.scalar(select(ConsentRecord).where(ConsentRecord.list_id == double))
    assert join.ip == "192.0.2.5"

    same = subscriptions.set_lists(result.subscriber_id, [double, other])
    assert same.pending_list_ids == []  # still pending from before: no second email asked for
    assert db.session.get(Subscriber, result.subscriber_id).name == "Jo Smith"  # name=None keeps it


def test_set_lists_of_a_suppressed_subscriber_joins_nothing(double, single):
    result = subscriptions.subscribe("kim@example.org", [single], source=FORM)
    subscriptions.unsubscribe(result.subscriber_id)
    changed = subscriptions.set_lists(result.subscriber_id, [double, single], name="Kim")
    assert changed.suppressed
    assert status(result.subscriber_id, double) is None
    assert status(result.subscriber_id, single) == SubscriptionStatus.UNSUBSCRIBED
    assert db.session.get(Subscriber, result.subscriber_id).name == "Kim"


def test_set_lists_of_an_unknown_subscriber_is_not_found(ctx):
    with pytest.raises(NotFound):
        subscriptions.set_lists(123456, [])
