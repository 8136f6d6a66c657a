"""Context is kept (issue 18, item 7): pages remember where you came from and say what they did."""
import re

from newsletter.models import OptIn, SubscriberStatus, SubscriptionStatus
from newsletter.services.audience import lists, subscribers, tokens
from tests.support.net import wait_for
from tests.web.test_imports import finished, upload
from tests.web.test_public import ONE_CLICK, address, make_list, make_subscriber, state, with_token


def ticked(page: str, name: str) -> set[str]:
    return {m.group(1) for m in re.finditer(rf'<input[^>]*name="{name}"[^>]*value="(\d+)"[^>]*checked', page)} | \
        {m.group(1) for m in re.finditer(rf'<input[^>]*checked[^>]*name="{name}"[^>]*value="(\d+)"', page)}


def test_add_subscriber_from_a_list_pre_ticks_that_list(app, admin_client):
    with app.app_context():
        news, offers = lists.create("News", "single").id, lists.create("Offers", "single").id
    page = admin_client.get(f"/admin/lists/{news}").get_data(as_text=True)
    assert f'href="/admin/subscribers/new?list_id={news}"' in page
    assert f'href="/admin/imports/?list_id={news}"' in page
    form = admin_client.get(f"/admin/subscribers/new?list_id={news}").get_data(as_text=True)
    assert ticked(form, "lists") == {str(news)}
    assert ticked(admin_client.get("/admin/subscribers/new").get_data(as_text=True), "lists") == set()
    assert ticked(admin_client.get("/admin/subscribers/new?list_id=999999").get_data(as_text=True), "lists") == set()
    assert ticked(admin_client.get("/admin/subscribers/new?list_id=abc").get_data(as_text=True), "lists") == set()
    listing = admin_client.get(f"/admin/subscribers/?list_id={offers}").get_data(as_text=True)
    assert f'href="/admin/subscribers/new?list_id={offers}"' in listing
    imports_page = admin_client.get(f"/admin/imports/?list_id={offers}").get_data(as_text=True)
    assert ticked(imports_page, "list_ids") == {str(offers)}


def test_an_import_with_no_list_asks_first(app, admin_client, worker):
    with app.app_context():
        news = lists.create("News", "single").id
    response = upload(admin_client, b"email\nnolist@example.com\n")
    assert response.status_code == 400
    assert "Tick the lists to add these subscribers to" in response.get_data(as_text=True)
    with app.app_context():
        assert subscribers.count(subscribers.make_filters(q="nolist@")).value == 0
    # said on purpose: imported, and the report offers the subscribers (no list to open)
    response = upload(admin_client, b"email\nnolist@example.com\n", no_list="y")
    assert response.status_code == 302
    job_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    wait_for(lambda: finished(admin_client, job_id), 60, 0.3, "the import to finish")
    page = admin_client.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    assert 'id="import-next"' in page and "See the subscribers" in page and f"/admin/lists/{news}" not in page
    # "only update" needs no list
    assert upload(admin_client, b"email\nnolist@example.com\n", mode="update").status_code == 302


def test_after_an_import_buttons_lead_to_the_list_and_the_invalid_rows(app, admin_client, worker):
    with app.app_context():
        news = lists.create("News", "single").id
    response = upload(admin_client, b"email\nok@example.com\nbroken\n", list_ids=str(news))
    job_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    wait_for(lambda: finished(admin_client, job_id), 60, 0.3, "the import to finish")
    page = admin_client.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    next_steps = page.split('id="import-next"', 1)[1].split("</div>", 1)[0]
    assert f'href="/admin/lists/{news}" role="button">Open News</a>' in next_steps
    assert f'href="/admin/imports/{job_id}/invalid.csv"' in next_steps and "Download the 1 invalid row" in next_steps


def test_attribute_search_ignores_case(app, admin_client):
    with app.app_context():
        subscribers.create("lyon@example.com", attributes={"city": "Lyon"})
        subscribers.create("paris@example.com", attributes={"city": "PARIS"})
        found = subscribers.search(filters=subscribers.make_filters(attribute=("city", "lyon")))[0]
        assert [s.email for s in found] == ["lyon@example.com"]
    page = admin_client.get("/admin/subscribers/?attr_key=city&attr_value=paris").get_data(as_text=True)
    assert "paris@example.com" in page and "lyon@example.com" not in page


def test_dashboard_says_which_statuses_its_count_holds(app, admin_client):
    with app.app_context():
        subscribers.create("c@example.com")
        subscribers.create("u@example.com", status=SubscriberStatus.UNCONFIRMED)
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "Subscribers, every status" in page
    line = page.split('id="subscriber-statuses"', 1)[1].split("</p>", 1)[0]
    assert ">1 confirmed</a>" in line and ">1 unconfirmed</a>" in line and ">0 unsubscribed</a>" in line
    assert 'href="/admin/subscribers/?status=unconfirmed"' in line


def test_a_revisited_unsubscribe_link_says_you_already_left_and_offers_to_rejoin(app, client):
    news, offers = make_list(app, "News", public=False), make_list(app, "Offers")
    subscriber_id = make_subscriber(app, address(), [news, offers])
    token = with_token(app, tokens.unsubscribe_token, subscriber_id, [news])
    first = client.get(f"/unsubscribe/{token}").get_data(as_text=True)
    assert "Leave News" in first and "already left" not in first
    assert client.post(f"/unsubscribe/{token}", data={"action": "lists"}).status_code == 200
    again = client.get(f"/unsubscribe/{token}").get_data(as_text=True)
    assert "You already left News" in again and "You unsubscribed on" in again and "Rejoin News" in again
    assert state(app, subscriber_id)["lists"][news] == SubscriptionStatus.UNSUBSCRIBED  # a visit changes nothing

    back = client.post(f"/unsubscribe/{token}", data={"action": "rejoin"}).get_data(as_text=True)
    assert "Check your inbox" in back  # News is double opt-in: the rejoin waits for the confirmation
    after = state(app, subscriber_id)["lists"]
    assert after == {news: SubscriptionStatus.UNCONFIRMED, offers: SubscriptionStatus.CONFIRMED}


def test_a_revisited_leave_everything_link_says_so_without_a_rejoin_button(app, client):
    news = make_list(app, "News", opt_in=OptIn.SINGLE)
    subscriber_id = make_subscriber(app, address(), [news])
    token = with_token(app, tokens.unsubscribe_token, subscriber_id)
    assert app.test_client().post(f"/unsubscribe/{token}", data=ONE_CLICK).status_code == 200
    again = client.get(f"/unsubscribe/{token}").get_data(as_text=True)
    assert "You already left News" in again and "do-not-mail list" in again and "Rejoin" not in again
    refused = client.post(f"/unsubscribe/{token}", data={"action": "rejoin"}).get_data(as_text=True)
    assert "do-not-mail list" in refused and state(app, subscriber_id)["suppressed"]


def test_reimporting_unsubscribed_addresses_says_why_each_was_skipped(app, admin_client, worker):
    news, offers = make_list(app, "News", opt_in=OptIn.SINGLE), make_list(app, "Offers", opt_in=OptIn.SINGLE)
    left_news = make_subscriber(app, "left-news@example.com", [news, offers])
    left_all = make_subscriber(app, "left-all@example.com", [news])
    with app.app_context():
        from newsletter.services.audience import subscriptions

        subscriptions.unsubscribe(left_news, [news])
        subscriptions.unsubscribe(left_all, None)
    content = b"email,city\nleft-news@example.com,Lyon\nleft-all@example.com,Nice\nnew@example.com,Metz\n"
    response = upload(admin_client, content, list_ids=str(news))
    job_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    status = wait_for(lambda: finished(admin_client, job_id), 60, 0.3, "the import to finish")
    assert (status["created"], status["suppressed"], status["left_lists"]) == (1, 1, 1)
    page = admin_client.get(f"/admin/imports/{job_id}").get_data(as_text=True)
    skipped = page.split('id="skipped-rows"', 1)[1].split("</table>", 1)[0]
    assert "left-all@example.com" in skipped and "Unsubscribed from every list on" in skipped
    assert "left-news@example.com" in skipped and "Left “News” on" in skipped
    assert "an import does not add back anyone who unsubscribed" in skipped and "new@example.com" not in skipped
    after = state(app, left_news)
    assert after["lists"] == {news: SubscriptionStatus.UNSUBSCRIBED, offers: SubscriptionStatus.CONFIRMED}
