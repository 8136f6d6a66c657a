"""The subscribers page's keyset pager: following "Next page" visits every match exactly once."""
import re
from collections import Counter

from newsletter.extensions import db
from newsletter.models import Subscriber


def test_next_page_links_visit_every_subscriber_once(app, admin_client):
    with app.app_context():
        db.session.add_all([Subscriber(email=f"pager{i:03d}@example.com", name=f"P {i}") for i in range(120)])
        db.session.commit()
    url, seen, pages = "/admin/subscribers/?q=pager", [], 0
    while url:
        html = admin_client.get(url).get_data(as_text=True)
        seen += re.findall(r"pager\d{3}@example\.com", html)
        pages += 1
        assert ("← First page" in html) == (pages > 1)
        found = re.search(r'href="([^"]+)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert pages == 3
    times = Counter(seen)  # an address may show more than once in its row; never on two pages
    assert sorted(times) == sorted(f"pager{i:03d}@example.com" for i in range(120))
    assert len(set(times.values())) == 1
