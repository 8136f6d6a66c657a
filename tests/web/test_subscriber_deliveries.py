"""A subscriber's page lists the deliveries of every campaign sent to them."""
from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns, recipients


def test_subscriber_page_lists_their_deliveries(app, admin_client):
    with app.app_context():
        news = lists.create("News", "single")
        anna = subscribers.create("anna@example.com", list_ids=[news.id])
        campaign = campaigns.create(name="Autumn letter", subject="Hi", from_email="n@example.com",
                                    html="<p>x</p>", list_ids=[news.id])
        # A draft: the session's beat sweeper only acts on campaigns that are sending.
        recipients.snapshot(campaign.id)
        anna_id, campaign_id = anna.id, campaign.id
    page = admin_client.get(f"/admin/subscribers/{anna_id}").get_data(as_text=True)
    assert "Autumn letter" in page and f"/admin/campaigns/{campaign_id}" in page and "pending" in page
